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
//! stay under 100 bytes of memory per file beyond the name (content hash included), drop a
//! client's thousands of files in about a millisecond, and never make one request pay for
//! the whole index (no pause of more than a few milliseconds at ten million files).
//!
//! - **Entries** get ids in registration order (`u32`, growing only, never renumbered while
//!   ids last), so "registration order" is "ascending id" everywhere. They live in segments
//!   of 4,096 consecutive ids (see `entries.rs`): per segment, the present entries' 16-byte
//!   records (end of the name in the segment's name arena, peer, size), their names back to
//!   back, their 32-byte content hashes (a column only segments with a hashed file have),
//!   and bitmaps (live, present, hashed) with a count every 64 ids, so an id finds its record
//!   with one popcount. A segment whose dead entries reach half of it is rewritten without
//!   them (microseconds); an all-dead one is freed.
//! - **Trigrams**: for every distinct 3-byte window of a name, the entry's id is appended to
//!   that trigram's posting list (gaps bit-packed in blocks of 128, see `postings.rs`). A
//!   pattern of 3 bytes or more can only occur in a name that holds all of the pattern's
//!   trigrams, so a search walks the rarest of them in id order (which is result order, so it
//!   can stop at the cap), a block of 128 ids at a time: it drops the ids missing from the
//!   next two rarest lists (merging with their blocks where those are dense around the
//!   block's ids, seeking forward in them where sparse; a list that drops almost nothing is
//!   left out for the rest of the walk), looks up the names of the block's remaining live
//!   ids together (their cache misses overlap), and confirms each with a real substring
//!   test.
//! - **Short patterns** (1 or 2 bytes) have no trigram of their own, but every name that
//!   holds one is in the list of some trigram containing it, or (under three bytes) in the
//!   list of short names, posted under a key no trigram has. A short pattern that some list
//!   shows to be common (one live entry in `SCAN_SHARE`) scans the entries in order and
//!   soon meets the cap; a rarer one walks the union of those lists in id order (a merge on
//!   a heap). So a byte pair in no name costs a pass over the trigram table, not a scan of
//!   every name (which took 100 ms at ten million). The empty pattern scans: everything
//!   matches it.
//! - **Owners**: each owner has a table of its entry ids by name hash (open addressing, see
//!   `table.rs`): it finds the entry a re-registration or an unregistration means, and it is
//!   the owner's file list, so removing an owner touches only its own entries. Entries do not
//!   name their owner.
//! - **Peers** are interned with their text as the replies write it (`ip` or `ip:port`), so a
//!   search hit hands out the peer's text without formatting it.
//! - **Tombstones and the sweep**: removing an entry clears its live bit; its id stays in the
//!   posting lists (searches skip dead ids). Once dead ids the lists may hold pass half the
//!   live entries, a sweep rewrites the lists one after another without their dead ids, a few
//!   blocks at a time: every register, unregister or removed file pays a share of it (twice
//!   the postings per live entry, at most [`MAX_STEP`] postings a call), so a sweep is done
//!   before the dead pass the living again, and no call pays for the whole index. Ids are
//!   never reused, so a dead id dropped from a list can never be wanted there again.
//!
//! Costs, for an index of `n` files: `register` O(name length) (plus amortised growth and
//! sweep share); `unregister` O(name length); `remove_owner` O(files of the owner);
//! `set_peer` O(files of the owner); `search` with a pattern of 3 bytes or more O(length of
//! its rarest trigram's list, at most `n` plus tombstones), usually far less; shorter
//! patterns O(trigrams in the table) plus the entries scanned or merged before the cap. Nothing iterates a hash table to
//! produce output: results come from id order alone, so they are deterministic.
//!
//! The id space is `u32`: when more than `u32::MAX - 1` files have been registered over the
//! index's life, the next registration renumbers the live ones densely, rebuilding the index
//! (a pause proportional to it, once per four billion registrations).

mod entries;
mod postings;
mod table;

use std::collections::BTreeMap;
use std::fmt;

use memchr::memmem;

use self::entries::{Entries, Entry};
use self::postings::{Cursor, Postings, Rewrite, BLOCK};
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
    /// `peer` as `SEARCH` and `FIND` replies write it (`ip`, or `ip:port` off the classic
    /// port), kept with the interned peer: no formatting per hit.
    pub peer_text: &'a str,
    pub size: u64,
    /// The content hash, when the sharing client gave one (the extension).
    pub hash: Option<ContentHash>,
}

/// "None" in `u32` fields.
const NONE: u32 = u32::MAX;

