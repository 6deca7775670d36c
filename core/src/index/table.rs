//! Two small open-addressing tables, written out because `HashMap` is banned in the core
//! (its iteration order could decide output). Neither table's order ever reaches output:
//! they are only probed by key, and their hashes are fixed functions, so the index stays
//! deterministic.

/// The slot value of an empty slot.
const EMPTY: u32 = u32::MAX;

/// A multiplicative mixer: spreads `h` over the high bits, which pick the slot.
#[inline]
fn mix(h: u64) -> u64 {
    (h ^ (h >> 29)).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// Hashes a name for [`IdTable`]: a fixed function of its input.
pub(super) fn name_hash(name: &[u8]) -> u64 {
    const K: u64 = 0x51_7C_C1_B7_27_22_0A_95;
    let mut h = (name.len() as u64).wrapping_mul(K);
    let mut chunks = name.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes(c.try_into().expect("chunks of 8"));
        h = (h.rotate_left(5) ^ w).wrapping_mul(K);
    }
    let mut tail = [0u8; 8];
    tail[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    h = (h.rotate_left(5) ^ u64::from_le_bytes(tail)).wrapping_mul(K);
    mix(h)
}

/// The slot value of a removed id: probes go on past it, inserts may reuse it.
const TOMB: u32 = u32::MAX - 1;

/// A set of entry ids found by a hash of their name (one table per owner): linear probing over a power of
/// two slots holding only the ids (4 bytes a slot). Removal leaves a tombstone, so it costs
/// one probe and never rehashes a neighbour (rehashing means reading that entry's name,
/// likely a cache miss: removing a client's thousands of files would pay that many times);
/// once ids and tombstones fill 3/4 of the slots the table is rebuilt without tombstones.
/// Equality and rehashing are the caller's, who knows the entries.
#[derive(Debug, Default)]
pub(super) struct IdTable {
    slots: Vec<u32>,
    len: usize,
    tombs: usize,
}

impl IdTable {
    fn home(&self, hash: u64) -> usize {
        let bits = self.slots.len().trailing_zeros();
        (hash >> (64 - bits)) as usize
    }

    /// The id with this hash for which `eq` holds.
    pub(super) fn find(&self, hash: u64, mut eq: impl FnMut(u32) -> bool) -> Option<u32> {
        if self.slots.is_empty() {
            return None;
        }
        let mask = self.slots.len() - 1;
        let mut i = self.home(hash);
        loop {
            match self.slots[i] {
                EMPTY => return None,
                TOMB => {}
                id if eq(id) => return Some(id),
                _ => {}
            }
            i = (i + 1) & mask;
        }
    }

    /// Adds `id` (not in the table) under `hash`; `hash_of` gives the hash of any id already
    /// in the table, for rebuilding.
    pub(super) fn insert(&mut self, hash: u64, id: u32, hash_of: impl Fn(u32) -> u64) {
        debug_assert!(id < TOMB);
        if (self.len + self.tombs + 1) * 4 > self.slots.len() * 3 {
            // Double when the ids alone fill half the slots, else just sweep the tombstones.
            let size = if (self.len + 1) * 2 > self.slots.len() {
                (self.slots.len() * 2).max(16)
            } else {
                self.slots.len()
            };
            self.resize(size, &hash_of);
        }
        let mask = self.slots.len() - 1;
        let mut i = self.home(hash);
        while self.slots[i] < TOMB {
            i = (i + 1) & mask;
        }
        if self.slots[i] == TOMB {
            self.tombs -= 1;
        }
        self.slots[i] = id;
        self.len += 1;
    }

    fn resize(&mut self, size: usize, hash_of: &impl Fn(u32) -> u64) {
        let old = std::mem::replace(&mut self.slots, vec![EMPTY; size]);
        self.tombs = 0;
        let mask = size - 1;
        for id in old.into_iter().filter(|&id| id < TOMB) {
            let mut i = self.home(hash_of(id));
            while self.slots[i] != EMPTY {
                i = (i + 1) & mask;
            }
            self.slots[i] = id;
        }
    }

    /// Removes `id`, which is in the table under `hash`.
    pub(super) fn remove(&mut self, hash: u64, id: u32) {
        let mask = self.slots.len() - 1;
        let mut i = self.home(hash);
        while self.slots[i] != id {
            assert_ne!(self.slots[i], EMPTY, "a removed id is in the table");
            i = (i + 1) & mask;
        }
        self.slots[i] = TOMB;
        self.tombs += 1;
        self.len -= 1;
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }

    pub(super) fn ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.slots.iter().copied().filter(|&id| id < TOMB)
    }

    pub(super) fn heap_bytes(&self) -> usize {
        self.slots.capacity() * 4
    }
}

