//! The index's consistency check, for tests: every structure agrees with the entries.

use super::table::name_hash;
use super::{grams_of, id32, Index, SHORT};

impl Index {
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