/// Below this many dead ids in the posting lists the index does not sweep them.
const MIN_STALE: usize = 64;

/// The most postings one call reads for the sweep (about half a millisecond); a call owing
/// more leaves the rest to later calls.
pub const MAX_STEP: usize = 1 << 16;

/// Ids a segment of entries covers, as a power of two.
const SEG_BITS: u32 = 12;

/// A pattern of one or two bytes scans the entries when one of its lists holds at least
/// one live entry in this many (then the scan meets the cap within about this many times
/// the cap's entries); rarer ones walk the union of their lists.
const SCAN_SHARE: usize = 16;

/// How many of the next rarest lists narrow the rarest one.
const FILTERS: usize = 2;
/// A filter that removes less than one candidate in `USEFUL_SHARE` from a chunk of at
/// least `USEFUL_FROM` is dropped.
const USEFUL_SHARE: usize = 16;
const USEFUL_FROM: usize = 32;

/// Peer addresses, interned: entries hold a `u32`, not a 32-byte `SocketAddr`.
#[derive(Debug, Default)]
struct Peers {
    by_addr: BTreeMap<PeerAddr, u32>,
    slots: Vec<Peer>,
    free: Vec<u32>,
}

#[derive(Debug)]
struct Peer {
    addr: PeerAddr,
    /// `addr` as replies write it.
    text: Box<str>,
    /// Entries using it (0: a free slot).
    refs: u32,
}

impl Peers {
    fn acquire(&mut self, addr: PeerAddr) -> u32 {
        let slot = match self.by_addr.get(&addr) {
            Some(&slot) => slot,
            None => {
                let peer = Peer {
                    addr,
                    text: addr.to_string().into_boxed_str(),
                    refs: 0,
                };
                let slot = put_in_slot(&mut self.slots, &mut self.free, peer);
                self.by_addr.insert(addr, slot);
                slot
            }
        };
        self.slots[slot as usize].refs += 1;
        slot
    }

    /// Takes another reference to `slot` if it is in use for `addr`.
    fn reuse(&mut self, slot: u32, addr: PeerAddr) -> bool {
        match self.slots.get_mut(slot as usize) {
            Some(p) if p.refs > 0 && p.addr == addr => {
                p.refs += 1;
                true
            }
            _ => false,
        }
    }

    fn add_ref(&mut self, slot: u32) {
        self.slots[slot as usize].refs += 1;
    }

    fn release(&mut self, slot: u32) {
        let p = &mut self.slots[slot as usize];
        p.refs -= 1;
        if p.refs == 0 {
            self.by_addr.remove(&p.addr);
            p.text = Box::default();
            self.free.push(slot);
        }
    }

    fn get(&self, slot: u32) -> &Peer {
        &self.slots[slot as usize]
    }
}

/// One owner: its id, its files by name, and the peer slot of its last registration.
#[derive(Debug)]
struct Owner {
    id: OwnerId,
    files: IdTable,
    last_peer: u32,
}

/// Owners by slot; a slot is reused once its owner has no files left.
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
            files: IdTable::default(),
            last_peer: NONE,
        };
        let slot = put_in_slot(&mut self.slots, &mut self.free, owner);
        self.by_id.insert(id, slot);
        slot
    }

    /// Frees `slot` (whose files are gone); returns its file table.
    fn release(&mut self, slot: u32) -> IdTable {
        let owner = &mut self.slots[slot as usize];
        self.by_id.remove(&owner.id);
        self.free.push(slot);
        std::mem::take(&mut owner.files)
    }
}

/// A sweep of the posting lists under way.
#[derive(Debug, Default)]
struct Sweep {
    /// The list being rewritten.
    list: usize,
    rewrite: Rewrite,
    /// The dead ids there were when the sweep began: none is in any list once it is done.
    clears: usize,
}

/// Knobs that tests turn down so that small indexes exercise segments, sweeps in many steps
/// and running out of ids.
#[derive(Debug, Clone, Copy)]
struct Tuning {
    seg_bits: u32,
    min_stale: usize,
    max_step: usize,
    id_limit: u32,
    /// A short pattern scans when one of its lists holds at least one entry in this many.
    scan_share: usize,
}

impl Default for Tuning {
    fn default() -> Self {
        Self {
            seg_bits: SEG_BITS,
            min_stale: MIN_STALE,
            max_step: MAX_STEP,
            id_limit: NONE,
            scan_share: SCAN_SHARE,
        }
    }
}

