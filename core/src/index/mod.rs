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
//! patterns O(trigrams in the table) plus the entries scanned or merged before the cap.
//! Nothing iterates a hash table to produce output: results come from id order alone, so
//! they are deterministic.
//!
//! The id space is `u32`: when more than `u32::MAX - 1` files have been registered over the
//! index's life, the next registration renumbers the live ones densely, rebuilding the index
//! (a pause proportional to it, once per four billion registrations).

mod checks;
mod entries;
mod owners;
mod postings;
mod search;
mod sweep;
mod table;

use std::fmt;

use self::entries::Entries;
use self::owners::{Owner, Owners, Peer, Peers};
use self::postings::Postings;
use self::sweep::Sweep;
use self::table::GramMap;
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

/// A `usize` known to fit a `u32` id.
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
}

/// Helpers for the unit tests of the index's modules.
#[cfg(test)]
mod testing {
    use super::Index;
    use crate::wire::PeerAddr;

    /// A loopback peer on `port`.
    pub(super) fn peer(port: u16) -> PeerAddr {
        PeerAddr(([127, 0, 0, 1], port).into())
    }

    /// Every match of `pattern` as `name@peer`, in order.
    pub(super) fn names(ix: &Index, pattern: &str) -> Vec<String> {
        let mut out = Vec::new();
        ix.search(pattern, usize::MAX, |h| {
            out.push(format!("{}@{}", h.name, h.peer));
            true
        });
        out
    }

    /// Every match of `pattern` by name, in order.
    pub(super) fn plain(ix: &Index, pattern: &str) -> Vec<String> {
        let mut out = Vec::new();
        ix.search(pattern, usize::MAX, |h| {
            out.push(h.name.to_owned());
            true
        });
        out
    }
}
