//! Tombstones and the sweep: dead ids leave the posting lists a few blocks at a time, each
//! call that adds or removes files paying its share (see the module docs).

use super::postings::Rewrite;
use super::Index;

/// A sweep of the posting lists under way.
#[derive(Debug, Default)]
pub(super) struct Sweep {
    /// The list being rewritten.
    list: usize,
    pub(super) rewrite: Rewrite,
    /// The dead ids there were when the sweep began: none is in any list once it is done.
    clears: usize,
}

impl Index {
    /// Pays `units` calls' or files' share of the sweep, starting one when the dead ids in
    /// the posting lists pass half the live entries.
    pub(super) fn maintain(&mut self, units: usize) {
        if self.sweep.is_none() {
            if self.stale < self.tuning.min_stale || self.stale * 2 <= self.live {
                return;
            }
            self.sweep = Some(Sweep {
                clears: self.stale,
                ..Sweep::default()
            });
            self.debt = 0;
        }
        // Twice the postings per live entry, a unit: the sweep is done before as many
        // entries as half the living have come or gone.
        let pace = 2 * self.postings / self.live.max(1) + 1;
        self.debt = self.debt.saturating_add(units.saturating_mul(pace));
        let budget = self.debt.min(self.tuning.max_step);
        let used = self.sweep_for(budget);
        self.debt -= used.min(self.debt);
    }

    /// Sweeps about `budget` postings (or until the sweep is done); returns the postings
    /// read (at least one a list).
    fn sweep_for(&mut self, budget: usize) -> usize {
        let mut used = 0;
        while used < budget {
            let Some(sweep) = &mut self.sweep else { break };
            let Some(list) = self.lists.get_mut(sweep.list) else {
                self.stale -= sweep.clears;
                self.sweep = None;
                self.sweeps += 1;
                self.debt = 0;
                break;
            };
            let before = list.count() as usize;
            let entries = &self.entries;
            let (read, done) =
                list.rewrite(&mut sweep.rewrite, |id| entries.is_live(id), budget - used);
            used += read.max(1);
            if done {
                self.postings = self.postings - before + list.count() as usize;
                sweep.list += 1;
            }
        }
        used
    }

    /// Drops every tombstone now: finishes the sweep of the posting lists (and sweeps them
    /// again for what died since it began) and rewrites every segment with dead entries.
    /// The index does this by itself, a little at a time; calling it only costs time.
    pub fn compact(&mut self) {
        while self.stale > 0 {
            if self.sweep.is_none() {
                self.sweep = Some(Sweep {
                    clears: self.stale,
                    ..Sweep::default()
                });
            }
            self.sweep_for(usize::MAX);
        }
        self.entries.compact_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::testing::{peer, plain};
    use crate::index::{OwnerId, MIN_STALE, NONE};

    #[test]
    fn removals_compact_and_keep_order() {
        let mut ix = Index::new();
        let mut model = Vec::new();
        for round in 0..6u64 {
            for owner in 0..4u64 {
                for i in 0..50 {
                    let name = format!("track {i:02} by owner{owner} round{round}.mp3");
                    ix.register(OwnerId(round * 4 + owner), peer(1), &name, i, None);
                    model.push((round * 4 + owner, name));
                }
            }
            // Drop two of the four owners of this round and half the files of another.
            for gone in [round * 4, round * 4 + 2] {
                assert_eq!(ix.remove_owner(OwnerId(gone)), 50);
                model.retain(|(o, _)| *o != gone);
            }
            for i in (0..50).step_by(2) {
                let o = round * 4 + 1;
                let name = format!("track {i:02} by owner{o} round{round}.mp3");
                let name = name.replace(&format!("owner{o}"), "owner1");
                assert!(ix.unregister(OwnerId(o), &name));
                model.retain(|(mo, n)| !(*mo == o && *n == name));
            }
            ix.check_invariants();
            for pattern in [
                "",
                "track 0",
                "owner1",
                "round3",
                "7 by",
                "owner3 round5.mp3",
            ] {
                let want: Vec<String> = model
                    .iter()
                    .filter(|(_, n)| n.contains(pattern))
                    .map(|(_, n)| n.clone())
                    .collect();
                assert_eq!(plain(&ix, pattern), want, "pattern {pattern:?}");
            }
        }
        assert!(ix.stale <= 2 * ix.len() + MIN_STALE);
        ix.compact();
        ix.check_invariants();
        assert_eq!(ix.stale, 0);
        assert!(ix.sweep.is_none());
    }

    /// Many removals with tiny segments and a sweep that reads a few postings a call: the
    /// sweep runs over many calls while files come and go, and searches stay exact.
    #[test]
    fn the_sweep_runs_in_steps() {
        let mut ix = Index::for_tests(3, 4, 20, NONE);
        let mut model: Vec<(u64, String)> = Vec::new();
        let mut steps = 0;
        for round in 0..40u64 {
            for i in 0..12u64 {
                let owner = round * 3 + i % 3;
                let name = format!("song {i} of round {round} abc");
                ix.register(OwnerId(owner), peer(1), &name, i, None);
                model.push((owner, name));
            }
            if round >= 2 {
                for gone in [
                    (round - 2) * 3 + round % 3,
                    (round - 2) * 3 + (round + 1) % 3,
                ] {
                    ix.remove_owner(OwnerId(gone));
                    model.retain(|(o, _)| *o != gone);
                }
                let o = (round - 1) * 3 + (round + 2) % 3;
                let name = format!("song {} of round {} abc", (round + 2) % 3, round - 1);
                assert!(ix.unregister(OwnerId(o), &name));
                model.retain(|(mo, n)| !(*mo == o && *n == name));
            }
            if ix.sweep.is_some() {
                steps += 1;
            }
            ix.check_invariants();
            for pattern in ["", "abc", "round 1", "song 4", "7 abc", "s"] {
                let want: Vec<String> = model
                    .iter()
                    .filter(|(_, n)| n.contains(pattern))
                    .map(|(_, n)| n.clone())
                    .collect();
                assert_eq!(plain(&ix, pattern), want, "pattern {pattern:?}");
            }
        }
        let sweeps = ix.sweeps;
        assert!(
            sweeps > 1 && steps > sweeps,
            "{sweeps} sweeps, {steps} rounds mid-sweep"
        );
        assert!(ix.stale <= 2 * ix.len() + 4);
        ix.compact();
        ix.check_invariants();
        assert_eq!(ix.stale, 0);
    }
}
