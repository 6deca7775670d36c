//! Checking replies against the model: every line answers the request at the front of
//! its connection's queue, and a search's `FILE` lines are exactly the files it must list.

use super::line::{canonical, memfind, parse_num, parse_peer, show};
use super::{Engine, Fault, Kind, Req, Stage, State};

impl Engine<'_> {
    pub(super) fn on_line(&mut self, c: usize, mut line: &[u8]) {
        while let Some(rest) = line.strip_suffix(b"\r") {
            line = rest;
        }
        let Some(&req) = self.conns[c].inflight.front() else {
            return kill!(
                self,
                c,
                Fault::WrongReply,
                "client {c}: a line nobody asked for: {}",
                show(line)
            );
        };
        match req.kind {
            Kind::Join => {
                if line != b"CONFIRMJOIN" {
                    return kill!(
                        self,
                        c,
                        Fault::WrongReply,
                        "client {c}: JOIN answered with {}",
                        show(line)
                    );
                }
                self.conns[c].joined = true;
                self.connecting -= 1;
                self.joined += 1;
                self.complete(c, req);
                self.check_registered(c);
            }
            Kind::Create | Kind::Delete => {
                let word: &[u8] = if req.kind == Kind::Create {
                    b"CONFIRMCREATEFILE "
                } else {
                    b"CONFIRMDELETEFILE "
                };
                let Some(name) = line.strip_prefix(word) else {
                    return kill!(
                        self,
                        c,
                        Fault::WrongReply,
                        "client {c}: {}FILE {} answered with {}",
                        if req.kind == Kind::Create {
                            "CREATE"
                        } else {
                            "DELETE"
                        },
                        self.model.name(req.target),
                        show(line)
                    );
                };
                if name == self.model.name(req.target).as_bytes() {
                    self.tick += 1;
                    self.model.confirm(req.target, self.tick);
                } else {
                    // The slot stays pending: it is no longer checked strictly.
                    err!(
                        self,
                        Fault::WrongReply,
                        "client {c}: {} for {} answered with {}",
                        String::from_utf8_lossy(word).trim(),
                        self.model.name(req.target),
                        show(line)
                    );
                }
                self.complete(c, req);
                if req.kind == Kind::Create && req.phase == 0 {
                    self.conns[c].reg_confirmed += 1;
                    self.check_registered(c);
                }
            }
            Kind::Search => {
                if let Some(rest) = line.strip_prefix(b"FILE ") {
                    self.on_file(c, req, rest);
                } else if line == b"NORESULT" {
                    let conn = &mut self.conns[c];
                    if conn.s_count > 0 || conn.s_noresult {
                        err!(
                            self,
                            Fault::WrongReply,
                            "client {c}: NORESULT after results, SEARCH {}",
                            self.model.patterns[req.target as usize].text
                        );
                    }
                    self.conns[c].s_noresult = true;
                } else if line == b"ENDSEARCH" {
                    self.end_search(c, req);
                } else {
                    kill!(
                        self,
                        c,
                        Fault::WrongReply,
                        "client {c}: SEARCH {} answered with {}",
                        self.model.patterns[req.target as usize].text,
                        show(line)
                    );
                }
            }
            Kind::Leave => {
                if line != b"CONFIRMLEAVE" {
                    return kill!(
                        self,
                        c,
                        Fault::Leave,
                        "client {c}: LEAVE answered with {}",
                        show(line)
                    );
                }
                self.complete(c, req);
                let conn = &mut self.conns[c];
                conn.state = State::Left;
                conn.since = self.now;
            }
        }
    }

    fn complete(&mut self, c: usize, req: Req) {
        self.conns[c].inflight.pop_front();
        self.inflight -= 1;
        self.last_reply = self.now;
        self.phases[req.phase as usize].hists[req.kind as usize]
            .record(self.now.saturating_sub(req.t0));
    }

    fn check_registered(&mut self, c: usize) {
        let conn = &mut self.conns[c];
        if !conn.reg_done && conn.joined && conn.reg_confirmed as usize == self.model.initial {
            conn.reg_done = true;
            self.reg_left -= 1;
        }
    }

    fn on_file(&mut self, c: usize, req: Req, rest: &[u8]) {
        self.conns[c].s_count += 1;
        let count = self.conns[c].s_count as usize;
        let pattern = req.target as usize;
        if count == self.cfg.max_results + 1 {
            err!(
                self,
                Fault::OverCap,
                "client {c}: SEARCH {} listed more than {} files",
                self.model.patterns[pattern].text,
                self.cfg.max_results
            );
        }
        match self.check_file(req, rest) {
            Ok(slot) => self.conns[c].s_seen.push(slot),
            Err(why) => err!(
                self,
                Fault::BadResult,
                "client {c}: SEARCH {} listed FILE {}: {why}",
                self.model.patterns[pattern].text,
                String::from_utf8_lossy(rest)
            ),
        }
    }

    /// The slot a `FILE` line (what follows `FILE `) in the reply to `req` names, if
    /// the line is right.
    fn check_file(&self, req: Req, rest: &[u8]) -> Result<u32, String> {
        let mut fields = rest.rsplitn(3, |&b| b == b' ');
        let (Some(size), Some(peer), Some(name)) = (fields.next(), fields.next(), fields.next())
        else {
            return Err("not NAME PEER SIZE".into());
        };
        let size = parse_num(size).ok_or("the size is not a number")?;
        let owner = self.owner_of(peer)?;
        let slot = self.slot_named(req, owner, name)?;
        if self.conns[owner].state != State::Dead {
            self.model
                .check_listed(slot, size, req.tick)
                .map_err(|why| format!("client {owner}'s file: {why}"))?;
        }
        Ok(slot)
    }

    /// The client a `FILE` line's peer names. Most lines name it exactly as it joined,
    /// which a byte comparison confirms; any other form is parsed.
    fn owner_of(&self, peer: &[u8]) -> Result<usize, String> {
        let port = peer.rsplit(|&b| b == b':').next().and_then(parse_num);
        if let Some(owner) =
            port.map(|p| (p as usize).wrapping_sub(usize::from(self.cfg.port_base)))
        {
            if self.conns.get(owner).is_some_and(|c| c.peer == peer) {
                return Ok(owner);
            }
        }
        let (ip, port) = std::str::from_utf8(peer)
            .ok()
            .and_then(parse_peer)
            .ok_or("the peer is not ip:port")?;
        let owner = usize::from(port).wrapping_sub(usize::from(self.cfg.port_base));
        if owner >= self.conns.len() {
            return Err("no client joined with that port".into());
        }
        if let Some(expected) = self.conns[owner].ip {
            if canonical(ip) != expected {
                return Err(format!("client {owner} connected from {expected}"));
            }
        }
        Ok(owner)
    }

    /// The slot of `owner` that a `FILE` line of the reply to `req` names, if it contains
    /// the pattern. Looked up first among the pattern's own slots (those of `owner` are a
    /// few at most), which is also the proof that the name contains the pattern; else by
    /// the name, for the error or for a name search's other matches.
    fn slot_named(&self, req: Req, owner: usize, name: &[u8]) -> Result<u32, String> {
        let pattern = &self.model.patterns[req.target as usize];
        let per = self.model.per_client as u32;
        let (lo, hi) = (owner as u32 * per, (owner as u32 + 1) * per);
        let from = pattern.postings.partition_point(|&s| s < lo);
        let known = pattern.postings[from..]
            .iter()
            .take_while(|&&s| s < hi)
            .find(|&&s| self.model.name(s).as_bytes() == name);
        if let Some(&slot) = known {
            return Ok(slot);
        }
        let slot = self
            .model
            .find(owner, name)
            .ok_or_else(|| format!("client {owner} never registered that name"))?;
        if memfind(name, pattern.text.as_bytes()).is_none() {
            return Err("the name does not contain the pattern".into());
        }
        Ok(slot)
    }

    fn end_search(&mut self, c: usize, req: Req) {
        let pattern = req.target as usize;
        let mut seen = std::mem::take(&mut self.conns[c].s_seen);
        let count = self.conns[c].s_count as usize;
        let noresult = self.conns[c].s_noresult;
        if count == 0 && !noresult {
            err!(
                self,
                Fault::WrongReply,
                "client {c}: SEARCH {} ended with no FILE line and no NORESULT",
                self.model.patterns[pattern].text
            );
        }
        let phase = &mut self.phases[req.phase as usize];
        phase.search_lines += count as u64;
        if count >= self.cfg.max_results {
            phase.capped += 1;
        }
        if noresult {
            phase.noresult += 1;
        }
        seen.sort_unstable();
        if let Some(w) = seen.windows(2).find(|w| w[0] == w[1]) {
            let slot = w[0];
            err!(
                self,
                Fault::BadResult,
                "client {c}: SEARCH {} listed {} of client {} twice",
                self.model.patterns[pattern].text,
                self.model.name(slot),
                self.model.client_of(slot)
            );
        }
        let verifying = self.stage == Stage::Verify;
        if verifying {
            // Every file a checked FILE line named is there.
            for &slot in &seen {
                self.covered[slot as usize] = true;
            }
        }
        if count >= self.cfg.max_results && verifying && self.verify_round == 1 {
            // A name search cut by the cap: the files it was for cannot be checked.
            let unchecked = self.model.patterns[pattern]
                .postings
                .iter()
                .filter(|&&slot| {
                    self.model.required(slot, req.tick) && seen.binary_search(&slot).is_err()
                })
                .count();
            self.verify.unverifiable += unchecked as u64;
        }
        if count < self.cfg.max_results {
            for i in 0..self.model.patterns[pattern].postings.len() {
                let slot = self.model.patterns[pattern].postings[i];
                let owner = self.model.client_of(slot);
                if self.conns[owner].state == State::Dead || !self.model.required(slot, req.tick) {
                    continue;
                }
                if seen.binary_search(&slot).is_ok() {
                    continue;
                }
                err!(
                    self,
                    Fault::Missing,
                    "client {c}: SEARCH {} left out {} {} shared by client {owner} \
                         (port {}), confirmed before the search was sent",
                    self.model.patterns[pattern].text,
                    self.model.name(slot),
                    self.model.slots[slot as usize].size,
                    u64::from(self.cfg.port_base) + owner as u64
                );
            }
        }
        seen.clear();
        let conn = &mut self.conns[c];
        conn.s_seen = seen;
        conn.s_count = 0;
        conn.s_noresult = false;
        self.complete(c, req);
    }
}
