//! The index of shared files: who shares what, searchable by substring.
//!
//! A narrow interface (register, unregister, remove an owner, search with a cap) that knows
//! owners by an opaque id, not a socket or an IP, so it can later be partitioned.
//!
//! Search results come in registration order: the order in which each (owner, name) pair
//! was first registered. Re-registering a name keeps its place and updates its size, hash and
//! address. Matching is case-sensitive and byte-wise on the UTF-8 name (which, UTF-8 being
//! self-synchronising, is the same as matching characters); the empty pattern matches all.
//!
//! # How it is built, and why
//!
//! The index must answer a substring search over millions of names without looking at each,
//! stay near 100 bytes of memory per file beyond the name, and drop a client's thousands of
//! files in about a millisecond.
//!
//! - **Entries** get ids in registration order (`u32`, growing only), so "registration order"
//!   is "ascending id" everywhere. Each entry is 32 bytes in a `Vec` indexed by id: the end
//!   of its name in one shared `String` arena (no allocation per file), its owner, its
//!   place in the owner's list, its peer (interned: one `u32`), its content hash (an index into
//!   a side table, so files without one pay 4 bytes, not 33) and its size. The big vectors grow
//!   by an eighth, not by doubling, so little of them sits unused.
//! - **Trigrams**: for every distinct 3-byte window of a name, the entry's id is appended to
//!   that trigram's posting list (gaps bit-packed in blocks of 128, see `postings.rs`). A
//!   pattern of 3 bytes or more can only occur in a name that holds all of the pattern's
//!   trigrams, so a search walks the rarest of them in id order (which is result order, so it
//!   can stop at the cap); when that list is long it first checks each candidate against the
//!   next two rarest lists (seeking forward in them, leapfrog style); it confirms every
//!   candidate with a real substring test of its name.
//! - **Short patterns** (0, 1 or 2 bytes) have no trigram: they scan the entries in order and
//!   stop at the cap. Such patterns match most names, so the cap comes quickly; a short
//!   pattern that matches little (a rare byte pair) costs a scan of the whole index (about
//!   25 ms at a million names).
//! - **Owners**: each owner has the list of its entry ids, so removing an owner touches only
//!   its own entries. An (owner, name) table (open addressing over entry ids, tombstones on
//!   removal) finds the entry a re-registration or an unregistration means.
//! - **Tombstones**: removing an entry marks it dead and leaves its id in the posting lists
//!   (searches skip dead ids) and its name in the arena. Once the dead outnumber the living,
//!   [`Index::compact`] renumbers the living entries densely, keeping their order, and
//!   rewrites the arena, the posting lists and the tables: a pause proportional to the index
//!   (about 0.2 to 0.3 s a million entries, live or dead), paid for by at least as many removals before it
//!   (amortised O(1) a removal).
//!
//! Costs, for an index of `n` files: `register` O(name length) (plus amortised growth);
//! `unregister` O(name length); `remove_owner` O(files of the owner, with their name
//! lengths); `set_peer` O(files of the owner); `search` with a pattern of 3 bytes or more
//! O(length of its rarest trigram's list, at most `n` plus tombstones), usually far less;
//! shorter patterns O(entries scanned before the cap is reached). Nothing iterates a hash
//! table to produce output: results come from id order alone, so they are deterministic.
//!
//! The id space is `u32`: at most `u32::MAX - 1` files at once (far beyond memory); running
//! out of ids through churn compacts.

mod postings;
mod table;

use std::collections::BTreeMap;
use std::fmt;

use self::postings::{Cursor, Postings, Renumber};
use self::table::{name_hash, GramMap, IdTable};
use crate::hash::ContentHash;
use crate::wire::PeerAddr;

/// Who shares a file: one id per client connection, never reused while the index lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OwnerId(pub u64);

/// One search match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit<'a> {
    pub name: &'a str,
    pub peer: PeerAddr,
    pub size: u64,
    /// The content hash, when the sharing client gave one (the extension).
    pub hash: Option<ContentHash>,
}

/// The `owner` of a removed entry (a tombstone), and "none" in the other `u32` fields.
const NONE: u32 = u32::MAX;

/// Below this many tombstones the index does not bother compacting.
const MIN_COMPACT: usize = 64;

/// A posting list this long or longer gets the pattern's next rarest trigrams checked by
/// seeking in their lists before a candidate's name is read.
const FILTER_FROM: u32 = 512;
/// How many of the next rarest lists filter a long one.
const FILTERS: usize = 2;

