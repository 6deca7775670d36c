//! Reading a posting list: a cursor that seeks forward through the packed gaps, and the
//! filter that keeps the candidates a list holds (merging where the list is dense around
//! them, seeking where it is sparse).

use super::{gap_at, load, mask, Postings, BLOCK};

/// Candidates a block decoded whole may cost each: when the blocks spanning a run of
/// candidates hold at most this many ids per candidate, they are decoded and merged with
/// the candidates (no branch to mispredict); past it, each candidate seeks on its own,
/// skipping whole blocks.
const MERGE_RATIO: usize = 4;

/// Keeps, in order at the front of `ids`, those that `with` holds (both ascending);
/// returns how many.
///
/// A branch-free merge, from both ends at once: each step of one end waits on the load
/// of the step before, so two independent ends go about twice as fast as one. The
/// middle is left when either side's ends meet: what one end passed is below (or above)
/// everything still in the middle, so nothing in the middle can match it.
pub(super) fn intersect(ids: &mut [u32], with: &[u32]) -> usize {
    let n = ids.len();
    let (mut i, mut j) = (0, 0);
    let (mut ie, mut je) = (n, with.len());
    let (mut front, mut back) = (0, 0);
    loop {
        if i >= ie || j >= je {
            break;
        }
        let (a, x) = (ids[i], with[j]);
        ids[front] = a;
        front += usize::from(a == x);
        i += usize::from(a <= x);
        j += usize::from(x <= a);
        if i >= ie || j >= je {
            break;
        }
        let (a, x) = (ids[ie - 1], with[je - 1]);
        ids[n - 1 - back] = a;
        back += usize::from(a == x);
        ie -= usize::from(a >= x);
        je -= usize::from(x >= a);
    }
    ids.copy_within(n - back.., front);
    front + back
}

/// A position in a posting list. It reads packed gaps in place, one at a time, so a seek
/// that lands early in a block decodes only what it passes.
#[derive(Debug, Clone)]
pub(in crate::index) struct Cursor<'a> {
    list: &'a Postings,
    /// The block being read; `skips.len()` for the tail.
    block: usize,
    /// The next gap's index, the width, where the gaps start.
    idx: usize,
    width: usize,
    data: usize,
    /// The id last returned (or the one before the block, when `idx` is 0).
    cur: u32,
    started: bool,
}

impl<'a> Cursor<'a> {
    pub(super) fn new(list: &'a Postings) -> Self {
        let mut c = Self {
            list,
            block: 0,
            idx: 0,
            width: 0,
            data: 0,
            cur: u32::MAX,
            started: false,
        };
        c.enter(0);
        c
    }

    /// Moves to the start of block `j` (or the tail).
    fn enter(&mut self, j: usize) {
        let list = self.list;
        let (start, base) = match j.checked_sub(1) {
            Some(p) => (list.skips[p].at as usize, list.skips[p].id),
            None => (0, u32::MAX),
        };
        self.block = j;
        self.cur = base;
        self.idx = 0;
        self.width = list.bytes.get(start).map_or(0, |&w| usize::from(w));
        self.data = start + 1;
    }

    /// Ids in the current block.
    fn block_len(&self) -> usize {
        if self.block < self.list.skips.len() {
            BLOCK
        } else {
            self.list.tail_len()
        }
    }

    /// The next id, in ascending order.
    #[inline]
    pub(in crate::index) fn next(&mut self) -> Option<u32> {
        loop {
            if self.idx < self.block_len() {
                let gap = gap_at(&self.list.bytes, self.data, self.idx, self.width);
                self.idx += 1;
                self.cur = self.cur.wrapping_add(gap).wrapping_add(1);
                self.started = true;
                return Some(self.cur);
            }
            if self.block >= self.list.skips.len() {
                return None;
            }
            self.enter(self.block + 1);
        }
    }

    /// The first id at least `target`, from the current position on (the id last returned
    /// counts); `None` when there is none.
    #[inline(always)]
    pub(in crate::index) fn seek(&mut self, target: u32) -> Option<u32> {
        if self.started && self.cur >= target {
            return Some(self.cur);
        }
        // A block ends at `skips[j].id`: when the current one ends at or past `target` (and
        // the cursor is before it, since `cur < target`), the answer is in it.
        match self.list.skips.get(self.block) {
            Some(s) if s.id >= target => {
                self.started = true;
                self.cur = self.seek_in_block(target);
                Some(self.cur)
            }
            _ => self.seek_far(target),
        }
    }

