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

mod cursor;
mod rewrite;
#[cfg(test)]
mod tests;

pub(super) use self::cursor::Cursor;
pub(super) use self::rewrite::Rewrite;

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