/// Everything about one file but its name's bytes: 32 bytes, no padding, so that checking
/// a candidate reads one entry (and the end of the one before it, usually the same cache
/// line) besides the name.
#[derive(Debug, Clone, Copy)]
struct Meta {
    /// Where the name ends in the arena; it starts where the previous entry's ends.
    end: u64,
    /// The owner's slot in [`Owners::slots`], or [`NONE`] for a removed entry.
    owner: u32,
    /// Where this entry's id sits in its owner's file list.
    owner_pos: u32,
    /// The peer's slot in [`Peers::slots`].
    peer: u32,
    /// The content hash's slot in [`Hashes::slots`], or [`NONE`].
    hash: u32,
    size: u64,
}

/// The entries, by id.
#[derive(Debug, Default)]
struct Entries {
    /// Every name, live or dead, back to back in id order.
    arena: String,
    meta: Vec<Meta>,
}

impl Entries {
    fn len(&self) -> usize {
        self.meta.len()
    }

    #[inline]
    fn name(&self, id: u32) -> &str {
        let i = id as usize;
        let start = if i == 0 { 0 } else { self.meta[i - 1].end };
        &self.arena[start as usize..self.meta[i].end as usize]
    }

    #[inline]
    fn is_live(&self, id: u32) -> bool {
        self.meta[id as usize].owner != NONE
    }

    fn hash_of(&self, id: u32) -> u64 {
        name_hash(self.meta[id as usize].owner, self.name(id).as_bytes())
    }
}

/// Content hashes, apart from the entries so that files without one cost no 32 bytes.
#[derive(Debug, Default)]
struct Hashes {
    slots: Vec<[u8; 32]>,
    free: Vec<u32>,
}

impl Hashes {
    fn put(&mut self, hash: Option<ContentHash>) -> u32 {
        let Some(ContentHash(bytes)) = hash else {
            return NONE;
        };
        if let Some(slot) = self.free.pop() {
            self.slots[slot as usize] = bytes;
            return slot;
        }
        reserve(&mut self.slots, 1);
        self.slots.push(bytes);
        id32(self.slots.len() - 1)
    }

    fn free(&mut self, slot: u32) {
        if slot != NONE {
            self.free.push(slot);
        }
    }

    fn get(&self, slot: u32) -> Option<ContentHash> {
        (slot != NONE).then(|| ContentHash(self.slots[slot as usize]))
    }
}

/// Peer addresses, interned: entries hold a `u32`, not a 32-byte `SocketAddr`.
#[derive(Debug, Default)]
struct Peers {
    by_addr: BTreeMap<PeerAddr, u32>,
    /// Each address and how many entries use it (0: a free slot).
    slots: Vec<(PeerAddr, u32)>,
    free: Vec<u32>,
}

impl Peers {
    fn acquire(&mut self, addr: PeerAddr) -> u32 {
        let slot = match self.by_addr.get(&addr) {
            Some(&slot) => slot,
            None => {
                let slot = match self.free.pop() {
                    Some(slot) => {
                        self.slots[slot as usize] = (addr, 0);
                        slot
                    }
                    None => {
                        self.slots.push((addr, 0));
                        id32(self.slots.len() - 1)
                    }
                };
                self.by_addr.insert(addr, slot);
                slot
            }
        };
        self.slots[slot as usize].1 += 1;
        slot
    }

    fn add_ref(&mut self, slot: u32) {
        self.slots[slot as usize].1 += 1;
    }

    fn release(&mut self, slot: u32) {
        let (addr, refs) = &mut self.slots[slot as usize];
        *refs -= 1;
        if *refs == 0 {
            self.by_addr.remove(addr);
            self.free.push(slot);
        }
    }

    fn addr(&self, slot: u32) -> PeerAddr {
        self.slots[slot as usize].0
    }
}

/// One owner: its id and its entries (in no particular order).
#[derive(Debug)]
struct Owner {
    id: OwnerId,
    files: Vec<u32>,
}

/// Owners by slot: entries name their owner by a `u32` slot; a slot is reused once its
/// owner has no files left.
#[derive(Debug, Default)]
struct Owners {
    by_id: BTreeMap<OwnerId, u32>,
    slots: Vec<Owner>,
    free: Vec<u32>,
}