/// The in-memory index. See the module docs for its layout and costs.
pub struct Index {
    entries: Entries,
    /// Live entries.
    live: usize,
    /// Bytes of live names.
    live_bytes: usize,
    peers: Peers,
    owners: Owners,
    /// Trigram to posting list.
    grams: GramMap,
    lists: Vec<Postings>,
    /// Ids in all posting lists, dead ones included.
    postings: usize,
    /// Dead ids the posting lists may still hold.
    stale: usize,
    sweep: Option<Sweep>,
    /// Sweeps done.
    sweeps: u64,
    /// Postings owed to the sweep.
    debt: usize,
    tuning: Tuning,
    /// A reusable buffer for a name's trigrams.
    scratch: Vec<u32>,
}

impl Default for Index {
    fn default() -> Self {
        Self::with_tuning(Tuning::default())
    }
}

impl fmt::Debug for Index {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Index")
            .field("files", &self.live)
            .field("stale", &self.stale)
            .field("sweeps", &self.sweeps)
            .field("owners", &self.owners.by_id.len())
            .field("trigrams", &self.lists.len())
            .finish_non_exhaustive()
    }
}

/// A `usize` known to fit a `u32` id.
/// Stores `item` in a freed slot of `slots` if there is one, else in a new one; returns
/// the slot.
fn put_in_slot<T>(slots: &mut Vec<T>, free: &mut Vec<u32>, item: T) -> u32 {
    match free.pop() {
        Some(slot) => {
            slots[slot as usize] = item;
            slot
        }
        None => {
            slots.push(item);
            id32(slots.len() - 1)
        }
    }
}

fn id32(n: usize) -> u32 {
    u32::try_from(n).expect("fewer than 2^32 ids")
}

/// A trigram as a number: its three bytes, big-endian, in the low 24 bits.
#[inline]
fn gram(w: &[u8]) -> u32 {
    u32::from(w[0]) << 16 | u32::from(w[1]) << 8 | u32::from(w[2])
}

/// The key a name too short for a trigram is posted under (no trigram reaches 2^24).
const SHORT: u32 = 1 << 24;

/// The distinct trigrams of `s`, sorted, into `out`; [`SHORT`] alone for a name of fewer
/// than three bytes, so that every name is in some list.
fn grams_of(s: &[u8], out: &mut Vec<u32>) {
    out.clear();
    out.extend(s.windows(3).map(gram));
    out.sort_unstable();
    out.dedup();
    if s.len() < 3 {
        out.push(SHORT);
    }
}

/// Whether `hay` contains the finder's needle, byte-wise.
#[inline]
fn contains(hay: &str, finder: &memmem::Finder<'_>) -> bool {
    let h = hay.as_bytes();
    if finder.needle().len() > h.len() {
        return false;
    }
    finder.find(h).is_some()
}

impl Index {
    pub fn new() -> Self {
        Self::default()
    }

    fn with_tuning(tuning: Tuning) -> Self {
        Self {
            entries: Entries::new(tuning.seg_bits),
            live: 0,
            live_bytes: 0,
            peers: Peers::default(),
            owners: Owners::default(),
            grams: GramMap::default(),
            lists: Vec::new(),
            postings: 0,
            stale: 0,
            sweep: None,
            sweeps: 0,
            debt: 0,
            tuning,
            scratch: Vec::new(),
        }
    }

    /// An index with tiny segments (`2^seg_bits` ids), sweeps that start at `min_stale` dead
    /// ids and read at most `max_step` postings a call, ids that run out at `id_limit`, and
    /// short patterns that never scan: so that tests of a few hundred files reach every
    /// path. For tests only.
    #[doc(hidden)]
    pub fn for_tests(seg_bits: u32, min_stale: usize, max_step: usize, id_limit: u32) -> Self {
        Self::with_tuning(Tuning {
            seg_bits,
            min_stale,
            max_step: max_step.max(1),
            id_limit,
            scan_share: 0,
        })
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
        if self.entries.next_id() >= self.tuning.id_limit {
            self.renumber();
        }
        let slot = self.owners.slot_or_insert(owner);
        let h = name_hash(name.as_bytes());
        let entries = &self.entries;
        let o = &mut self.owners.slots[slot as usize];
        if let Some(id) = o.files.find(h, |id| entries.name(id) == name) {
            let m = self.entries.update(id, size, hash);
            if self.peers.get(m.peer).addr != peer {
                self.peers.release(m.peer);
                m.peer = self.peers.acquire(peer);
                o.last_peer = m.peer;
            }
            return;
        }
        // The owner's last file usually has the same peer: reuse its slot without a lookup.
        let peer_slot = if self.peers.reuse(o.last_peer, peer) {
            o.last_peer
        } else {
            self.peers.acquire(peer)
        };
        o.last_peer = peer_slot;
        let id = self.entries.push(name, peer_slot, size, hash);
        let entries = &self.entries;
        o.files
            .insert(h, id, |id| name_hash(entries.name(id).as_bytes()));
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
        self.postings += self.scratch.len();
        self.maintain(1);
    }

