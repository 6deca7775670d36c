//! Posting lists: the ids of the entries whose names hold one trigram, ascending.
//!
//! Ids are handed out in registration order, so a list only ever grows at its end. It is
//! stored as gaps between successive ids (minus one, so that consecutive ids cost nothing),
//! in blocks of [`BLOCK`] gaps, each bit-packed at the width of its largest gap: one byte of
//! width, then the gaps (`16 * width` bytes in a full block). Dense lists take a few bits an
//! id, and a gap is read in place with one unaligned load, a shift and a mask.
//!
//! The last block (the "tail") fills up in place: a gap wider than the tail's width
//! re-packs the tail (at most `BLOCK - 1` gaps, and only as often as the width grows). So
//! every id, tail or not, decodes the same branch-free way; the tail was LEB128 varints
//! once, and decoding them byte by byte was a third of the search time on a small index.
//!
//! The bytes end in [`PAD`] zero bytes, so that every 8-byte load of a gap stays inside the
//! list without a bounds check, and the tail's next gap is written by OR-ing into zeros.
//!
//! For each full block a skip entry records its last id and where the next block starts, so
//! a cursor can jump to the block holding a target without decoding the blocks in between.

/// Gaps in a packed block.
pub(super) const BLOCK: usize = 128;

/// Zero bytes after the last block: an unaligned 8-byte load of any gap stays in the list.
const PAD: usize = 8;

/// Zero bytes a resize adds beyond what a push needs, for the pushes after it.
const ZEROS_AHEAD: usize = 64;

/// The end of full block `j`: its last id and the byte offset just past it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Skip {
    id: u32,
    at: u32,
}

/// One trigram's ascending entry ids, tombstones included (see the index's docs).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Postings {
    /// Full blocks, the tail (a width byte and its gaps), then [`PAD`] zeros; empty while
    /// the list is. The first gap is taken from `u32::MAX` (wrapping), so it is `id + 1`
    /// and every gap is at least 1.
    bytes: Vec<u8>,
    skips: Vec<Skip>,
    /// The last id pushed (meaningless while `count` is 0).
    last: u32,
    count: u32,
}

/// Bits needed to write `gap`.
fn bits(gap: u32) -> usize {
    (32 - gap.leading_zeros()) as usize
}

/// The lowest `w` bits set (`w` up to 32).
fn mask(w: usize) -> u64 {
    (1u64 << w) - 1
}