impl Owners {
    fn slot_or_insert(&mut self, id: OwnerId) -> u32 {
        if let Some(&slot) = self.by_id.get(&id) {
            return slot;
        }
        let owner = Owner {
            id,
            files: Vec::new(),
        };
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize] = owner;
                slot
            }
            None => {
                self.slots.push(owner);
                id32(self.slots.len() - 1)
            }
        };
        self.by_id.insert(id, slot);
        slot
    }

    /// Frees `slot` (whose files are gone).
    fn release(&mut self, slot: u32) {
        let owner = &mut self.slots[slot as usize];
        self.by_id.remove(&owner.id);
        owner.files = Vec::new();
        self.free.push(slot);
    }
}

/// The in-memory index. See the module docs for its layout and costs.
#[derive(Default)]
pub struct Index {
    entries: Entries,
    /// Live entries.
    live: usize,
    /// Bytes of live names in the arena.
    live_bytes: usize,
    hashes: Hashes,
    peers: Peers,
    owners: Owners,
    /// Live entries by (owner slot, name).
    names: IdTable,
    /// Trigram to posting list.
    grams: GramMap,
    lists: Vec<Postings>,
    /// A reusable buffer for a name's trigrams.
    scratch: Vec<u32>,
}

impl fmt::Debug for Index {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Index")
            .field("files", &self.live)
            .field("tombstones", &(self.entries.len() - self.live))
            .field("owners", &self.owners.by_id.len())
            .field("trigrams", &self.lists.len())
            .finish_non_exhaustive()
    }
}

/// A `usize` known to fit a `u32` id.
fn id32(n: usize) -> u32 {
    u32::try_from(n).expect("fewer than 2^32 ids")
}

/// Makes room for `extra` more items, growing by an eighth rather than doubling: the entry
/// tables and the arena are most of the index, and doubling would leave up to half of them
/// unused. A factor of 1.125 still costs O(1) copies an item on average.
fn reserve<T>(v: &mut Vec<T>, extra: usize) {
    if v.capacity() - v.len() < extra {
        v.reserve_exact(extra.max(v.len() / 8).max(4));
    }
}

/// A trigram as a number: its three bytes, big-endian, in the low 24 bits.
#[inline]
fn gram(w: &[u8]) -> u32 {
    u32::from(w[0]) << 16 | u32::from(w[1]) << 8 | u32::from(w[2])
}

/// The distinct trigrams of `s`, sorted, into `out`.
fn grams_of(s: &[u8], out: &mut Vec<u32>) {
    out.clear();
    out.extend(s.windows(3).map(gram));
    out.sort_unstable();
    out.dedup();
}

/// Whether `hay` contains `needle`, byte-wise.
#[inline]
fn contains(hay: &str, needle: &str) -> bool {
    let (h, n) = (hay.as_bytes(), needle.as_bytes());
    if n.len() > h.len() {
        return false;
    }
    let Some((&first, rest)) = n.split_first() else {
        return true;
    };
    if n.len() > 32 {
        // Long needles: the standard library's linear-time search.
        return hay.contains(needle);
    }
    (0..=h.len() - n.len()).any(|i| h[i] == first && &h[i + 1..i + n.len()] == rest)
}

impl Index {
    pub fn new() -> Self {
        Self::default()
    }