    /// The first block from the current one on that ends at or past `target` (the tail,
    /// `skips.len()`, when none does), galloping over the skips: targets are usually near.
    fn block_of(&self, target: u32) -> usize {
        let skips = &self.list.skips;
        let j = self.block;
        if j >= skips.len() || skips[j].id >= target {
            return j;
        }
        let mut lo = j;
        let mut step = 1;
        let hi = loop {
            let probe = lo + step;
            if probe >= skips.len() || skips[probe].id >= target {
                break probe.min(skips.len());
            }
            lo = probe;
            step *= 2;
        };
        lo + 1 + skips[lo + 1..hi].partition_point(|s| s.id < target)
    }

    /// [`Cursor::seek`] to a target past the current block, or in the tail: finds the
    /// block holding it and reads on from that block's start.
    #[inline(never)]
    fn seek_far(&mut self, target: u32) -> Option<u32> {
        let list = self.list;
        if list.count == 0 || target > list.last {
            self.finish();
            return None;
        }
        let j = self.block_of(target);
        if j != self.block {
            self.enter(j);
        }
        // The block ends at or past `target` (the tail ends at `list.last`).
        self.started = true;
        self.cur = self.seek_in_block(target);
        Some(self.cur)
    }

    /// Moves past the end: the cursor ends as having read every id.
    fn finish(&mut self) {
        let list = self.list;
        self.enter(list.skips.len());
        self.idx = list.tail_len();
        self.cur = list.last;
        self.started = list.count > 0;
    }

    /// Reads on in the current block to the first id at least `target`, which the caller
    /// knows is in it.
    #[inline(always)]
    fn seek_in_block(&mut self, target: u32) -> u32 {
        let w = self.width;
        if w == 0 {
            // Consecutive ids.
            self.idx += (target - self.cur.wrapping_add(1)) as usize + 1;
            return target;
        }
        let bytes = &self.list.bytes[self.data..];
        let mask = mask(w);
        let mut idx = self.idx;
        let mut bit = idx * w;
        let mut cur = self.cur;
        loop {
            let word = load(bytes, bit / 8);
            cur = cur
                .wrapping_add(((word >> (bit % 8)) & mask) as u32)
                .wrapping_add(1);
            idx += 1;
            bit += w;
            if cur >= target {
                break;
            }
        }
        self.idx = idx;
        cur
    }

    /// Keeps, in order at the front of `ids`, those of `ids` (ascending, none below an id
    /// this cursor passed) that the list holds; returns how many, and `false` when the
    /// list holds nothing past the last of `ids` (so no later candidate can pass either).
    ///
    /// Where the list is dense around the candidates, the blocks spanning them are decoded
    /// whole and merged with them, branch-free; where it is sparse, each candidate seeks,
    /// jumping over the blocks between.
    pub(in crate::index) fn retain(&mut self, ids: &mut [u32]) -> (usize, bool) {
        let (Some(&first), Some(&last)) = (ids.first(), ids.last()) else {
            return (0, true);
        };
        let list = self.list;
        if list.count == 0 || first > list.last {
            self.finish();
            return (0, false);
        }
        let from = self.block_of(first);
        let to = self.block_of(last);
        // (Past a block of candidates, the merge's buffer would not hold the blocks.)
        if (to - from + 1) * BLOCK > MERGE_RATIO * ids.len().min(BLOCK) {
            let mut kept = 0;
            for i in 0..ids.len() {
                let id = ids[i];
                match self.seek(id) {
                    Some(next) => {
                        ids[kept] = id;
                        kept += usize::from(next == id);
                    }
                    None => return (kept, false),
                }
            }
            return (kept, true);
        }
        // Every id of the blocks spanning the candidates, then one merge.
        let mut buf = [0u32; MERGE_RATIO * BLOCK];
        let mut m = 0;
        for b in from..=to {
            let out: &mut [u32; BLOCK] = (&mut buf[m..m + BLOCK]).try_into().expect("a block");
            m += list.chunk(b, out);
        }
        let kept = intersect(ids, &buf[..m]);
        if last > list.last {
            self.finish();
            return (kept, false);
        }
        // On to the block holding the last candidate, from its start: later targets are
        // above every candidate.
        if to != self.block || self.started {
            self.enter(to);
            self.started = false;
        }
        (kept, true)
    }
}
