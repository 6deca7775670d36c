//! The loop's bookkeeping between events: the rate queue, timeouts, progress, and moving
//! from one phase to the next.

use std::collections::HashMap;
use std::time::Duration;

use super::{ns, server, Engine, Fault, Stage, State, SECOND};
use crate::loadgen::model::FxBuild;

impl Engine<'_> {
    pub(super) fn after_events(&mut self) {
        if self.stage == Stage::Register {
            self.launch_connects();
        }
        if self.stage == Stage::Mix && !self.exhausted {
            if self.mix_issued >= self.mix_limit || self.now >= self.mix_end {
                self.exhausted = true;
            } else if self.cfg.rate.is_some() {
                while let Some(&c) = self.waiting.front() {
                    let due = self.due(self.cfg.rate.unwrap_or(1.0), self.mix_issued);
                    if due > self.now || self.exhausted {
                        break;
                    }
                    self.waiting.pop_front();
                    let c = c as usize;
                    self.conns[c].queued = false;
                    self.pump(c);
                    self.flush(c);
                }
            }
        }
        if self.now >= self.last_sweep + SECOND / 4 {
            self.last_sweep = self.now;
            self.sweep();
        }
        if self.now >= self.last_progress + 2 * SECOND {
            self.last_progress = self.now;
            self.report_progress();
        }
        self.advance();
    }

    fn report_progress(&self) {
        match self.stage {
            Stage::Register => self.progress(format_args!(
                "registering: {} of {} clients joined, {} still registering",
                self.joined,
                self.conns.len(),
                self.reg_left
            )),
            Stage::Mix => {
                let p = &self.phases[1];
                let secs = (self.now - self.phase_start) as f64 / SECOND as f64;
                self.progress(format_args!(
                    "mix: {} requests, {:.0} req/s, {} errors",
                    p.requests(),
                    p.requests() as f64 / secs.max(1e-9),
                    self.errors.total()
                ))
            }
            _ => {}
        }
    }

    /// Closes connections whose reply is overdue; ends the mix when no client is left.
    fn sweep(&mut self) {
        if self.stage == Stage::Mix && self.inflight == 0 && self.alive().next().is_none() {
            self.exhausted = true;
        }
        let limit = ns(Duration::from_secs_f64(self.cfg.timeout.max(0.001)));
        for c in 0..self.conns.len() {
            let conn = &self.conns[c];
            match conn.state {
                State::Connecting if self.now - conn.since > limit => {
                    kill!(self, c, Fault::Connect, "client {c}: connect timed out");
                }
                State::Left if self.now - conn.since > limit => {
                    kill!(
                        self,
                        c,
                        Fault::Leave,
                        "client {c}: no close after CONFIRMLEAVE"
                    );
                }
                State::Open | State::Leaving => {
                    if let Some(req) = conn.inflight.front() {
                        let sent = req.sent;
                        if self.now.saturating_sub(sent) > limit {
                            let kind = req.kind;
                            kill!(
                                self,
                                c,
                                Fault::Timeout,
                                "client {c}: no reply to {kind:?} in {:.1} s",
                                self.cfg.timeout
                            );
                        }
                    }
                }
                _ => {}
            }
        }
    }

    fn alive(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.conns.len()).filter(|&c| self.conns[c].state == State::Open)
    }

    fn pump_all(&mut self) {
        for c in 0..self.conns.len() {
            if self.conns[c].state == State::Open {
                self.pump(c);
                self.flush(c);
            }
        }
    }

    fn cpu_now(&self) -> (f64, Option<f64>) {
        (
            server::cpu_seconds(None).unwrap_or(0.0),
            self.pid.and_then(|pid| server::cpu_seconds(Some(pid))),
        )
    }

    fn end_phase(&mut self, phase: usize, end: u64) {
        let (loadgen, server) = self.cpu_now();
        let p = &mut self.phases[phase];
        p.seconds = end.saturating_sub(self.phase_start) as f64 / SECOND as f64;
        p.loadgen_cpu = loadgen - self.cpu_start.0;
        p.server_cpu = server.zip(self.cpu_start.1).map(|(b, a)| b - a);
        self.phase_start = self.now;
        self.cpu_start = (loadgen, server);
    }

    /// Starts the clocks of a phase.
    pub(super) fn begin_phase(&mut self) {
        self.phase_start = self.now;
        self.cpu_start = self.cpu_now();
    }

    /// Moves to the next stage when this one is done.
    fn advance(&mut self) {
        loop {
            let before = self.stage;
            match self.stage {
                Stage::Register if self.next_connect == self.conns.len() && self.reg_left == 0 => {
                    self.end_phase(0, self.now);
                    self.progress(format_args!(
                        "registered: {} clients joined, {} files ({:.0} req/s)",
                        self.joined,
                        self.joined * self.model.initial,
                        self.phases[0].rps()
                    ));
                    self.hold_end = self.now + ns(Duration::from_secs_f64(self.cfg.hold.max(0.0)));
                    self.stage = Stage::Hold;
                }
                Stage::Hold if self.now >= self.hold_end => {
                    self.mem.registered = self.read_mem();
                    self.start_mix();
                }
                Stage::Mix if self.exhausted && self.inflight == 0 => {
                    let end = self.last_reply.max(self.phase_start);
                    self.end_phase(1, end);
                    self.mem.loaded = self.read_mem();
                    self.progress(format_args!(
                        "mix: {} requests in {:.2} s, {:.0} req/s",
                        self.phases[1].requests(),
                        self.phases[1].seconds,
                        self.phases[1].rps()
                    ));
                    if self.cfg.verify_final {
                        self.start_verify();
                    } else {
                        self.start_leave();
                    }
                }
                Stage::Verify if self.unissued == 0 && self.inflight == 0 => {
                    if self.verify_round == 0 {
                        self.verify_round = 1;
                        self.start_name_round();
                    } else {
                        self.end_phase(2, self.now);
                        self.start_leave();
                    }
                }
                Stage::Leave if self.leave_left == 0 => {
                    self.end_phase(3, self.now);
                    self.mem.end = self.read_mem();
                    self.stage = Stage::Done;
                }
                _ => {}
            }
            if self.stage == before {
                return;
            }
        }
    }

    fn start_mix(&mut self) {
        self.stage = Stage::Mix;
        self.begin_phase();
        self.last_reply = self.now;
        self.mix_end = self
            .cfg
            .duration()
            .map_or(u64::MAX, |d| self.now.saturating_add(ns(d)));
        self.mix_limit = self.cfg.requests.unwrap_or(u64::MAX);
        self.exhausted = self.mix_limit == 0 || self.mix_end <= self.now;
        self.pump_all();
    }

    /// Gives the searches in `tasks` to the connected clients in turn; returns how many
    /// were given (none when no client is connected).
    fn distribute(&mut self, tasks: Vec<u32>) -> u64 {
        let alive: Vec<usize> = self.alive().collect();
        if alive.is_empty() {
            return 0;
        }
        let count = tasks.len() as u64;
        for (i, t) in tasks.into_iter().enumerate() {
            self.conns[alive[i % alive.len()]].tasks.push(t);
            self.unissued += 1;
        }
        self.pump_all();
        count
    }

    fn start_verify(&mut self) {
        self.stage = Stage::Verify;
        self.begin_phase();
        self.covered = vec![false; self.model.slots.len()];
        let tasks: Vec<u32> = (0..self.model.listed as u32).rev().collect();
        self.verify.pattern_searches = self.distribute(tasks);
    }

    /// Searches by full name for every shared file no uncapped pattern search listed.
    fn start_name_round(&mut self) {
        let mut by_name: HashMap<&str, Vec<u32>, FxBuild> = HashMap::default();
        let mut present = 0;
        for slot in 0..self.model.slots.len() as u32 {
            let owner = self.model.client_of(slot);
            if self.conns[owner].state != State::Open || !self.model.slots[slot as usize].present {
                continue;
            }
            present += 1;
            if !self.covered[slot as usize] {
                by_name.entry(self.model.name(slot)).or_default().push(slot);
            }
        }
        self.verify.files_present = present;
        let mut groups: Vec<(String, Vec<u32>)> = by_name
            .into_iter()
            .map(|(name, slots)| (name.to_owned(), slots))
            .collect();
        groups.sort();
        let tasks: Vec<u32> = groups
            .into_iter()
            .map(|(name, slots)| self.model.add_pattern(name, slots))
            .collect();
        self.progress(format_args!(
            "final check: {} of {} shared files listed by pattern searches; {} name searches",
            self.covered.iter().filter(|&&c| c).count(),
            present,
            tasks.len()
        ));
        self.verify.name_searches = self.distribute(tasks);
    }

    fn start_leave(&mut self) {
        self.stage = Stage::Leave;
        self.begin_phase();
        self.leave_left = self.alive().count();
        self.pump_all();
    }
}