    /// Shares `name` from `owner`, reachable at `peer`. Registering a name the owner already
    /// shares updates its size, hash and address and keeps its place in the order.
    pub fn register(
        &mut self,
        owner: OwnerId,
        peer: PeerAddr,
        name: &str,
        size: u64,
        hash: Option<ContentHash>,
    ) {
        let slot = self.owners.slot_or_insert(owner);
        let h = name_hash(slot, name.as_bytes());
        let entries = &self.entries;
        let found = self.names.find(h, |id| {
            entries.meta[id as usize].owner == slot && entries.name(id) == name
        });
        if let Some(id) = found {
            let m = &mut self.entries.meta[id as usize];
            m.size = size;
            self.hashes.free(m.hash);
            m.hash = self.hashes.put(hash);
            if self.peers.addr(m.peer) != peer {
                self.peers.release(m.peer);
                m.peer = self.peers.acquire(peer);
            }
            return;
        }
        if self.entries.len() >= NONE as usize {
            // Out of ids: renumber; only 2^32 - 1 live files could stop this.
            self.compact();
            assert!(
                self.entries.len() < NONE as usize,
                "fewer than 2^32 - 1 files"
            );
        }
        let id = id32(self.entries.len());
        // The owner's last file usually has the same peer: reuse its slot without a lookup.
        let files = &self.owners.slots[slot as usize].files;
        let peer_slot = match files.last() {
            Some(&last) if self.peers.addr(self.entries.meta[last as usize].peer) == peer => {
                let p = self.entries.meta[last as usize].peer;
                self.peers.add_ref(p);
                p
            }
            _ => self.peers.acquire(peer),
        };
        let owner_files = &mut self.owners.slots[slot as usize].files;
        let owner_pos = id32(owner_files.len());
        reserve(owner_files, 1);
        owner_files.push(id);
        let e = &mut self.entries;
        if e.arena.capacity() - e.arena.len() < name.len() {
            e.arena.reserve_exact(name.len().max(e.arena.len() / 8));
        }
        e.arena.push_str(name);
        reserve(&mut e.meta, 1);
        e.meta.push(Meta {
            end: e.arena.len() as u64,
            owner: slot,
            owner_pos,
            peer: peer_slot,
            hash: self.hashes.put(hash),
            size,
        });
        let entries = &self.entries;
        self.names.insert(h, id, |id| entries.hash_of(id));
        self.live += 1;
        self.live_bytes += name.len();
        grams_of(name.as_bytes(), &mut self.scratch);
        for &g in &self.scratch {
            let lists = &mut self.lists;
            let list = self.grams.get_or_insert(g, || {
                lists.push(Postings::default());
                id32(lists.len() - 1)
            });
            self.lists[list as usize].push(id);
        }
    }

    /// Moves every file of `owner` to `peer` (its file server moved).
    pub fn set_peer(&mut self, owner: OwnerId, peer: PeerAddr) {
        let Some(&slot) = self.owners.by_id.get(&owner) else {
            return;
        };
        // Held while the files move, so the new slot cannot be freed under them.
        let new = self.peers.acquire(peer);
        for &id in &self.owners.slots[slot as usize].files {
            let m = &mut self.entries.meta[id as usize];
            if m.peer != new {
                self.peers.release(m.peer);
                self.peers.add_ref(new);
                m.peer = new;
            }
        }
        self.peers.release(new);
    }

    /// Stops sharing `name` from `owner`; returns whether it was shared.
    pub fn unregister(&mut self, owner: OwnerId, name: &str) -> bool {
        let Some(&slot) = self.owners.by_id.get(&owner) else {
            return false;
        };
        let h = name_hash(slot, name.as_bytes());
        let entries = &self.entries;
        let Some(id) = self.names.find(h, |id| {
            entries.meta[id as usize].owner == slot && entries.name(id) == name
        }) else {
            return false;
        };
        self.names.remove(h, id);
        let pos = self.entries.meta[id as usize].owner_pos;
        let files = &mut self.owners.slots[slot as usize].files;
        files.swap_remove(pos as usize);
        if let Some(&moved) = files.get(pos as usize) {
            self.entries.meta[moved as usize].owner_pos = pos;
        }
        if files.is_empty() {
            self.owners.release(slot);
        }
        self.bury(id);
        self.maybe_compact();
        true
    }

    /// Removes every file of `owner`; returns how many there were.
    pub fn remove_owner(&mut self, owner: OwnerId) -> usize {
        let Some(&slot) = self.owners.by_id.get(&owner) else {
            return 0;
        };
        let files = std::mem::take(&mut self.owners.slots[slot as usize].files);
        self.owners.release(slot);
        for &id in &files {
            let entries = &self.entries;
            self.names.remove(entries.hash_of(id), id);
            self.bury(id);
        }
        self.maybe_compact();
        files.len()
    }

    /// Marks `id` (out of the name table and its owner's list already) as removed.
    fn bury(&mut self, id: u32) {
        let len = self.entries.name(id).len();
        let m = &mut self.entries.meta[id as usize];
        self.peers.release(m.peer);
        self.hashes.free(m.hash);
        m.owner = NONE;
        m.hash = NONE;
        self.live -= 1;
        self.live_bytes -= len;
    }

    fn maybe_compact(&mut self) {
        let dead = self.entries.len() - self.live;
        if dead >= MIN_COMPACT && dead > self.live {
            self.compact();
        }
    }