/// The little-endian `u64` at `at`; the list's padding guarantees 8 bytes there.
#[inline(always)]
fn load(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

/// Gap `i` of the block whose gaps start at `data`, packed `w` bits each.
#[inline(always)]
fn gap_at(bytes: &[u8], data: usize, i: usize, w: usize) -> u32 {
    let bit = i * w;
    ((load(bytes, data + bit / 8) >> (bit % 8)) & mask(w)) as u32
}

impl Postings {
    /// Appends `id`, which must be larger than every id already in the list.
    pub(super) fn push(&mut self, id: u32) {
        let prev = if self.count == 0 { u32::MAX } else { self.last };
        debug_assert!(self.count == 0 || id > self.last, "ids only grow");
        let gap = id.wrapping_sub(prev) - 1;
        if self.bytes.is_empty() {
            self.grow_to(1 + PAD);
        }
        let start = self.tail_start();
        let n = self.tail_len();
        let mut w = usize::from(self.bytes[start]);
        if bits(gap) > w {
            w = bits(gap);
            self.repack_tail(w);
        }
        self.grow_to(start + 1 + ((n + 1) * w).div_ceil(8) + PAD);
        self.put(start + 1, n * w, gap);
        self.last = id;
        self.count += 1;
        if n + 1 == BLOCK {
            self.close_block(start, w);
        }
    }

    /// The tail, full now, becomes a block: its skip entry, and the next tail's width
    /// byte (already zero) and padding.
    fn close_block(&mut self, start: usize, w: usize) {
        let at = start + 1 + 16 * w;
        self.grow_to(at + 1 + PAD);
        let at = u32::try_from(at).expect("a posting list under 4 GiB");
        self.skips.push(Skip { id: self.last, at });
    }

    /// Makes the bytes at least `len` long (zeros). The allocation grows by an eighth
    /// rather than doubling (most of the index's memory is here, and a factor of 1.125
    /// still costs O(1) copies per byte on average). The bytes run up to [`ZEROS_AHEAD`]
    /// past `len`, so the next pushes need no resize; not to the whole allocation, which
    /// would touch every new page of a big list's growth in one call.
    #[inline]
    fn grow_to(&mut self, len: usize) {
        let have = self.bytes.len();
        if len <= have {
            return;
        }
        if self.bytes.capacity() < len {
            self.bytes.reserve_exact((len - have).max(have / 8).max(16));
        }
        let ahead = (len + ZEROS_AHEAD).min(self.bytes.capacity());
        self.bytes.resize(ahead, 0);
    }

    /// The bytes in use: up to the end of the tail's padding.
    fn used(&self) -> usize {
        if self.bytes.is_empty() {
            return 0;
        }
        let start = self.tail_start();
        let w = usize::from(self.bytes[start]);
        start + 1 + (self.tail_len() * w).div_ceil(8) + PAD
    }

    /// Drops the zeros past the padding and the spare capacity.
    fn shrink(&mut self) {
        self.bytes.truncate(self.used());
        self.bytes.shrink_to_fit();
        self.skips.shrink_to_fit();
    }

    /// ORs `gap` into the zero bits at bit `bit` of the gaps starting at `data`.
    fn put(&mut self, data: usize, bit: usize, gap: u32) {
        let at = data + bit / 8;
        let word = load(&self.bytes, at) | u64::from(gap) << (bit % 8);
        self.bytes[at..at + 8].copy_from_slice(&word.to_le_bytes());
    }

    /// Re-writes the tail's gaps at width `w`, wider than its current one.
    fn repack_tail(&mut self, w: usize) {
        let start = self.tail_start();
        let n = self.tail_len();
        let old = usize::from(self.bytes[start]);
        let mut gaps = [0u32; BLOCK];
        for (i, g) in gaps[..n].iter_mut().enumerate() {
            *g = gap_at(&self.bytes, start + 1, i, old);
        }
        self.bytes[start + 1..].fill(0);
        self.bytes[start] = w as u8;
        self.grow_to(start + 1 + (n * w).div_ceil(8) + PAD);
        for (i, &g) in gaps[..n].iter().enumerate() {
            self.put(start + 1, i * w, g);
        }
    }

    /// Where the tail's width byte is.
    fn tail_start(&self) -> usize {
        self.skips.last().map_or(0, |s| s.at as usize)
    }

    /// Ids in the tail.
    fn tail_len(&self) -> usize {
        self.count as usize % BLOCK
    }

    /// Ids held, tombstones included.
    pub(super) fn count(&self) -> u32 {
        self.count
    }

    pub(super) fn cursor(&self) -> Cursor<'_> {
        Cursor::new(self)
    }

    /// Carries `rw` on over up to about `budget` ids of this list (whole blocks), keeping
    /// those `keep` accepts. On reaching the tail (at most `BLOCK - 1` ids, read whatever the
    /// budget) it finishes: the list becomes the rewritten one. Returns the ids read and
    /// whether it finished.
    ///
    /// Between calls the list may grow (ids are only appended, and full blocks never
    /// change), so a rewrite spread over many calls still sees every id.
    pub(super) fn rewrite(
        &mut self,
        rw: &mut Rewrite,
        keep: impl Fn(u32) -> bool,
        budget: usize,
    ) -> (usize, bool) {
        let mut read = 0;
        let mut ids = [0u32; BLOCK];
        while rw.block < self.skips.len() {
            if read >= budget {
                return (read, false);
            }
            self.decode_block(rw.block, &mut ids);
            for &id in &ids {
                if keep(id) {
                    rw.kept.push(id);
                }
            }
            if rw.kept.len() >= BLOCK {
                rw.flush();
            }
            read += BLOCK;
            rw.block += 1;
        }
        let n = self.chunk(self.skips.len(), &mut ids);
        read += n;
        for &id in &ids[..n] {
            if keep(id) {
                rw.kept.push(id);
            }
        }
        rw.flush();
        let mut fresh = std::mem::take(&mut rw.fresh);
        for &id in &rw.kept {
            fresh.push(id);
        }
        rw.kept.clear();
        rw.block = 0;
        fresh.shrink();
        *self = fresh;
        (read, true)
    }

    /// The ids of block `j` (the tail when `j` is the number of full blocks) into `out`;
    /// returns how many. A whole block decodes in one tight loop, faster than a cursor's
    /// id-at-a-time steps.
    pub(super) fn chunk(&self, j: usize, out: &mut [u32; BLOCK]) -> usize {
        match j.cmp(&self.skips.len()) {
            std::cmp::Ordering::Less => {
                self.decode_block(j, out);
                BLOCK
            }
            std::cmp::Ordering::Equal => {
                let n = self.tail_len();
                if n > 0 {
                    let start = self.tail_start();
                    let w = usize::from(self.bytes[start]);
                    let mut cur = self.skips.last().map_or(u32::MAX, |s| s.id);
                    for (i, id) in out[..n].iter_mut().enumerate() {
                        cur = cur
                            .wrapping_add(gap_at(&self.bytes, start + 1, i, w))
                            .wrapping_add(1);
                        *id = cur;
                    }
                }
                n
            }
            std::cmp::Ordering::Greater => 0,
        }
    }

    /// The ids of full block `j`.
    fn decode_block(&self, j: usize, out: &mut [u32; BLOCK]) {
        let (start, base) = match j.checked_sub(1) {
            Some(p) => (self.skips[p].at as usize, self.skips[p].id),
            None => (0, u32::MAX),
        };
        let width = usize::from(self.bytes[start]);
        let data = &self.bytes[start + 1..];
        macro_rules! by_width {
            ($($w:literal)*) => {
                match width {
                    $($w => unpack::<$w>(data, base, out),)*
                    _ => unreachable!("a gap fits 32 bits"),
                }
            };
        }
        by_width!(0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30
            31 32);
    }

    /// Appends a full block of `ids` (ascending, above every id held) to a list whose ids
    /// fill whole blocks.
    fn push_block(&mut self, ids: &[u32]) {
        debug_assert!(self.tail_len() == 0 && ids.len() == BLOCK);
        let mut prev = if self.count == 0 { u32::MAX } else { self.last };
        let mut gaps = [0u32; BLOCK];
        for (g, &id) in gaps.iter_mut().zip(ids) {
            *g = id.wrapping_sub(prev) - 1;
            prev = id;
        }
        let w = bits(gaps.iter().fold(0, |a, &g| a | g));
        let start = self.tail_start();
        self.grow_to(start + 1 + 16 * w + PAD);
        self.bytes[start] = w as u8;
        for (i, &g) in gaps.iter().enumerate() {
            self.put(start + 1, i * w, g);
        }
        self.last = prev;
        self.count += BLOCK as u32;
        self.close_block(start, w);
    }

    /// Heap bytes held.
    pub(super) fn heap_bytes(&self) -> usize {
        self.bytes.capacity() + self.skips.capacity() * std::mem::size_of::<Skip>()
    }

    /// Panics unless the list is strictly ascending and stored exactly as pushing its ids
    /// one by one stores them; returns the ids.
    pub(super) fn check(&self) -> Vec<u32> {
        let mut ids = Vec::with_capacity(self.count as usize);
        let mut c = self.cursor();
        while let Some(id) = c.next() {
            if let Some(&prev) = ids.last() {
                assert!(id > prev, "posting ids ascend");
            }
            ids.push(id);
        }
        let mut again = Self::default();
        for &id in &ids {
            again.push(id);
        }
        let used = self.used();
        assert_eq!(
            (&again.bytes[..again.used()], &again.skips, again.count),
            (&self.bytes[..used], &self.skips, self.count)
        );
        assert!(
            self.bytes[used..].iter().all(|&b| b == 0),
            "zeros after the padding"
        );
        if let Some(&last) = ids.last() {
            assert_eq!(last, self.last);
        }
        ids
    }
}

