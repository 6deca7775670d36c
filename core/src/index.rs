//! The index of shared files: who shares what, searchable by substring.
//!
//! A narrow interface (register, unregister, remove an owner, search with a cap) that knows
//! owners by an opaque id, not a socket or an IP, so it can later be partitioned.
//!
//! Search results come in registration order: the order in which each (owner, name) pair
//! was first registered. Re-registering a name with a new size keeps its place.

use std::collections::BTreeMap;

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

#[derive(Debug)]
struct Entry {
    owner: OwnerId,
    peer: PeerAddr,
    name: Box<str>,
    size: u64,
    hash: Option<ContentHash>,
}

/// The in-memory index.
#[derive(Debug, Default)]
pub struct Index {
    /// Every shared file, keyed by registration sequence number (the result order).
    entries: BTreeMap<u64, Entry>,
    /// For each owner, its names and their sequence numbers.
    owners: BTreeMap<OwnerId, BTreeMap<Box<str>, u64>>,
    next_seq: u64,
}

impl Index {
    pub fn new() -> Self {
        Self::default()
    }

    /// Shares `name` from `owner`, reachable at `peer`. Registering a name the owner already
    /// shares updates its size, hash and address.
    pub fn register(
        &mut self,
        owner: OwnerId,
        peer: PeerAddr,
        name: &str,
        size: u64,
        hash: Option<ContentHash>,
    ) {
        let files = self.owners.entry(owner).or_default();
        if let Some(seq) = files.get(name) {
            let entry = self
                .entries
                .get_mut(seq)
                .expect("every owner's name has an entry");
            entry.size = size;
            entry.peer = peer;
            entry.hash = hash;
            return;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        files.insert(name.into(), seq);
        self.entries.insert(
            seq,
            Entry {
                owner,
                peer,
                name: name.into(),
                size,
                hash,
            },
        );
    }

    /// Moves every file of `owner` to `peer` (its file server moved).
    pub fn set_peer(&mut self, owner: OwnerId, peer: PeerAddr) {
        for seq in self
            .owners
            .get(&owner)
            .into_iter()
            .flat_map(BTreeMap::values)
        {
            if let Some(e) = self.entries.get_mut(seq) {
                e.peer = peer;
            }
        }
    }

    /// Stops sharing `name` from `owner`; returns whether it was shared.
    pub fn unregister(&mut self, owner: OwnerId, name: &str) -> bool {
        let Some(files) = self.owners.get_mut(&owner) else {
            return false;
        };
        let Some(seq) = files.remove(name) else {
            return false;
        };
        self.entries.remove(&seq);
        true
    }

    /// Removes every file of `owner`; returns how many there were.
    pub fn remove_owner(&mut self, owner: OwnerId) -> usize {
        let files = self.owners.remove(&owner).unwrap_or_default();
        for seq in files.values() {
            self.entries.remove(seq);
        }
        files.len()
    }

    /// Calls `each` for every file whose name contains `pattern` (case-sensitive), in
    /// registration order, until `cap` calls have returned `true` (`each` returns `false`
    /// for a match it leaves out); returns the number of matches reported.
    pub fn search(
        &self,
        pattern: &str,
        cap: usize,
        mut each: impl FnMut(Hit<'_>) -> bool,
    ) -> usize {
        let mut found = 0;
        for e in self.entries.values() {
            if found == cap {
                break;
            }
            if e.name.contains(pattern)
                && each(Hit {
                    name: &e.name,
                    peer: e.peer,
                    size: e.size,
                    hash: e.hash,
                })
            {
                found += 1;
            }
        }
        found
    }

    /// The number of files shared by everyone.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The number of files `owner` shares.
    pub fn owner_len(&self, owner: OwnerId) -> usize {
        self.owners.get(&owner).map_or(0, BTreeMap::len)
    }

    /// Checks the index's internal agreement; for tests.
    pub fn check_invariants(&self) {
        let mut total = 0;
        for (owner, files) in &self.owners {
            for (name, seq) in files {
                let e = &self.entries[seq];
                assert_eq!((&e.owner, &*e.name), (owner, &**name));
            }
            total += files.len();
        }
        assert_eq!(total, self.entries.len());
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

    #[test]
    fn owners_on_one_host_are_separate() {
        let mut ix = Index::new();
        ix.register(OwnerId(1), peer(1235), "a.txt", 1, None);
        ix.register(OwnerId(2), peer(4000), "a.txt", 1, None);
        assert_eq!(names(&ix, "a"), ["a.txt@127.0.0.1", "a.txt@127.0.0.1:4000"]);
        assert_eq!(ix.remove_owner(OwnerId(1)), 1);
        assert_eq!(names(&ix, "a"), ["a.txt@127.0.0.1:4000"]);
        ix.check_invariants();
    }

    #[test]
    fn reregistering_keeps_the_place_and_updates_size() {
        let mut ix = Index::new();
        ix.register(OwnerId(1), peer(1235), "b", 1, None);
        ix.register(OwnerId(1), peer(1235), "c", 1, None);
        ix.register(OwnerId(1), peer(1235), "b", 9, None);
        let mut sizes = Vec::new();
        ix.search("", 10, |h| {
            sizes.push((h.name.to_owned(), h.size));
            true
        });
        assert_eq!(sizes, [("b".to_owned(), 9), ("c".to_owned(), 1)]);
        assert!(ix.unregister(OwnerId(1), "b"));
        assert!(!ix.unregister(OwnerId(1), "b"));
        assert_eq!(ix.search("", 1, |_| true), 1);
        ix.check_invariants();
    }
}