    /// Drops every tombstone now: renumbers the live entries densely (keeping their order)
    /// and rewrites the name arena, the posting lists and the tables. The index does this by
    /// itself once removed entries outnumber live ones; calling it early only costs time.
    pub fn compact(&mut self) {
        let old = std::mem::take(&mut self.entries);
        let r = Renumber::new(old.len(), |id| old.is_live(id));
        let mut entries = Entries {
            arena: String::with_capacity(self.live_bytes),
            meta: Vec::with_capacity(self.live),
        };
        let mut hashes = Hashes {
            slots: Vec::with_capacity(self.hashes.slots.len() - self.hashes.free.len()),
            free: Vec::new(),
        };
        for id in (0..id32(old.len())).filter(|&id| old.is_live(id)) {
            let mut m = old.meta[id as usize];
            m.hash = hashes.put(self.hashes.get(m.hash));
            entries.arena.push_str(old.name(id));
            m.end = entries.arena.len() as u64;
            entries.meta.push(m);
        }
        drop(old);
        self.entries = entries;
        self.hashes = hashes;
        for owner in &mut self.owners.slots {
            for id in &mut owner.files {
                *id = r.get(*id).expect("owners list live ids only");
            }
        }
        let entries = &self.entries;
        self.names.remap(&r, |id| entries.hash_of(id));
        // Rewrite the posting lists, dropping those left empty.
        let old_lists = std::mem::take(&mut self.lists);
        let old_grams = std::mem::take(&mut self.grams);
        let mut scratch = Vec::new();
        for (g, list) in old_grams.pairs() {
            let fresh = old_lists[list as usize].remap(&r, &mut scratch);
            if fresh.count() > 0 {
                let lists = &mut self.lists;
                self.grams.get_or_insert(g, || {
                    lists.push(fresh);
                    id32(lists.len() - 1)
                });
            }
        }
        self.lists.shrink_to_fit();
    }

    /// Calls `each` for every file whose name contains `pattern` (case-sensitive), in
    /// registration order, until `cap` calls have returned `true` (`each` returns `false`
    /// for a match it leaves out); returns the number of matches reported.
    ///
    /// A pattern of 3 bytes or more is looked up by its trigrams; a shorter one scans the
    /// files in order until the cap is reached (see the module docs).
    pub fn search(
        &self,
        pattern: &str,
        cap: usize,
        mut each: impl FnMut(Hit<'_>) -> bool,
    ) -> usize {
        let mut found = 0;
        if cap == 0 {
            return 0;
        }
        let mut visit = |id: u32| -> bool {
            let name = self.entries.name(id);
            if contains(name, pattern) {
                let m = &self.entries.meta[id as usize];
                let hit = Hit {
                    name,
                    peer: self.peers.addr(m.peer),
                    size: m.size,
                    hash: self.hashes.get(m.hash),
                };
                if each(hit) {
                    found += 1;
                }
            }
            found < cap
        };
        if pattern.len() < 3 {
            for id in 0..id32(self.entries.len()) {
                if self.entries.is_live(id) && !visit(id) {
                    break;
                }
            }
            return found;
        }
        let mut grams = Vec::new();
        grams_of(pattern.as_bytes(), &mut grams);
        let mut lists = Vec::with_capacity(grams.len());
        for g in grams {
            match self.grams.get(g) {
                Some(list) => lists.push(&self.lists[list as usize]),
                // A trigram no name has: no name contains the pattern.
                None => return 0,
            }
        }
        lists.sort_by_key(|l| l.count());
        let (driver, rest) = lists
            .split_first()
            .expect("a pattern of 3 bytes has a trigram");
        // A long list is worth narrowing with the next rarest ones: their cursors mostly
        // read a few gaps a seek, cheaper than reading a candidate's name from elsewhere in
        // memory. More than `FILTERS` of them cost more than they save (measured).
        let mut filters: Vec<Cursor<'_>> = Vec::new();
        if driver.count() >= FILTER_FROM {
            filters.extend(rest.iter().take(FILTERS).map(|l| l.cursor()));
        }
        let mut walk = driver.cursor();
        'walk: while let Some(mut id) = walk.next() {
            // Leapfrog: move every cursor to the first id all of them may hold.
            let mut i = 0;
            while i < filters.len() {
                match filters[i].seek(id) {
                    None => break 'walk,
                    Some(next) if next == id => i += 1,
                    Some(next) => {
                        match walk.seek(next) {
                            None => break 'walk,
                            Some(n) => id = n,
                        }
                        i = 0;
                    }
                }
            }
            if self.entries.is_live(id) && !visit(id) {
                break;
            }
        }
        found
    }

