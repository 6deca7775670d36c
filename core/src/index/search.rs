//! The search path: the rarest trigrams' lists give candidates in id order, the next rarest
//! narrow them a block at a time, and a substring test confirms each; short patterns walk
//! a union of lists or scan (see the module docs).

use memchr::memmem;

use super::entries::Entry;
use super::postings::{Cursor, Postings, BLOCK};
use super::{gram, Hit, Index, SHORT};
use crate::hash::ContentHash;

/// How many of the next rarest lists narrow the rarest one.
const FILTERS: usize = 2;
/// A filter that removes less than one candidate in `USEFUL_SHARE` from a chunk of at
/// least `USEFUL_FROM` is dropped.
const USEFUL_SHARE: usize = 16;
const USEFUL_FROM: usize = 32;

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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::testing::{peer, plain};
    use crate::index::OwnerId;

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
