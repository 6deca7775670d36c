//! Posting lists: the ids of the entries whose names hold one trigram, ascending.
//!
//! Ids are handed out in registration order, so a list only ever grows at its end. It is
//! stored as gaps between successive ids (minus one, so that consecutive ids cost nothing):
//!
//! - every full block of [`BLOCK`] gaps is bit-packed at the width of its largest gap (one
//!   byte of width, then `16 * width` bytes): dense lists take a few bits an id, and a gap is
//!   read in place with one unaligned load, a shift and a mask;
//! - the last, partial block (the "tail") is LEB128 varints, packed once it is full.
//!
//! For each full block a skip entry records its last id and where the next block starts, so
//! a cursor can jump to the block holding a target without decoding the blocks in between.
//! On the benchmark's names this takes about 1.25 bytes an id (spare capacity and skips
//! included), against 1.5 for varints alone.

/// Gaps in a packed block.
pub(super) const BLOCK: usize = 128;

/// The end of full block `j`: its last id and the byte offset just past it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Skip {
    id: u32,
    at: u32,
}

/// One trigram's ascending entry ids, tombstones included (see the index's docs).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Postings {
    /// Packed blocks, then the tail's varints. The first gap is taken from `u32::MAX`
    /// (wrapping), so it is `id + 1` and every gap is at least 1.
    bytes: Vec<u8>,
    skips: Vec<Skip>,
    /// The last id pushed (meaningless while `count` is 0).
    last: u32,
    count: u32,
}

impl Postings {
    /// Appends `id`, which must be larger than every id already in the list.
    pub(super) fn push(&mut self, id: u32) {
        let prev = if self.count == 0 { u32::MAX } else { self.last };
        debug_assert!(self.count == 0 || id > self.last, "ids only grow");
        if self.bytes.capacity() - self.bytes.len() < 5 {
            // Grow by an eighth rather than doubling: most of the index's memory is here,
            // and a geometric factor of 1.125 still costs O(1) copies per byte on average.
            let extra = (self.bytes.len() / 8).max(16);
            self.bytes.reserve_exact(extra);
        }
        write_varint(&mut self.bytes, id.wrapping_sub(prev) - 1);
        self.last = id;
        self.count += 1;
        if (self.count as usize).is_multiple_of(BLOCK) {
            self.pack_tail();
        }
    }

    /// Replaces the tail's `BLOCK` varints with a packed block.
    fn pack_tail(&mut self) {
        let start = self.tail_start();
        let mut gaps = [0u32; BLOCK];
        let mut pos = start;
        for g in &mut gaps {
            *g = read_varint(&self.bytes, &mut pos);
        }
        debug_assert_eq!(pos, self.bytes.len());
        self.bytes.truncate(start);
        self.pack(&gaps);
    }

    /// Appends a packed block of `gaps` ending at `self.last`, and its skip entry.
    fn pack(&mut self, gaps: &[u32; BLOCK]) {
        let width = 32 - gaps.iter().fold(0, |a, &g| a | g).leading_zeros();
        self.bytes.push(width as u8);
        let mut buf = [0u8; PACKED_MAX + 8];
        let w = width as usize;
        for (i, &g) in gaps.iter().enumerate() {
            let bit = i * w;
            let at = bit / 8;
            let word = u64::from(g) << (bit % 8);
            let old = u64::from_le_bytes(buf[at..at + 8].try_into().expect("8 bytes"));
            buf[at..at + 8].copy_from_slice(&(old | word).to_le_bytes());
        }
        self.bytes.extend_from_slice(&buf[..16 * w]);
        let at = u32::try_from(self.bytes.len()).expect("a posting list under 4 GiB");
        self.skips.push(Skip { id: self.last, at });
    }