/// From a trigram (24 bits) to the index of its posting list: linear probing over `(key,
/// value)` pairs, at most half full. Keys are never removed except by rebuilding.
#[derive(Debug, Default)]
pub(super) struct GramMap {
    slots: Vec<(u32, u32)>,
    len: usize,
}

impl GramMap {
    fn home(&self, key: u32) -> usize {
        let bits = self.slots.len().trailing_zeros();
        (mix(u64::from(key)) >> (64 - bits)) as usize
    }

    pub(super) fn get(&self, key: u32) -> Option<u32> {
        if self.slots.is_empty() {
            return None;
        }
        let mask = self.slots.len() - 1;
        let mut i = self.home(key);
        loop {
            let (k, v) = self.slots[i];
            if k == key {
                return Some(v);
            }
            if k == EMPTY {
                return None;
            }
            i = (i + 1) & mask;
        }
    }

    /// The value of `key`, inserting `make()` first when it has none.
    pub(super) fn get_or_insert(&mut self, key: u32, make: impl FnOnce() -> u32) -> u32 {
        debug_assert_ne!(key, EMPTY);
        if (self.len + 1) * 2 > self.slots.len() {
            let size = (self.slots.len() * 2).max(16);
            let old = std::mem::replace(&mut self.slots, vec![(EMPTY, 0); size]);
            for (k, v) in old.into_iter().filter(|&(k, _)| k != EMPTY) {
                self.place(k, v);
            }
        }
        let mask = self.slots.len() - 1;
        let mut i = self.home(key);
        loop {
            let (k, v) = self.slots[i];
            if k == key {
                return v;
            }
            if k == EMPTY {
                let v = make();
                self.slots[i] = (key, v);
                self.len += 1;
                return v;
            }
            i = (i + 1) & mask;
        }
    }

    fn place(&mut self, key: u32, value: u32) {
        let mask = self.slots.len() - 1;
        let mut i = self.home(key);
        while self.slots[i].0 != EMPTY {
            i = (i + 1) & mask;
        }
        self.slots[i] = (key, value);
    }

    /// Every `(key, value)`, in slot order.
    pub(super) fn pairs(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        self.slots.iter().copied().filter(|&(k, _)| k != EMPTY)
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }

    pub(super) fn heap_bytes(&self) -> usize {
        self.slots.capacity() * 8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_table_survives_colliding_removals() {
        // Every id hashes to one of two homes, so probe runs wrap and interleave.
        let hash_of = |id: u32| u64::from(id % 2) << 63 | u64::from(id % 2) << 62;
        let mut t = IdTable::default();
        for round in 0..3u32 {
            let ids = round * 100..round * 100 + 40;
            for id in ids.clone() {
                t.insert(hash_of(id), id, hash_of);
            }
            for id in ids.clone().step_by(3) {
                t.remove(hash_of(id), id);
            }
            for id in ids.clone() {
                let found = t.find(hash_of(id), |x| x == id);
                assert_eq!(found.is_some(), id % 3 != round % 3, "id {id}");
            }
            for id in ids.filter(|id| id % 3 != round % 3) {
                t.remove(hash_of(id), id);
            }
            assert_eq!((t.len(), t.ids().count()), (0, 0));
        }
    }

    #[test]
    fn gram_map_grows() {
        let mut m = GramMap::default();
        for k in 0..1000u32 {
            assert_eq!(m.get_or_insert(k * 977, || k), k);
        }
        for k in 0..1000u32 {
            assert_eq!(m.get(k * 977), Some(k));
            assert_eq!(m.get_or_insert(k * 977, || unreachable!()), k);
        }
        assert_eq!(m.get(5), None);
        assert_eq!(m.len(), 1000);
    }
}
