//! Requests: what each phase sends, the measured mix of SEARCH / CREATEFILE / DELETEFILE,
//! pipelined or in lockstep, flat out or at a rate.

use super::line::push_num;
use super::{Engine, Kind, Req, Stage, State};
use crate::loadgen::model::{Model, PENDING};

impl Engine<'_> {
    /// Queues `line` on connection `c` as a request of `kind`; `due` is when it was due
    /// (at a fixed rate), for its latency.
    pub(super) fn send(
        &mut self,
        c: usize,
        kind: Kind,
        target: u32,
        line: &[u8],
        due: Option<u64>,
    ) {
        self.tick += 1;
        let req = Req {
            kind,
            target,
            phase: self.stage.phase() as u8,
            tick: self.tick,
            t0: due.unwrap_or(self.now),
            sent: self.now,
        };
        let conn = &mut self.conns[c];
        conn.out.extend_from_slice(line);
        conn.inflight.push_back(req);
        self.inflight += 1;
    }

    fn send_change(&mut self, c: usize, slot: u32, present: bool, size: u64, due: Option<u64>) {
        let mut line = Vec::with_capacity(96);
        line.extend_from_slice(if present {
            b"CREATEFILE "
        } else {
            b"DELETEFILE "
        });
        line.extend_from_slice(self.model.name(slot).as_bytes());
        if present {
            line.push(b' ');
            push_num(&mut line, size);
        }
        line.push(b'\n');
        self.model.send_change(slot, present, size, self.tick + 1);
        let kind = if present { Kind::Create } else { Kind::Delete };
        self.send(c, kind, slot, &line, due);
    }

    fn send_search(&mut self, c: usize, pattern: u32, due: Option<u64>) {
        let text = &self.model.patterns[pattern as usize].text;
        let mut line = Vec::with_capacity(text.len() + 8);
        line.extend_from_slice(b"SEARCH ");
        line.extend_from_slice(text.as_bytes());
        line.push(b'\n');
        self.send(c, Kind::Search, pattern, &line, due);
    }

    /// Sends what connection `c` may send now.
    pub(super) fn pump(&mut self, c: usize) {
        if self.conns[c].state != State::Open {
            return;
        }
        match self.stage {
            Stage::Register => {
                let per = self.model.per_client as u32;
                while self.conns[c].inflight.len() < self.pipeline
                    && (self.conns[c].reg_sent as usize) < self.model.initial
                {
                    let slot = c as u32 * per + self.conns[c].reg_sent;
                    self.conns[c].reg_sent += 1;
                    let size = self.model.slots[slot as usize].size;
                    self.send_change(c, slot, true, size, None);
                }
            }
            Stage::Mix => {
                while self.conns[c].inflight.len() < self.pipeline && !self.exhausted {
                    if self.mix_issued >= self.mix_limit || self.now >= self.mix_end {
                        self.exhausted = true;
                        break;
                    }
                    let due = match self.cfg.rate {
                        Some(rate) => {
                            let due = self.due(rate, self.mix_issued);
                            if due > self.now {
                                if !self.conns[c].queued {
                                    self.conns[c].queued = true;
                                    self.waiting.push_back(c as u32);
                                }
                                break;
                            }
                            Some(due)
                        }
                        None => None,
                    };
                    self.mix_issued += 1;
                    self.send_mix(c, due);
                }
            }
            Stage::Verify => {
                while self.conns[c].inflight.len() < self.pipeline {
                    let Some(p) = self.conns[c].tasks.pop() else {
                        break;
                    };
                    self.unissued -= 1;
                    self.send_search(c, p, None);
                }
            }
            Stage::Leave => {
                if self.conns[c].inflight.is_empty() {
                    self.send(c, Kind::Leave, 0, b"LEAVE\n", None);
                    let conn = &mut self.conns[c];
                    conn.state = State::Leaving;
                    conn.since = self.now;
                }
            }
            Stage::Hold | Stage::Done => {}
        }
    }

    /// A free slot of client `c`: shared (`present`) or not, with no change in flight.
    fn pick_slot(&mut self, c: usize, present: bool) -> Option<u32> {
        let per = self.model.per_client;
        if per == 0 {
            return None;
        }
        let base = c * per;
        let ok = |m: &Model, s: usize| {
            let slot = &m.slots[s];
            slot.present == present && slot.confirmed != PENDING
        };
        for _ in 0..8 {
            let s = base + self.conns[c].rng.index(per);
            if ok(&self.model, s) {
                return Some(s as u32);
            }
        }
        let from = self.conns[c].rng.index(per);
        (0..per)
            .map(|i| base + (from + i) % per)
            .find(|&s| ok(&self.model, s))
            .map(|s| s as u32)
    }

    fn send_mix(&mut self, c: usize, due: Option<u64>) {
        let mix = self.cfg.mix;
        let roll = self.conns[c].rng.below(100);
        if roll >= mix.search {
            let create = roll < mix.search + mix.create;
            if let Some(slot) = self.pick_slot(c, !create) {
                if create {
                    // Same work, a slightly different file each time: the size changes.
                    let old = self.model.slots[slot as usize].size;
                    let size = (old & !0xFFF) | self.conns[c].rng.below(0x1000);
                    self.send_change(c, slot, true, size, due);
                } else {
                    let size = self.model.slots[slot as usize].size;
                    self.send_change(c, slot, false, size, due);
                }
                return;
            }
        }
        if self.model.listed == 0 {
            // Nothing to search for: a search for a name nobody shares.
            let p = self
                .model
                .add_pattern("no-such-file-anywhere".to_owned(), Vec::new());
            self.model.listed = self.model.patterns.len();
            return self.send_search(c, p, due);
        }
        let p = self.conns[c].rng.index(self.model.listed) as u32;
        self.send_search(c, p, due);
    }
}