    /// Moves every file of `owner` to `peer` (its file server moved).
    pub fn set_peer(&mut self, owner: OwnerId, peer: PeerAddr) {
        let Some(&slot) = self.owners.by_id.get(&owner) else {
            return;
        };
        // Held while the files move, so the new slot cannot be freed under them.
        let new = self.peers.acquire(peer);
        let o = &mut self.owners.slots[slot as usize];
        for id in o.files.ids() {
            let m = self.entries.meta_mut(id);
            if m.peer != new {
                self.peers.release(m.peer);
                self.peers.add_ref(new);
                m.peer = new;
            }
        }
        o.last_peer = new;
        self.peers.release(new);
    }

    /// Stops sharing `name` from `owner`; returns whether it was shared.
    pub fn unregister(&mut self, owner: OwnerId, name: &str) -> bool {
        let Some(&slot) = self.owners.by_id.get(&owner) else {
            return false;
        };
        let h = name_hash(name.as_bytes());
        let entries = &self.entries;
        let files = &mut self.owners.slots[slot as usize].files;
        let Some(id) = files.find(h, |id| entries.name(id) == name) else {
            return false;
        };
        files.remove(h, id);
        if files.len() == 0 {
            self.owners.release(slot);
        }
        self.bury(id);
        self.maintain(1);
        true
    }

    /// Removes every file of `owner`; returns how many there were.
    pub fn remove_owner(&mut self, owner: OwnerId) -> usize {
        let Some(&slot) = self.owners.by_id.get(&owner) else {
            return 0;
        };
        let files = self.owners.release(slot);
        for id in files.ids() {
            self.bury(id);
        }
        self.maintain(files.len());
        files.len()
    }

    /// Marks `id` (out of its owner's table already) as removed.
    fn bury(&mut self, id: u32) {
        let (peer, len) = self.entries.kill(id);
        self.peers.release(peer);
        self.live -= 1;
        self.live_bytes -= len;
        self.stale += 1;
    }

    /// Pays `units` calls' or files' share of the sweep, starting one when the dead ids in
    /// the posting lists pass half the live entries.
    fn maintain(&mut self, units: usize) {
        if self.sweep.is_none() {
            if self.stale < self.tuning.min_stale || self.stale * 2 <= self.live {
                return;
            }
            self.sweep = Some(Sweep {
                clears: self.stale,
                ..Sweep::default()
            });
            self.debt = 0;
        }
        // Twice the postings per live entry, a unit: the sweep is done before as many
        // entries as half the living have come or gone.
        let pace = 2 * self.postings / self.live.max(1) + 1;
        self.debt = self.debt.saturating_add(units.saturating_mul(pace));
        let budget = self.debt.min(self.tuning.max_step);
        let used = self.sweep_for(budget);
        self.debt -= used.min(self.debt);
    }

    /// Sweeps about `budget` postings (or until the sweep is done); returns the postings
    /// read (at least one a list).
    fn sweep_for(&mut self, budget: usize) -> usize {
        let mut used = 0;
        while used < budget {
            let Some(sweep) = &mut self.sweep else { break };
            let Some(list) = self.lists.get_mut(sweep.list) else {
                self.stale -= sweep.clears;
                self.sweep = None;
                self.sweeps += 1;
                self.debt = 0;
                break;
            };
            let before = list.count() as usize;
            let entries = &self.entries;
            let (read, done) =
                list.rewrite(&mut sweep.rewrite, |id| entries.is_live(id), budget - used);
            used += read.max(1);
            if done {
                self.postings = self.postings - before + list.count() as usize;
                sweep.list += 1;
            }
        }
        used
    }

    /// Drops every tombstone now: finishes the sweep of the posting lists (and sweeps them
    /// again for what died since it began) and rewrites every segment with dead entries.
    /// The index does this by itself, a little at a time; calling it only costs time.
    pub fn compact(&mut self) {
        while self.stale > 0 {
            if self.sweep.is_none() {
                self.sweep = Some(Sweep {
                    clears: self.stale,
                    ..Sweep::default()
                });
            }
            self.sweep_for(usize::MAX);
        }
        self.entries.compact_all();
    }