    /// The number of files shared by everyone.
    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// The number of files `owner` shares.
    pub fn owner_len(&self, owner: OwnerId) -> usize {
        self.owners
            .by_id
            .get(&owner)
            .map_or(0, |&slot| self.owners.slots[slot as usize].files.len())
    }

    /// Approximately how many bytes of heap the index holds: the name arena, the entry
    /// tables, the posting lists and the lookup tables (capacity, not length; the small
    /// per-node overhead of the owner and peer maps is estimated).
    pub fn heap_bytes(&self) -> usize {
        use std::mem::size_of;
        let e = &self.entries;
        let owners = self.owners.slots.capacity() * size_of::<Owner>()
            + self
                .owners
                .slots
                .iter()
                .map(|o| o.files.capacity() * 4)
                .sum::<usize>()
            + self.owners.by_id.len() * (size_of::<(OwnerId, u32)>() + 8)
            + self.owners.free.capacity() * 4;
        let peers = self.peers.slots.capacity() * size_of::<(PeerAddr, u32)>()
            + self.peers.by_addr.len() * (size_of::<(PeerAddr, u32)>() + 8)
            + self.peers.free.capacity() * 4;
        e.arena.capacity()
            + e.meta.capacity() * size_of::<Meta>()
            + self.hashes.slots.capacity() * 32
            + self.hashes.free.capacity() * 4
            + owners
            + peers
            + self.names.heap_bytes()
            + self.grams.heap_bytes()
            + self.lists.capacity() * size_of::<Postings>()
            + self.lists.iter().map(Postings::heap_bytes).sum::<usize>()
            + self.scratch.capacity() * 4
    }

    /// Bytes of live file names held (the part of [`Index::heap_bytes`] that is the names
    /// themselves).
    pub fn name_bytes(&self) -> usize {
        self.live_bytes
    }