    fn tail_start(&self) -> usize {
        self.skips.last().map_or(0, |s| s.at as usize)
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
        fresh.bytes.shrink_to_fit();
        fresh.skips.shrink_to_fit();
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
                let mut pos = self.tail_start();
                let mut cur = self.skips.last().map_or(u32::MAX, |s| s.id);
                let mut n = 0;
                while pos < self.bytes.len() {
                    cur = cur
                        .wrapping_add(read_varint(&self.bytes, &mut pos))
                        .wrapping_add(1);
                    out[n] = cur;
                    n += 1;
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
        debug_assert!((self.count as usize).is_multiple_of(BLOCK) && ids.len() == BLOCK);
        let mut prev = if self.count == 0 { u32::MAX } else { self.last };
        let mut gaps = [0u32; BLOCK];
        for (g, &id) in gaps.iter_mut().zip(ids) {
            *g = id.wrapping_sub(prev) - 1;
            prev = id;
        }
        self.last = prev;
        self.count += BLOCK as u32;
        if self.bytes.capacity() - self.bytes.len() < PACKED_MAX + 1 {
            let extra = (self.bytes.len() / 8).max(PACKED_MAX + 1);
            self.bytes.reserve_exact(extra);
        }
        self.pack(&gaps);
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
        assert_eq!(
            (&again.bytes, &again.skips, again.count),
            (&self.bytes, &self.skips, self.count)
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

/// The most bytes a packed block takes (width 32), less its width byte.
const PACKED_MAX: usize = 16 * 32;

/// The little-endian `u64` at `at` (zero past the end of `bytes`).
#[inline]
fn read_u64(bytes: &[u8], at: usize) -> u64 {
    match bytes.get(at..at + 8) {
        Some(b) => u64::from_le_bytes(b.try_into().expect("8 bytes")),
        None => {
            let mut b = [0u8; 8];
            let rest = &bytes[at.min(bytes.len())..];
            b[..rest.len()].copy_from_slice(rest);
            u64::from_le_bytes(b)
        }
    }
}

/// Decodes the packed block of width `W` at the start of `data` (which may end right after
/// it), adding its gaps to `base`. A constant width lets the compiler unroll the loop with
/// constant shifts and masks.
#[inline(never)]
fn unpack<const W: usize>(data: &[u8], base: u32, out: &mut [u32; BLOCK]) {
    // Each gap is read with an unaligned 8-byte load, which may reach up to 8 bytes past the
    // block: read in place when the list has them, else from a padded copy.
    let need = 16 * W + 8;
    let mut pad = [0u8; PACKED_MAX + 8];
    let data = match data.get(..need) {
        Some(d) => d,
        None => {
            let d = &data[..16 * W];
            pad[..d.len()].copy_from_slice(d);
            &pad[..need]
        }
    };
    let mask = if W == 32 {
        u64::from(u32::MAX)
    } else {
        (1u64 << W) - 1
    };
    let mut cur = base;
    for (i, id) in out.iter_mut().enumerate() {
        let bit = i * W;
        let at = bit / 8;
        let word = u64::from_le_bytes(data[at..at + 8].try_into().expect("8 bytes")) >> (bit % 8);
        cur = cur.wrapping_add((word & mask) as u32).wrapping_add(1);
        *id = cur;
    }
}

/// A position in a posting list. It reads packed gaps in place, one at a time, so a seek
/// that lands early in a block decodes only what it passes.
#[derive(Debug, Clone)]
pub(super) struct Cursor<'a> {
    list: &'a Postings,
    /// The block being read; `skips.len()` for the tail.
    block: usize,
    /// Within a packed block: the next gap's index, the width, where the gaps start.
    idx: usize,
    width: usize,
    data: usize,
    /// Within the tail: the next varint's offset.
    pos: usize,
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
            pos: 0,
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
        if j < list.skips.len() {
            self.width = usize::from(list.bytes[start]);
            self.data = start + 1;
        } else {
            self.pos = start;
        }
    }

    /// Reads the next id of the current block or tail, if any is left there.
    #[inline]
    fn step(&mut self) -> Option<u32> {
        let list = self.list;
        if self.block < list.skips.len() {
            if self.idx == BLOCK {
                return None;
            }
            let bit = self.idx * self.width;
            let word = read_u64(&list.bytes, self.data + bit / 8) >> (bit % 8);
            let gap = (word & ((1u64 << self.width) - 1)) as u32;
            self.idx += 1;
            self.cur = self.cur.wrapping_add(gap).wrapping_add(1);
        } else {
            if self.pos >= list.bytes.len() {
                return None;
            }
            let gap = read_varint(&list.bytes, &mut self.pos);
            self.cur = self.cur.wrapping_add(gap).wrapping_add(1);
        }
        Some(self.cur)
    }

    /// The next id, in ascending order.
    #[inline]
    pub(super) fn next(&mut self) -> Option<u32> {
        loop {
            if let Some(id) = self.step() {
                self.started = true;
                return Some(id);
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

    /// [`Cursor::seek`] to a target past the current block, or in the tail: finds the first
    /// block ending at or past it, galloping over the skips (targets are usually near), and
    /// reads on from that block's start.
    #[inline(never)]
    fn seek_far(&mut self, target: u32) -> Option<u32> {
        let list = self.list;
        if list.count == 0 || target > list.last {
            // Past the end: the cursor ends as having read every id.
            self.enter(list.skips.len());
            self.pos = list.bytes.len();
            self.cur = list.last;
            self.started = list.count > 0;
            return None;
        }
        let skips = &list.skips;
        let j = self.block;
        if j < skips.len() && skips[j].id < target {
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
            self.enter(lo + 1 + skips[lo + 1..hi].partition_point(|s| s.id < target));
        }
        self.started = true;
        if self.block < skips.len() {
            self.cur = self.seek_in_block(target);
        } else {
            // The tail, which ends at `list.last`, at least `target`; the cursor is before
            // `target` (`cur` is below it, or the list's start), so the loop reads at least one
            // id and ends at the tail's end at the latest.
            let mut cur = self.cur;
            loop {
                cur = cur
                    .wrapping_add(read_varint(&list.bytes, &mut self.pos))
                    .wrapping_add(1);
                if cur >= target {
                    break;
                }
            }
            self.cur = cur;
        }
        Some(self.cur)
    }

    /// Reads on in the current packed block to the first id at least `target`, which the
    /// caller knows is in it.
    #[inline(always)]
    fn seek_in_block(&mut self, target: u32) -> u32 {
        let w = self.width;
        let bytes = &self.list.bytes;
        if w == 0 {
            // Consecutive ids.
            self.idx += (target - self.cur.wrapping_add(1)) as usize + 1;
            return target;
        }
        let mask = (1u64 << w) - 1;
        let mut idx = self.idx;
        let mut bit = idx * w;
        let mut cur = self.cur;
        // Each gap is read with an unaligned 8-byte load, which may reach up to 8 bytes past
        // the block; when the list does not have them (its last block, no tail) the slow
        // path pads.
        match bytes.get(self.data..self.data + 16 * w + 8) {
            Some(data) => loop {
                let at = bit / 8;
                let word = u64::from_le_bytes(data[at..at + 8].try_into().expect("8 bytes"));
                cur = cur
                    .wrapping_add(((word >> (bit % 8)) & mask) as u32)
                    .wrapping_add(1);
                idx += 1;
                bit += w;
                if cur >= target {
                    break;
                }
            },
            None => loop {
                let word = read_u64(bytes, self.data + bit / 8) >> (bit % 8);
                cur = cur.wrapping_add((word & mask) as u32).wrapping_add(1);
                idx += 1;
                bit += w;
                if cur >= target {
                    break;
                }
            },
        }
        self.idx = idx;
        cur
    }
}

#[inline]
fn write_varint(out: &mut Vec<u8>, mut v: u32) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[inline]
fn read_varint(bytes: &[u8], pos: &mut usize) -> u32 {
    let mut v = 0u32;
    let mut shift = 0;
    loop {
        let b = bytes[*pos];
        *pos += 1;
        v |= u32::from(b & 0x7f) << shift;
        if b < 0x80 {
            return v;
        }
        shift += 7;
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

    /// Seeks in a list that is all tail (varints), from every position, and past its end.
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
