//! Who shares what: owners with their tables of files, the peers those files are reached
//! at (interned), and the calls that register and unregister files.

use std::collections::BTreeMap;

use super::postings::Postings;
use super::table::{name_hash, IdTable};
use super::{grams_of, id32, put_in_slot, Index, OwnerId, NONE};
use crate::hash::ContentHash;
use crate::wire::PeerAddr;

/// Peer addresses, interned: entries hold a `u32`, not a 32-byte `SocketAddr`.
#[derive(Debug, Default)]
pub(super) struct Peers {
    pub(super) by_addr: BTreeMap<PeerAddr, u32>,
    pub(super) slots: Vec<Peer>,
    pub(super) free: Vec<u32>,
}

#[derive(Debug)]
pub(super) struct Peer {
    pub(super) addr: PeerAddr,
    /// `addr` as replies write it.
    pub(super) text: Box<str>,
    /// Entries using it (0: a free slot).
    pub(super) refs: u32,
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

    pub(super) fn get(&self, slot: u32) -> &Peer {
        &self.slots[slot as usize]
    }
}

/// One owner: its id, its files by name, and the peer slot of its last registration.
#[derive(Debug)]
pub(super) struct Owner {
    pub(super) id: OwnerId,
    pub(super) files: IdTable,
    last_peer: u32,
}

/// Owners by slot; a slot is reused once its owner has no files left.
#[derive(Debug, Default)]
pub(super) struct Owners {
    pub(super) by_id: BTreeMap<OwnerId, u32>,
    pub(super) slots: Vec<Owner>,
    pub(super) free: Vec<u32>,
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

impl Index {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::testing::{names, peer};

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
}