/// A posting list being rewritten without its dead ids, a few blocks at a time (see
/// [`Postings::rewrite`]).
#[derive(Debug, Default)]
pub(super) struct Rewrite {
    /// The next full block of the old list to read.
    block: usize,
    /// The ids kept so far: whole blocks in `fresh`, the rest in `kept`.
    fresh: Postings,
    kept: Vec<u32>,
}

impl Rewrite {
    /// Moves the whole blocks of `kept` into `fresh`.
    fn flush(&mut self) {
        let mut blocks = self.kept.chunks_exact(BLOCK);
        for block in &mut blocks {
            self.fresh.push_block(block);
        }
        let rest = blocks.remainder().len();
        let done = self.kept.len() - rest;
        self.kept.drain(..done);
    }

    pub(super) fn heap_bytes(&self) -> usize {
        self.fresh.heap_bytes() + self.kept.capacity() * 4
    }
}

/// Decodes the full packed block of width `W` at the start of `data` (which holds at least
/// 8 bytes more: the list's padding), adding its gaps to `base`. A constant width lets the
/// compiler unroll the loop with constant shifts and masks.
#[inline(never)]
fn unpack<const W: usize>(data: &[u8], base: u32, out: &mut [u32; BLOCK]) {
    let data = &data[..16 * W + 8];
    let mut cur = base;
    for (i, id) in out.iter_mut().enumerate() {
        let bit = i * W;
        let at = bit / 8;
        let word = u64::from_le_bytes(data[at..at + 8].try_into().expect("8 bytes")) >> (bit % 8);
        cur = cur.wrapping_add((word & mask(W)) as u32).wrapping_add(1);
        *id = cur;
    }
}

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
fn intersect(ids: &mut [u32], with: &[u32]) -> usize {
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
pub(super) struct Cursor<'a> {
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
    fn new(list: &'a Postings) -> Self {
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
    pub(super) fn next(&mut self) -> Option<u32> {
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
    pub(super) fn seek(&mut self, target: u32) -> Option<u32> {
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
    pub(super) fn retain(&mut self, ids: &mut [u32]) -> (usize, bool) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn list(ids: &[u32]) -> Postings {
        let mut p = Postings::default();
        for &id in ids {
            p.push(id);
        }
        p
    }

    #[test]
    fn round_trips_and_seeks_across_blocks() {
        let ids: Vec<u32> = (0..1000u32)
            .map(|i| i * 7 + (i % 3) * 1000 * u32::from(i > 500))
            .collect();
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        sorted.dedup();
        let p = list(&sorted);
        assert_eq!(p.check(), sorted);
        for target in [0, 1, 6, 7, 700, 896, 897, 3000, 7000, 100_000] {
            let want = sorted.iter().copied().find(|&i| i >= target);
            assert_eq!(p.cursor().seek(target), want, "seek {target}");
        }
        // Seeks from a position already taken only move forward.
        let mut c = p.cursor();
        assert_eq!(c.seek(900), Some(903));
        assert_eq!(c.seek(10), Some(903));
        assert_eq!(c.next(), Some(910));
        // Every seek and next agrees with a plain search, from any position.
        let mut c = p.cursor();
        let mut at = 0;
        for step in (0..4000u32).map(|s| (s * 37) % 11) {
            let target = sorted
                .get(at)
                .copied()
                .unwrap_or(u32::MAX)
                .saturating_add(step);
            let want = sorted[at..].iter().position(|&i| i >= target);
            assert_eq!(c.seek(target), want.map(|k| sorted[at + k]));
            match want {
                Some(k) => at += k + 1,
                None => break,
            }
            if step % 2 == 0 {
                assert_eq!(c.next(), sorted.get(at).copied());
                at += 1;
            }
        }
    }

    #[test]
    fn seeks_to_every_id_and_past_it() {
        let ids: Vec<u32> = (0..5000u32).map(|i| i * 3 + i % 7 * (i / 1000)).collect();
        let mut sorted = ids;
        sorted.sort_unstable();
        sorted.dedup();
        let p = list(&sorted);
        for from in [0, 1, 127, 128, 129, 1000, 2560] {
            for (k, &id) in sorted.iter().enumerate().skip(from) {
                for (target, want) in [(id, Some(id)), (id + 1, sorted.get(k + 1).copied())] {
                    let mut c = p.cursor();
                    if from > 0 {
                        assert_eq!(c.seek(sorted[from - 1]), Some(sorted[from - 1]));
                    }
                    assert_eq!(c.seek(target), want, "from {from} to {target}");
                }
            }
        }
    }

    #[test]
    fn all_widths_and_extreme_ids() {
        // Gaps of every width from 0 to 32 bits, one width a block.
        let mut ids = Vec::new();
        let mut id = 0u32;
        for w in 0..=31u32 {
            for k in 0..BLOCK as u32 {
                let gap = if w == 0 { 1 } else { (1u32 << (w - 1)) + k % 2 };
                match id.checked_add(gap) {
                    Some(next) if next < u32::MAX => {
                        id = next;
                        ids.push(id);
                    }
                    _ => break,
                }
            }
        }
        ids.push(u32::MAX - 1);
        let p = list(&ids);
        assert_eq!(p.check(), ids);
        let p = list(&[0, 1, u32::MAX - 1]);
        assert_eq!(p.check(), [0, 1, u32::MAX - 1]);
        // A first gap of 2^32 - 1 (id u32::MAX - 1 alone) fills 32 bits.
        let p = list(&[u32::MAX - 1; 1]);
        assert_eq!(p.check(), [u32::MAX - 1]);
        let mut big = vec![u32::MAX - 1 - BLOCK as u32];
        big.extend((1..BLOCK as u32).map(|k| u32::MAX - 1 - BLOCK as u32 + k));
        big[0] = 0;
        let p = list(&big);
        assert_eq!(p.check(), big);
    }

    /// Seeks that land on block boundaries (a block's first and last id, the id just past
    /// a block), past the end, in a last block with no tail after it (the padded read), in
    /// blocks of width 0 (consecutive ids), and backwards (never moving back).
    #[test]
    fn seeks_at_block_boundaries_past_the_end_and_never_back() {
        let b = BLOCK as u32;
        // Block 0: consecutive ids (width 0); block 1: gaps of 2; block 2: mixed gaps;
        // then, with and without a tail, so that the last block ends the bytes.
        let mut ids: Vec<u32> = (0..b).collect();
        ids.extend((0..b).map(|k| 2 * b + 2 * k));
        ids.extend((0..b).map(|k| 5 * b + k * k + k));
        for tail in [0, 5] {
            let mut ids = ids.clone();
            let last = *ids.last().unwrap();
            ids.extend((1..=tail).map(|k| last + 3 * k));
            let p = list(&ids);
            assert_eq!(p.check(), ids);
            let find =
                |from: usize, target: u32| ids[from..].iter().copied().find(|&i| i >= target);
            for k in (0..ids.len()).filter(|k| k % BLOCK < 2 || k % BLOCK > BLOCK - 3) {
                for target in [ids[k].saturating_sub(1), ids[k], ids[k] + 1] {
                    assert_eq!(
                        p.cursor().seek(target),
                        find(0, target),
                        "tail {tail}, {target}"
                    );
                }
            }
            let end = *ids.last().unwrap();
            for target in [end + 1, end + 1000, u32::MAX] {
                let mut c = p.cursor();
                assert_eq!(c.seek(target), None);
                assert_eq!(c.seek(target), None);
                assert_eq!(c.next(), None);
            }
            // Every id of a block in turn, then a jump to the next block's first id, then
            // back: the cursor stays where it is.
            let mut c = p.cursor();
            for (k, &id) in ids.iter().enumerate() {
                assert_eq!(c.seek(id), Some(id));
                assert_eq!(c.seek(id.saturating_sub(7)), Some(id), "backwards at {k}");
                if k % 3 == 0 {
                    assert_eq!(c.next(), ids.get(k + 1).copied());
                    assert_eq!(c.seek(0), ids.get(k + 1).copied().or(Some(id)));
                    c = p.cursor();
                    assert_eq!(c.seek(id), Some(id));
                }
            }
            // Strides that skip whole blocks and land exactly on block ends and starts.
            for stride in [1, 2, 3, BLOCK - 1, BLOCK, BLOCK + 1, 2 * BLOCK] {
                let mut c = p.cursor();
                for k in (stride - 1..ids.len()).step_by(stride) {
                    assert_eq!(c.seek(ids[k]), Some(ids[k]), "stride {stride} at {k}");
                    assert_eq!(c.seek(ids[k] + 1), find(k + 1, ids[k] + 1));
                }
            }
        }
    }

    /// Seeks in a list that is all tail, from every position, and past its end.
    #[test]
    fn seeks_in_the_tail() {
        for ids in [
            vec![0],
            vec![u32::MAX - 1],
            (0..100).map(|i| i * i + 2).collect(),
        ] {
            let p = list(&ids);
            let end = *ids.last().unwrap();
            for (from, &at) in ids.iter().enumerate() {
                for target in [0, at.saturating_sub(1), at, at + 1, end, end + 1, u32::MAX] {
                    let mut c = p.cursor();
                    assert_eq!(c.seek(at), Some(at));
                    let want = ids[from..].iter().copied().find(|&i| i >= target);
                    assert_eq!(c.seek(target), want, "from {at} to {target}");
                    assert_eq!(c.seek(0), Some(want.unwrap_or(end)));
                }
            }
            assert_eq!(p.cursor().seek(end + 1), None);
        }
        assert_eq!(Postings::default().cursor().seek(0), None);
    }

    #[test]
    fn chunks_decode_every_width() {
        for w in 0..=32u32 {
            // One gap of `w` bits, the others of at most one: the first block has width `w`.
            let gap = |k: u32| match w {
                0 => 0,
                _ if k == 5 => 1u32 << (w - 1),
                _ => k % 2,
            };
            let mut ids = Vec::new();
            let mut id = 0u32;
            for k in 0..BLOCK as u32 + 3 {
                ids.push(id);
                let Some(next) = id.checked_add(gap(k)).and_then(|n| n.checked_add(1)) else {
                    break;
                };
                if next == u32::MAX {
                    break;
                }
                id = next;
            }
            let p = list(&ids);
            assert_eq!(p.check(), ids, "width {w}");
            let mut out = [0u32; BLOCK];
            let mut got = Vec::new();
            for j in 0.. {
                let n = p.chunk(j, &mut out);
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&out[..n]);
            }
            assert_eq!(got, ids, "width {w}");
            assert_eq!(usize::from(p.bytes[0]), w as usize);
            for &id in &ids {
                assert_eq!(p.cursor().seek(id), Some(id), "width {w}");
            }
            let mut c = p.cursor();
            for &id in &ids {
                assert_eq!(c.seek(id), Some(id), "width {w}");
            }
        }
    }

    /// A small seeded generator (xorshift), for the randomized tests below.
    struct Xs(u64);

    impl Xs {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }

        /// Ascending ids from `from` with gaps of 1 up to `spread`, `count` of them.
        fn ids(&mut self, from: u32, spread: u64, count: usize) -> Vec<u32> {
            let mut id = u64::from(from);
            (0..count)
                .map(|_| {
                    id += 1 + self.below(spread);
                    id as u32
                })
                .collect()
        }
    }

    /// `retain` keeps exactly the candidates the list holds, chunk after chunk, whichever
    /// way it takes (merging decoded blocks where the list is dense around the candidates,
    /// seeking where it is sparse), mixed with plain seeks, and says the list ended only
    /// when it holds nothing past the chunk.
    #[test]
    fn retain_keeps_exactly_the_candidates_the_list_holds() {
        let mut rng = Xs(0x9E37_79B9_7F4A_7C15);
        for round in 0..400 {
            let spread = [1, 2, 3, 40, 900, 30_000][round % 6];
            let len = [0, 1, 5, 127, 128, 129, 300, 2000][rng.below(8) as usize];
            let from = rng.below(50) as u32;
            let ids = rng.ids(from, spread, len);
            let held: std::collections::BTreeSet<u32> = ids.iter().copied().collect();
            let p = list(&ids);
            let top = ids.last().map_or(1000, |&l| u64::from(l) + 500);
            let cand_spread = [1, 4, 64, 5000][rng.below(4) as usize].min(top);
            let count = (top / cand_spread) as usize;
            let mut candidates = rng.ids(0, cand_spread, count.min(3000));
            // Half the candidates of some rounds are the list's own ids.
            if round % 3 == 0 {
                candidates.extend(ids.iter().step_by(2));
                candidates.sort_unstable();
                candidates.dedup();
            }
            let mut c = p.cursor();
            let mut floor = 0;
            let mut rest = &candidates[..];
            while !rest.is_empty() {
                let n = (1 + rng.below(BLOCK as u64) as usize).min(rest.len());
                let (chunk, after) = rest.split_at(n);
                rest = after;
                if rng.below(4) == 0 {
                    // A plain seek between chunks, to a target at or below the chunk's (and
                    // above the last chunk's: a cursor never goes back).
                    let target = chunk[0].saturating_sub(rng.below(3) as u32).max(floor);
                    let want = held.range(target..).next().copied();
                    assert_eq!(c.seek(target), want, "round {round}");
                }
                floor = chunk[n - 1] + 1;
                let mut got = chunk.to_vec();
                let (kept, more) = c.retain(&mut got);
                let want: Vec<u32> = chunk.iter().copied().filter(|i| held.contains(i)).collect();
                assert_eq!(&got[..kept], &want[..], "round {round}");
                if !more {
                    let last = *chunk.last().expect("a chunk");
                    assert!(held.range(last + 1..).next().is_none(), "round {round}");
                    break;
                }
            }
        }
    }

    /// The two-ended merge keeps exactly the common ids, in order, whatever the lengths
    /// and wherever the ends meet.
    #[test]
    fn intersect_keeps_the_common_ids_in_order() {
        let mut rng = Xs(77);
        for round in 0..3000 {
            let (na, nb) = (rng.below(40) as usize, rng.below(60) as usize);
            let (sa, sb) = (1 + rng.below(4), 1 + rng.below(4));
            let a = rng.ids(0, sa, na);
            let from = rng.below(3) as u32;
            let b = rng.ids(from, sb, nb);
            let want: Vec<u32> = a.iter().copied().filter(|x| b.contains(x)).collect();
            let mut got = a.clone();
            let kept = intersect(&mut got, &b);
            assert_eq!(&got[..kept], &want[..], "round {round}: {a:?} and {b:?}");
        }
    }

    /// A tail re-packed wider as its gaps grow (and a full block after it) stores and reads
    /// the same ids as a list built in one go.
    #[test]
    fn the_tail_repacks_as_its_gaps_widen() {
        let mut ids = Vec::new();
        let mut id = 0u32;
        for k in 0..(3 * BLOCK as u32 + 17) {
            id += 1 + (1 << (k % 29)) / 3;
            ids.push(id);
            let p = list(&ids);
            assert_eq!(p.check(), ids);
            assert_eq!(p.cursor().seek(id), Some(id));
            assert_eq!(p.cursor().seek(id + 1), None);
        }
    }

    #[test]
    fn rewrites_in_steps_while_the_list_grows() {
        let ids: Vec<u32> = (0..1000).map(|i| i * 2).collect();
        let mut p = list(&ids);
        let keep = |id: u32| id.is_multiple_of(6) || id >= 2000;
        let mut rw = Rewrite::default();
        let mut want: Vec<u32> = ids.iter().copied().filter(|&id| keep(id)).collect();
        let mut next = 2000;
        let mut steps = 0;
        loop {
            let (read, done) = p.rewrite(&mut rw, keep, 200);
            assert!(read > 0);
            steps += 1;
            if done {
                break;
            }
            // Appends between steps, some packing the tail into a block.
            for _ in 0..90 {
                p.push(next);
                want.push(next);
                next += 3;
            }
        }
        assert!(steps > 3);
        assert_eq!(p.check(), want);
        assert_eq!(p.count() as usize, want.len());
    }
}