    /// Out of ids: rebuilds the index from its live entries, renumbered densely in their
    /// order (owners, peers and files the same; owner slots may change).
    fn renumber(&mut self) {
        let mut all: Vec<(u32, OwnerId)> = Vec::with_capacity(self.live);
        for (&owner, &slot) in &self.owners.by_id {
            all.extend(
                self.owners.slots[slot as usize]
                    .files
                    .ids()
                    .map(|id| (id, owner)),
            );
        }
        all.sort_unstable_by_key(|&(id, _)| id);
        assert!(
            (all.len() as u64) < u64::from(self.tuning.id_limit),
            "fewer live files than ids"
        );
        let old = std::mem::replace(self, Self::with_tuning(self.tuning));
        for (id, owner) in all {
            let e = old.entries.get(id).expect("owners hold live ids");
            let peer = old.peers.get(e.meta.peer).addr;
            let hash = e.hash.map(|&h| ContentHash(h));
            self.register(owner, peer, e.name, e.meta.size(), hash);
        }
    }

    /// The posting lists of `pattern`'s `1 + FILTERS` rarest distinct trigrams, rarest first
    /// (`pattern` has 3 bytes or more); `None` if a trigram is in no name, so no name holds
    /// the pattern.
    fn rarest_lists(&self, pattern: &str) -> Option<[Option<&Postings>; 1 + FILTERS]> {
        // The rarest of the pattern's trigrams drives, the next `FILTERS` rarest filter: keep
        // the `1 + FILTERS` rarest distinct lists, rarest first, without allocating.
        let mut rarest: [Option<&Postings>; 1 + FILTERS] = [None; 1 + FILTERS];
        for w in pattern.as_bytes().windows(3) {
            let Some(list) = self.grams.get(gram(w)) else {
                // A trigram no name has: no name contains the pattern.
                return None;
            };
            let mut l = &self.lists[list as usize];
            for slot in &mut rarest {
                match *slot {
                    // A trigram the pattern repeats.
                    Some(s) if std::ptr::eq(s, l) => break,
                    Some(s) if s.count() <= l.count() => {}
                    Some(s) => {
                        *slot = Some(l);
                        l = s;
                    }
                    None => {
                        *slot = Some(l);
                        break;
                    }
                }
            }
        }
        Some(rarest)
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
        let rarest = if pattern.len() < 3 {
            None
        } else {
            match self.rarest_lists(pattern) {
                Some(r) => Some(r),
                None => return 0,
            }
        };
        // Built only once the pattern may match: an absent trigram answers sooner.
        let finder = memmem::Finder::new(pattern);
        let mut report = |e: Entry<'_>| -> bool {
            if contains(e.name, &finder) {
                let peer = self.peers.get(e.meta.peer);
                let hit = Hit {
                    name: e.name,
                    peer: peer.addr,
                    peer_text: &peer.text,
                    size: e.meta.size(),
                    hash: e.hash.map(|&h| ContentHash(h)),
                };
                if each(hit) {
                    found += 1;
                }
            }
            found < cap
        };
        let Some(rarest) = rarest else {
            match self.short_lists(pattern.as_bytes()) {
                Some(lists) => self.union(&lists, report),
                None => self.entries.scan(report),
            }
            return found;
        };
        let [Some(driver), rest @ ..] = rarest else {
            unreachable!("a pattern of 3 bytes has a trigram")
        };
        // The next rarest lists narrow the driver's ids before a name is read: a seek or a
        // merge reads a few gaps of a compact list, a name is a cache miss elsewhere in
        // memory, and most ids of the rarest list are not hits. A third list costs more
        // than it saves, and one list alone saves no more than two (measured).
        let mut filters: [Option<Cursor<'_>>; FILTERS] = rest.map(|l| l.map(Postings::cursor));
        let mut ids = [0u32; BLOCK];
        let mut found_entries: [Option<Entry<'_>>; BLOCK] = [None; BLOCK];
        for block in 0.. {
            // One block of the driver's ids at a time, narrowed list by list.
            let mut len = driver.chunk(block, &mut ids);
            if len == 0 {
                break;
            }
            let mut more = true;
            for slot in &mut filters {
                let Some(f) = slot else { continue };
                if len == 0 {
                    break;
                }
                let (kept, more_here) = f.retain(&mut ids[..len]);
                more &= more_here;
                // A list that passes nearly every candidate costs more seeks than the names
                // it spares (a common word's): the rest of the walk goes without it.
                if len >= USEFUL_FROM && (len - kept) * USEFUL_SHARE < len {
                    *slot = None;
                }
                len = kept;
            }
            // Find every candidate's name first, then test them: the lookups are independent,
            // so their cache misses overlap instead of queueing behind each test.
            for (slot, &id) in found_entries.iter_mut().zip(&ids[..len]) {
                *slot = self.entries.get(id);
            }
            for e in found_entries[..len].iter().flatten() {
                if !report(*e) {
                    return found;
                }
            }
            if !more {
                break;
            }
        }
        found
    }

    /// The lists that hold every name containing `pattern` (at most 2 bytes): those of the
    /// trigrams containing it and the short names'. `None` when scanning is cheaper: the
    /// pattern is empty, or common enough that a scan soon meets the cap.
    fn short_lists(&self, pattern: &[u8]) -> Option<Vec<&Postings>> {
        if pattern.is_empty() {
            return None;
        }
        let mut lists: Vec<u32> = match *pattern {
            // The 512 trigrams `xy?` and `?xy`, looked up: fewer than the table holds.
            [x, y] => (0..=255u8)
                .flat_map(|z| [gram(&[x, y, z]), gram(&[z, x, y])])
                .filter_map(|g| self.grams.get(g))
                .collect(),
            _ => self
                .grams
                .pairs()
                .filter(|&(g, _)| {
                    let bytes = [(g >> 16) as u8, (g >> 8) as u8, g as u8];
                    g != SHORT && bytes.windows(pattern.len()).any(|w| w == pattern)
                })
                .map(|(_, list)| list)
                .collect(),
        };
        lists.extend(self.grams.get(SHORT));
        lists.sort_unstable();
        lists.dedup();
        let lists: Vec<&Postings> = lists.iter().map(|&l| &self.lists[l as usize]).collect();
        let most = lists.iter().map(|l| l.count() as usize).max().unwrap_or(0);
        (most.saturating_mul(self.tuning.scan_share) < self.live).then_some(lists)
    }

    /// Reports the live entries of the union of `lists` in id order, once each, until
    /// `report` says stop: a merge of their cursors on a heap, by next id.
    fn union(&self, lists: &[&Postings], mut report: impl FnMut(Entry<'_>) -> bool) {
        use std::cmp::Reverse;
        let mut cursors: Vec<Cursor<'_>> = lists.iter().map(|l| l.cursor()).collect();
        let mut heap: std::collections::BinaryHeap<Reverse<(u32, usize)>> = cursors
            .iter_mut()
            .enumerate()
            .filter_map(|(i, c)| c.next().map(|id| Reverse((id, i))))
            .collect();
        let mut last = None;
        while let Some(mut top) = heap.peek_mut() {
            let Reverse((id, i)) = *top;
            match cursors[i].next() {
                Some(next) => *top = Reverse((next, i)),
                None => {
                    std::collections::binary_heap::PeekMut::pop(top);
                }
            }
            if last == Some(id) {
                continue;
            }
            last = Some(id);
            if let Some(e) = self.entries.get(id) {
                if !report(e) {
                    return;
                }
            }
        }
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

    /// Approximately how many bytes of heap the index holds: the entries, the posting lists
    /// and the lookup tables (capacity, not length; the small per-node overhead of the owner
    /// and peer maps is estimated).
    pub fn heap_bytes(&self) -> usize {
        self.heap_parts().iter().map(|p| p.1).sum()
    }

    /// [`Index::heap_bytes`] in parts: names, content hashes, the rest of the entries,
    /// owners, peers, posting lists, the trigram map, the sweep's buffers.
    pub fn heap_parts(&self) -> [(&'static str, usize); 8] {
        use std::mem::size_of;
        let owners = self.owners.slots.capacity() * size_of::<Owner>()
            + self
                .owners
                .slots
                .iter()
                .map(|o| o.files.heap_bytes())
                .sum::<usize>()
            + self.owners.by_id.len() * (size_of::<(OwnerId, u32)>() + 8)
            + self.owners.free.capacity() * 4;
        let peers = self.peers.slots.capacity() * size_of::<Peer>()
            + self.peers.slots.iter().map(|p| p.text.len()).sum::<usize>()
            + self.peers.by_addr.len() * (size_of::<(PeerAddr, u32)>() + 8)
            + self.peers.free.capacity() * 4;
        let entries = self.entries.heap_bytes();
        let hashes = self.entries.hash_bytes();
        let names = self.entries.arena_bytes();
        [
            ("names (arena capacity)", names),
            ("content hashes", hashes),
            ("entry records and bitmaps", entries - hashes - names),
            ("owners and their name tables", owners),
            ("peers", peers),
            (
                "posting lists",
                self.lists.capacity() * size_of::<Postings>()
                    + self.lists.iter().map(Postings::heap_bytes).sum::<usize>(),
            ),
            ("trigram map", self.grams.heap_bytes()),
            (
                "sweep and scratch",
                self.sweep.as_ref().map_or(0, |s| s.rewrite.heap_bytes())
                    + self.scratch.capacity() * 4,
            ),
        ]
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
        let live = e.check();
        assert_eq!(live.len(), self.live);
        let live_bytes: usize = live.iter().map(|&id| e.name(id).len()).sum();
        assert_eq!(live_bytes, self.live_bytes);
        assert!(live.last().is_none_or(|&id| id < e.next_id()));
        // Owners: their tables hold exactly the live entries, each findable by name.
        let mut owned = Vec::new();
        for (owner, &slot) in &self.owners.by_id {
            let o = &self.owners.slots[slot as usize];
            assert_eq!(o.id, *owner);
            assert!(o.files.len() > 0, "an owner without files is released");
            assert_eq!(o.files.ids().count(), o.files.len());
            for id in o.files.ids() {
                let name = e.name(id);
                let found = o
                    .files
                    .find(name_hash(name.as_bytes()), |x| e.name(x) == name);
                assert_eq!(found, Some(id));
                owned.push(id);
            }
        }
        owned.sort_unstable();
        assert_eq!(owned, live, "every live entry has one owner");
        assert_eq!(
            self.owners.by_id.len() + self.owners.free.len(),
            self.owners.slots.len()
        );
        // Peers: reference counts are the number of live entries using each.
        let mut refs = vec![0u32; self.peers.slots.len()];
        for &id in &live {
            refs[e.get(id).expect("live").meta.peer as usize] += 1;
        }
        for (slot, p) in self.peers.slots.iter().enumerate() {
            assert_eq!(p.refs, refs[slot]);
            if p.refs > 0 {
                assert_eq!(self.peers.by_addr.get(&p.addr), Some(&id32(slot)));
                assert_eq!(*p.text, p.addr.to_string());
            }
        }
        assert_eq!(
            self.peers.by_addr.len() + self.peers.free.len(),
            self.peers.slots.len()
        );
        // Postings: each live id is in exactly the lists of its name's trigrams; dead ids
        // in the lists are no more than `stale` says.
        assert_eq!(self.grams.len(), self.lists.len());
        let mut listed = vec![false; self.lists.len()];
        let mut pairs = Vec::new();
        let mut dead = Vec::new();
        let mut postings = 0;
        for (g, list) in self.grams.pairs() {
            assert!(!std::mem::replace(&mut listed[list as usize], true));
            let ids = self.lists[list as usize].check();
            postings += ids.len();
            let bytes = [(g >> 16) as u8, (g >> 8) as u8, g as u8];
            for &id in &ids {
                match e.get(id) {
                    Some(entry) => {
                        let name = entry.name.as_bytes();
                        assert!(if g == SHORT {
                            name.len() < 3
                        } else {
                            name.windows(3).any(|w| w == bytes)
                        });
                        pairs.push((id, g));
                    }
                    None => dead.push(id),
                }
            }
        }
        assert_eq!(postings, self.postings);
        dead.sort_unstable();
        dead.dedup();
        assert!(dead.len() <= self.stale, "{} dead ids listed", dead.len());
        pairs.sort_unstable();
        let mut want = Vec::new();
        let mut grams = Vec::new();
        for &id in &live {
            grams_of(e.name(id).as_bytes(), &mut grams);
            want.extend(grams.iter().map(|&g| (id, g)));
        }
        assert_eq!(pairs, want, "every live name's trigrams are posted once");
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
        assert!(ix.stale <= 2 * ix.len() + MIN_STALE);
        ix.compact();
        ix.check_invariants();
        assert_eq!(ix.stale, 0);
        assert!(ix.sweep.is_none());
    }

    #[test]
    fn hits_carry_the_peer_text_and_follow_a_new_join() {
        let mut ix = Index::new();
        ix.register(OwnerId(1), peer(1235), "a.txt", 1, None);
        ix.register(OwnerId(1), peer(1235), "b.txt", 1, None);
        ix.register(OwnerId(2), peer(4000), "c.txt", 1, None);
        let texts = |ix: &Index| {
            let mut out = Vec::new();
            ix.search("txt", 10, |h| {
                assert_eq!(h.peer_text, h.peer.to_string());
                out.push(h.peer_text.to_owned());
                true
            });
            out
        };
        assert_eq!(texts(&ix), ["127.0.0.1", "127.0.0.1", "127.0.0.1:4000"]);
        // Owner 1 re-joins on another port: both files move, and the old slot is freed
        // and taken by a new address, whose text must not be the old one.
        ix.set_peer(OwnerId(1), peer(5000));
        assert_eq!(
            texts(&ix),
            ["127.0.0.1:5000", "127.0.0.1:5000", "127.0.0.1:4000"]
        );
        let v6 = PeerAddr("[::1]:1235".parse().unwrap());
        ix.register(OwnerId(3), v6, "d.txt", 1, None);
        ix.set_peer(OwnerId(2), PeerAddr("[::1]:7".parse().unwrap()));
        assert_eq!(
            texts(&ix),
            ["127.0.0.1:5000", "127.0.0.1:5000", "[::1]:7", "::1"]
        );
        // A re-registration from another address moves only that file.
        ix.register(OwnerId(1), peer(1235), "a.txt", 1, None);
        assert_eq!(
            texts(&ix),
            ["127.0.0.1", "127.0.0.1:5000", "[::1]:7", "::1"]
        );
        ix.check_invariants();
    }

    /// Many removals with tiny segments and a sweep that reads a few postings a call: the
    /// sweep runs over many calls while files come and go, and searches stay exact.
    #[test]
    fn the_sweep_runs_in_steps() {
        let mut ix = Index::for_tests(3, 4, 20, NONE);
        let mut model: Vec<(u64, String)> = Vec::new();
        let mut steps = 0;
        for round in 0..40u64 {
            for i in 0..12u64 {
                let owner = round * 3 + i % 3;
                let name = format!("song {i} of round {round} abc");
                ix.register(OwnerId(owner), peer(1), &name, i, None);
                model.push((owner, name));
            }
            if round >= 2 {
                for gone in [
                    (round - 2) * 3 + round % 3,
                    (round - 2) * 3 + (round + 1) % 3,
                ] {
                    ix.remove_owner(OwnerId(gone));
                    model.retain(|(o, _)| *o != gone);
                }
                let o = (round - 1) * 3 + (round + 2) % 3;
                let name = format!("song {} of round {} abc", (round + 2) % 3, round - 1);
                assert!(ix.unregister(OwnerId(o), &name));
                model.retain(|(mo, n)| !(*mo == o && *n == name));
            }
            if ix.sweep.is_some() {
                steps += 1;
            }
            ix.check_invariants();
            for pattern in ["", "abc", "round 1", "song 4", "7 abc", "s"] {
                let want: Vec<String> = model
                    .iter()
                    .filter(|(_, n)| n.contains(pattern))
                    .map(|(_, n)| n.clone())
                    .collect();
                assert_eq!(plain(&ix, pattern), want, "pattern {pattern:?}");
            }
        }
        let sweeps = ix.sweeps;
        assert!(
            sweeps > 1 && steps > sweeps,
            "{sweeps} sweeps, {steps} rounds mid-sweep"
        );
        assert!(ix.stale <= 2 * ix.len() + 4);
        ix.compact();
        ix.check_invariants();
        assert_eq!(ix.stale, 0);
    }

    #[test]
    fn running_out_of_ids_renumbers() {
        let mut ix = Index::for_tests(2, 2, 3, 50);
        let mut model: Vec<(u64, String, u64)> = Vec::new();
        for i in 0..400u64 {
            let owner = i % 5;
            let name = format!("file {}", i % 8);
            ix.register(OwnerId(owner), peer(1000 + owner as u16), &name, i, None);
            match model.iter_mut().find(|(o, n, _)| *o == owner && *n == name) {
                Some(m) => m.2 = i,
                None => model.push((owner, name, i)),
            }
            if i % 7 == 0 {
                let gone = format!("file {}", (i * 3) % 8);
                let had = model.iter().any(|(o, n, _)| *o == owner && *n == gone);
                assert_eq!(ix.unregister(OwnerId(owner), &gone), had);
                model.retain(|(o, n, _)| !(*o == owner && *n == gone));
            }
            assert!(ix.entries.next_id() <= 50);
            ix.check_invariants();
            let mut seen = Vec::new();
            ix.search("file", usize::MAX, |h| {
                seen.push((h.name.to_owned(), h.size));
                true
            });
            let want: Vec<(String, u64)> = model.iter().map(|(_, n, s)| (n.clone(), *s)).collect();
            assert_eq!(seen, want);
        }
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
