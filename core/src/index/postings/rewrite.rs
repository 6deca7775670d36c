//! Rewriting a posting list without its dead ids, a few blocks at a time, for the sweep.

use super::{Postings, BLOCK};

/// A posting list being rewritten without its dead ids, a few blocks at a time (see
/// [`Postings::rewrite`]).
#[derive(Debug, Default)]
pub(in crate::index) struct Rewrite {
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

    pub(in crate::index) fn heap_bytes(&self) -> usize {
        self.fresh.heap_bytes() + self.kept.capacity() * 4
    }
}

impl Postings {
    /// Carries `rw` on over up to about `budget` ids of this list (whole blocks), keeping
    /// those `keep` accepts. On reaching the tail (at most `BLOCK - 1` ids, read whatever the
    /// budget) it finishes: the list becomes the rewritten one. Returns the ids read and
    /// whether it finished.
    ///
    /// Between calls the list may grow (ids are only appended, and full blocks never
    /// change), so a rewrite spread over many calls still sees every id.
    pub(in crate::index) fn rewrite(
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
}