    /// Checks the index's internal agreement; for tests. Slow: it decodes every posting
    /// list.
    pub fn check_invariants(&self) {
        let e = &self.entries;
        let n = e.len();
        assert_eq!(e.meta.last().map_or(0, |m| m.end as usize), e.arena.len());
        assert!(e.meta.windows(2).all(|w| w[0].end <= w[1].end));
        let live: Vec<u32> = (0..id32(n)).filter(|&id| e.is_live(id)).collect();
        assert_eq!(live.len(), self.live);
        let live_bytes: usize = live.iter().map(|&id| e.name(id).len()).sum();
        assert_eq!(live_bytes, self.live_bytes);
        // Owners: every live entry is in its owner's list, at the place it says.
        let mut total = 0;
        for (owner, &slot) in &self.owners.by_id {
            let o = &self.owners.slots[slot as usize];
            assert_eq!(o.id, *owner);
            assert!(!o.files.is_empty(), "an owner without files is released");
            for (pos, &id) in o.files.iter().enumerate() {
                let m = &e.meta[id as usize];
                assert_eq!((m.owner, m.owner_pos as usize), (slot, pos));
            }
            total += o.files.len();
        }
        assert_eq!(total, self.live);
        assert_eq!(
            self.owners.by_id.len() + self.owners.free.len(),
            self.owners.slots.len()
        );
        // The name table holds exactly the live entries, each findable by (owner, name).
        assert_eq!(self.names.len(), self.live);
        assert_eq!(self.names.ids().count(), self.live);
        for &id in &live {
            let m = &e.meta[id as usize];
            let name = e.name(id);
            let found = self.names.find(name_hash(m.owner, name.as_bytes()), |x| {
                e.meta[x as usize].owner == m.owner && e.name(x) == name
            });
            assert_eq!(found, Some(id));
        }
        // Peers: reference counts are the number of live entries using each.
        let mut refs = vec![0u32; self.peers.slots.len()];
        for &id in &live {
            refs[e.meta[id as usize].peer as usize] += 1;
        }
        for (slot, &(addr, count)) in self.peers.slots.iter().enumerate() {
            assert_eq!(count, refs[slot]);
            if count > 0 {
                assert_eq!(self.peers.by_addr.get(&addr), Some(&id32(slot)));
            }
        }
        assert_eq!(
            self.peers.by_addr.len() + self.peers.free.len(),
            self.peers.slots.len()
        );
        // Hashes: each used slot belongs to one live entry.
        let mut used = vec![false; self.hashes.slots.len()];
        for &slot in &self.hashes.free {
            assert!(!std::mem::replace(&mut used[slot as usize], true));
        }
        for &id in &live {
            let slot = e.meta[id as usize].hash;
            if slot != NONE {
                assert!(!std::mem::replace(&mut used[slot as usize], true));
            }
        }
        assert!(used.iter().all(|&u| u), "every hash slot used or free");
        // Postings: each list holds exactly the ids (live or dead) whose names hold its
        // trigram.
        assert_eq!(self.grams.len(), self.lists.len());
        let mut listed = vec![false; self.lists.len()];
        let mut postings = 0usize;
        for (g, list) in self.grams.pairs() {
            assert!(!std::mem::replace(&mut listed[list as usize], true));
            let ids = self.lists[list as usize].check();
            let bytes = [(g >> 16) as u8, (g >> 8) as u8, g as u8];
            for &id in &ids {
                assert!(e.name(id).as_bytes().windows(3).any(|w| w == bytes));
            }
            postings += ids.len();
        }
        let mut grams = Vec::new();
        let mut expected = 0usize;
        for id in 0..id32(n) {
            grams_of(e.name(id).as_bytes(), &mut grams);
            expected += grams.len();
        }
        assert_eq!(postings, expected, "every name's trigrams are posted once");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(port: u16) -> PeerAddr {
        PeerAddr(([127, 0, 0, 1], port).into())
    }

    fn names(ix: &Index, pattern: &str) -> Vec<String> {
        let mut out = Vec::new();
        ix.search(pattern, usize::MAX, |h| {
            out.push(format!("{}@{}", h.name, h.peer));
            true
        });
        out
    }

    fn plain(ix: &Index, pattern: &str) -> Vec<String> {
        let mut out = Vec::new();
        ix.search(pattern, usize::MAX, |h| {
            out.push(h.name.to_owned());
            true
        });
        out
    }

    #[test]
    fn owners_on_one_host_are_separate() {
        let mut ix = Index::new();
        ix.register(OwnerId(1), peer(1235), "a.txt", 1, None);
        ix.register(OwnerId(2), peer(4000), "a.txt", 1, None);
        assert_eq!(names(&ix, "a"), ["a.txt@127.0.0.1", "a.txt@127.0.0.1:4000"]);
        assert_eq!(
            names(&ix, "a.t"),
            ["a.txt@127.0.0.1", "a.txt@127.0.0.1:4000"]
        );
        assert_eq!(ix.remove_owner(OwnerId(1)), 1);
        assert_eq!(names(&ix, "a"), ["a.txt@127.0.0.1:4000"]);
        assert_eq!(names(&ix, "txt"), ["a.txt@127.0.0.1:4000"]);
        ix.check_invariants();
    }

    #[test]
    fn reregistering_keeps_the_place_and_updates_size() {
        let mut ix = Index::new();
        ix.register(OwnerId(1), peer(1235), "b", 1, None);
        ix.register(OwnerId(1), peer(1235), "c", 1, None);
        let hash = ContentHash([7; 32]);
        ix.register(OwnerId(1), peer(4000), "b", 9, Some(hash));
        let mut sizes = Vec::new();
        ix.search("", 10, |h| {
            sizes.push((h.name.to_owned(), h.size, h.hash, h.peer));
            true
        });
        assert_eq!(
            sizes,
            [
                ("b".to_owned(), 9, Some(hash), peer(4000)),
                ("c".to_owned(), 1, None, peer(1235))
            ]
        );
        ix.check_invariants();
        assert!(ix.unregister(OwnerId(1), "b"));
        assert!(!ix.unregister(OwnerId(1), "b"));
        assert_eq!(ix.search("", 1, |_| true), 1);
        ix.check_invariants();
    }

    #[test]
    fn trigram_search_verifies_and_keeps_order() {
        let mut ix = Index::new();
        for (i, name) in ["abcd", "bcda", "xabc", "ab cd", "cdab", "abcabc", "zzz"]
            .iter()
            .enumerate()
        {
            ix.register(OwnerId(i as u64 % 2), peer(1), name, 0, None);
        }
        assert_eq!(plain(&ix, "abc"), ["abcd", "xabc", "abcabc"]);
        assert_eq!(plain(&ix, "bcd"), ["abcd", "bcda"]);
        // All its trigrams are posted for "abcabc" but only it has the whole pattern.
        assert_eq!(plain(&ix, "cab"), ["abcabc"]);
        assert_eq!(plain(&ix, "abcd"), ["abcd"]);
        assert!(plain(&ix, "abd").is_empty());
        assert!(plain(&ix, "qqq").is_empty());
        assert_eq!(plain(&ix, "zzz"), ["zzz"]);
        assert!(plain(&ix, "zzzz").is_empty());
        assert_eq!(plain(&ix, "d"), ["abcd", "bcda", "ab cd", "cdab"]);
    }

    #[test]
    fn the_cap_counts_only_accepted_hits() {
        let mut ix = Index::new();
        for i in 0..10 {
            ix.register(OwnerId(0), peer(1), &format!("song {i}.mp3"), i, None);
        }
        for pattern in ["", "s", "song", ".mp3"] {
            let mut seen = Vec::new();
            let found = ix.search(pattern, 3, |h| {
                seen.push(h.size);
                h.size % 2 == 1
            });
            assert_eq!(found, 3, "pattern {pattern:?}");
            assert_eq!(seen, [0, 1, 2, 3, 4, 5], "pattern {pattern:?}");
        }
        assert_eq!(ix.search("song", 0, |_| unreachable!()), 0);
    }

    #[test]
    fn multibyte_names_match_bytewise() {
        let mut ix = Index::new();
        ix.register(OwnerId(0), peer(1), "café.ogg", 1, None);
        ix.register(OwnerId(0), peer(1), "é", 1, None);
        ix.register(OwnerId(0), peer(1), "日本語の歌", 1, None);
        assert_eq!(plain(&ix, "é"), ["café.ogg", "é"]);
        assert_eq!(plain(&ix, "fé."), ["café.ogg"]);
        assert_eq!(plain(&ix, "本語"), ["日本語の歌"]);
        assert_eq!(plain(&ix, "語の歌"), ["日本語の歌"]);
        ix.check_invariants();
    }

    #[test]
    fn removals_compact_and_keep_order() {
        let mut ix = Index::new();
        let mut model = Vec::new();
        for round in 0..6u64 {
            for owner in 0..4u64 {
                for i in 0..50 {
                    let name = format!("track {i:02} by owner{owner} round{round}.mp3");
                    ix.register(OwnerId(round * 4 + owner), peer(1), &name, i, None);
                    model.push((round * 4 + owner, name));
                }
            }
            // Drop two of the four owners of this round and half the files of another.
            for gone in [round * 4, round * 4 + 2] {
                assert_eq!(ix.remove_owner(OwnerId(gone)), 50);
                model.retain(|(o, _)| *o != gone);
            }
            for i in (0..50).step_by(2) {
                let o = round * 4 + 1;
                let name = format!("track {i:02} by owner{o} round{round}.mp3");
                let name = name.replace(&format!("owner{o}"), "owner1");
                assert!(ix.unregister(OwnerId(o), &name));
                model.retain(|(mo, n)| !(*mo == o && *n == name));
            }
            ix.check_invariants();
            for pattern in [
                "",
                "track 0",
                "owner1",
                "round3",
                "7 by",
                "owner3 round5.mp3",
            ] {
                let want: Vec<String> = model
                    .iter()
                    .filter(|(_, n)| n.contains(pattern))
                    .map(|(_, n)| n.clone())
                    .collect();
                assert_eq!(plain(&ix, pattern), want, "pattern {pattern:?}");
            }
        }
        assert!(ix.entries.len() < 2 * ix.len() + MIN_COMPACT);
        ix.compact();
        ix.check_invariants();
        assert_eq!(ix.entries.len(), ix.len());
    }

    #[test]
    fn filters_narrow_long_lists() {
        // Long lists for "abc" and "bcd" whose intersection is small.
        let mut ix = Index::new();
        let mut want = Vec::new();
        for i in 0..5000u32 {
            let name = match i % 5 {
                0 => format!("{i} abc"),
                1 => format!("{i} bcd"),
                2 if i % 1000 == 2 => format!("{i} abcd"),
                2 => format!("{i} abc bcd"),
                _ => format!("{i} other"),
            };
            if name.contains("abcd") {
                want.push(name.clone());
            }
            ix.register(OwnerId(u64::from(i % 7)), peer(1), &name, 0, None);
        }
        assert_eq!(plain(&ix, "abcd"), want);
        assert_eq!(ix.remove_owner(OwnerId(2)), 714);
        want.retain(|n| n.split(' ').next().unwrap().parse::<u32>().unwrap() % 7 != 2);
        assert_eq!(plain(&ix, "abcd"), want);
        ix.check_invariants();
    }
}
