//! The session with the index server: one request in flight at a time.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::goal::OnServerLost;
use super::{
    Client, ClientError, ClientEvent, Command, DownloadFailure, DownloadId, LostReason, SearchHit,
};
use crate::hash::{ContentHash, PieceHashes};
use crate::wire::{ExtReply, ExtRequest, LineBuf, Reply, Request, EXT_TOKEN};
use crate::ConnId;

#[derive(Debug)]
pub(super) enum Pending {
    Join,
    Create {
        name: String,
        size: u64,
        hash: ContentHash,
    },
    Delete {
        name: String,
    },
    Search {
        pattern: String,
        hits: Vec<SearchHit>,
        answered: bool,
        /// A search the client made itself to learn a download's size, not shown.
        lookup: Option<DownloadId>,
    },
    Leave,
    /// A heartbeat: the server drops an extension connection that stays silent.
    Ping,
}

#[derive(Debug)]
pub(super) struct InFlight {
    pub(super) what: Pending,
    /// When the request went out, or the last reply line came in.
    pub(super) since: Instant,
}

#[derive(Debug, PartialEq, Eq)]
pub(super) enum Link {
    Connecting,
    Up,
    Down,
}

/// The session with the index server.
#[derive(Debug)]
pub(super) struct Session {
    pub(super) conn: ConnId,
    pub(super) link: Link,
    pub(super) rx: LineBuf,
    /// When the last byte arrived, to time out an unterminated line.
    pub(super) last_rx: Option<Instant>,
    pub(super) queue: VecDeque<Pending>,
    pub(super) in_flight: Option<InFlight>,
    pub(super) leaving: bool,
    /// What we send in `JOIN`: our IP as the server sees the route, and our file-server
    /// port when it is not the classic one.
    pub(super) join_text: String,
    /// The server granted the napshare extension.
    pub(super) ext: bool,
    /// The classic server has shown that it answers a search that matches nothing
    /// (`NORESULT`, or `ENDSEARCH` with no `FILE` line before it): until it has, an
    /// unanswered search ends after [`NO_ANSWER_QUIET`](super::NO_ANSWER_QUIET). Kept
    /// across reconnections: it is the same server.
    pub(super) answers_no_match: bool,
    /// How often to ping when idle: a third of the silence the server allows.
    pub(super) heartbeat: Option<std::time::Duration>,
    /// When the last request went out.
    pub(super) last_sent: Option<Instant>,
    /// The server confirmed a `JOIN` at least once: losing it now means reconnecting,
    /// where failing to reach it at start means giving up.
    pub(super) joined_once: bool,
    /// When to try the server again, while the link is down.
    pub(super) reconnect_at: Option<Instant>,
    /// The wait before the next try: doubled after each failure, up to [`MAX_BACKOFF`].
    pub(super) backoff: Duration,
}

/// The first wait before reconnecting to a lost server.
pub const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// The longest wait between two tries.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

impl Client {
    pub(super) fn share(&mut self, name: String, pieces: PieceHashes) {
        let (size, hash) = (pieces.size(), pieces.root());
        if let Some(old) = self.shared.insert(name.clone(), pieces) {
            self.by_hash.remove(&old.root());
        }
        self.by_hash.insert(hash, name.clone());
        self.session
            .queue
            .push_back(Pending::Create { name, size, hash });
    }

    /// Stops serving `name`; returns whether it was shared.
    pub(super) fn unshare(&mut self, name: &str) -> bool {
        let Some(old) = self.shared.remove(name) else {
            return false;
        };
        let hash = old.root();
        if self.by_hash.get(&hash).is_some_and(|n| n == name) {
            self.by_hash.remove(&hash);
            // Another name with the same content can serve it.
            let other = self.shared.iter().find(|(_, p)| p.root() == hash);
            if let Some((other, _)) = other {
                self.by_hash.insert(hash, other.clone());
            }
        }
        true
    }

    /// The session with the server is gone (it cannot answer a lookup any more).
    pub(super) fn session_is_down(&self) -> bool {
        self.session.link == Link::Down || self.exit.is_some()
    }

    /// Sends the next queued request if none is in flight.
    pub(super) fn pump(&mut self, now: Instant) {
        let s = &mut self.session;
        if s.link != Link::Up || s.in_flight.is_some() || self.exit.is_some() {
            return;
        }
        let Some(what) = s.queue.pop_front() else {
            return;
        };
        let mut out = Vec::new();
        let out_ref = &mut out;
        // Ask for the extension in JOIN; use it once granted, else speak classic.
        match (&what, s.ext) {
            (Pending::Join, _) => {
                let addr = format!("{} {EXT_TOKEN}", s.join_text);
                Request::Join { addr: &addr }.encode(out_ref);
            }
            (Pending::Create { name, size, hash }, true) => ExtRequest::AddFile {
                name: name.into(),
                size: *size,
                hash: *hash,
            }
            .encode(out_ref),
            (Pending::Create { name, size, .. }, false) => {
                Request::CreateFile { name, size: *size }.encode(out_ref);
            }
            (Pending::Delete { name }, true) => {
                ExtRequest::DelFile { name: name.into() }.encode(out_ref);
            }
            (Pending::Delete { name }, false) => Request::DeleteFile { name }.encode(out_ref),
            (Pending::Search { pattern, .. }, true) => ExtRequest::Find {
                pattern: pattern.into(),
            }
            .encode(out_ref),
            (Pending::Search { pattern, .. }, false) => {
                Request::Search { pattern }.encode(out_ref);
            }
            (Pending::Leave, _) => Request::Leave.encode(out_ref),
            (Pending::Ping, _) => ExtRequest::Ping.encode(out_ref),
        }
        s.last_sent = Some(now);
        s.in_flight = Some(InFlight { what, since: now });
        let conn = s.conn;
        self.send(conn, out);
    }

    pub(super) fn on_reply_line(&mut self, now: Instant, line: &str) {
        let reply = match Reply::parse(line) {
            Ok(r) => r,
            Err(_) => match ExtReply::parse(line) {
                Ok(r) => return self.on_ext_reply(now, r),
                Err(_) => return,
            },
        };
        let unanswered = self.session.in_flight.as_ref().is_some_and(|f| {
            matches!(
                f.what,
                Pending::Search {
                    answered: false,
                    ..
                }
            )
        });
        // Even late, a terminator shows how this server ends an empty search.
        match reply {
            Reply::NoResult => self.session.answers_no_match = true,
            Reply::EndSearch if unanswered => self.session.answers_no_match = true,
            _ => {}
        }
        let Some(f) = self.session.in_flight.as_mut() else {
            return;
        };
        match (&mut f.what, reply) {
            (Pending::Join, Reply::ConfirmJoin) => {
                self.session.in_flight = None;
                self.session.joined_once = true;
                self.session.backoff = FIRST_BACKOFF;
                self.events.push_back(ClientEvent::Joined {
                    server: self.config.server,
                });
            }
            (Pending::Create { name, .. }, Reply::ConfirmCreateFile { name: n }) if n == name => {
                self.confirm_create();
            }
            (Pending::Delete { name }, Reply::ConfirmDeleteFile { name: n }) if n == name => {
                self.confirm_delete();
            }
            (Pending::Search { hits, answered, .. }, Reply::File { name, peer, size }) => {
                hits.push(SearchHit {
                    name: name.to_owned(),
                    peer: peer.to_owned(),
                    size,
                    hash: None,
                });
                *answered = true;
                f.since = now;
            }
            (Pending::Search { answered, .. }, Reply::NoResult) => {
                *answered = true;
                f.since = now;
            }
            (Pending::Search { .. }, Reply::EndSearch) => self.complete_search(now),
            (Pending::Leave, Reply::ConfirmLeave) => {
                self.session.in_flight = None;
                self.finish_leave();
            }
            // A reply that does not answer what we asked: ignore it.
            _ => {}
        }
    }

    /// An extension reply: like its classic twin, with names decoded and hashes.
    fn on_ext_reply(&mut self, now: Instant, reply: ExtReply<'_>) {
        let Some(f) = self.session.in_flight.as_mut() else {
            return;
        };
        match (&mut f.what, reply) {
            (Pending::Join, ExtReply::ConfirmJoin { idle }) => {
                self.session.ext = true;
                self.session.joined_once = true;
                self.session.backoff = FIRST_BACKOFF;
                self.session.heartbeat = idle.map(|s| std::time::Duration::from_secs(s) / 3);
                self.session.in_flight = None;
                self.events.push_back(ClientEvent::Joined {
                    server: self.config.server,
                });
            }
            (Pending::Create { name, .. }, ExtReply::ConfirmAddFile { name: n }) if n == *name => {
                self.confirm_create();
            }
            (Pending::Delete { name }, ExtReply::ConfirmDelFile { name: n }) if n == *name => {
                self.confirm_delete();
            }
            (
                Pending::Search { hits, answered, .. },
                ExtReply::Found {
                    name,
                    peer,
                    size,
                    hash,
                },
            ) => {
                hits.push(SearchHit {
                    name: name.into_owned(),
                    peer: peer.to_owned(),
                    size,
                    hash,
                });
                *answered = true;
                f.since = now;
            }
            (Pending::Search { .. }, ExtReply::EndFind { .. }) => self.complete_search(now),
            (Pending::Ping, ExtReply::Pong) => self.session.in_flight = None,
            (_, ExtReply::Error { message }) => {
                // The server refused what we asked; say so and go on with the next request.
                self.session.in_flight = None;
                let message = message.into_owned();
                self.error(ClientError::ServerRefused { message });
            }
            _ => {}
        }
    }

    fn confirm_create(&mut self) {
        if let Some(InFlight {
            what: Pending::Create { name, size, .. },
            ..
        }) = self.session.in_flight.take()
        {
            self.events.push_back(ClientEvent::Shared { name, size });
        }
    }

    fn confirm_delete(&mut self) {
        if let Some(InFlight {
            what: Pending::Delete { name },
            ..
        }) = self.session.in_flight.take()
        {
            self.events.push_back(ClientEvent::Unshared { name });
        }
    }

    /// Whether a search in flight that has had no reply line may be a search the server
    /// will never answer: a classic server that has not shown it answers an empty search.
    pub(super) fn search_may_go_unanswered(&self) -> bool {
        let s = &self.session;
        !s.ext && !s.answers_no_match
    }

    /// When the session should ping next, if it speaks the extension and is idle.
    pub(super) fn heartbeat_due(&self) -> Option<Instant> {
        let s = &self.session;
        let idle = s.in_flight.is_none() && s.queue.is_empty() && s.link == Link::Up;
        s.heartbeat
            .zip(s.last_sent)
            .filter(|_| idle)
            .map(|(every, last)| last + every)
    }

    pub(super) fn complete_search(&mut self, now: Instant) {
        let Some(InFlight {
            what:
                Pending::Search {
                    pattern,
                    hits,
                    lookup,
                    ..
                },
            ..
        }) = self.session.in_flight.take()
        else {
            return;
        };
        if let Some(id) = lookup {
            return self.plan_download(id, &hits);
        }
        self.last_hits.clone_from(&hits);
        let found = !hits.is_empty();
        self.events
            .push_back(ClientEvent::SearchDone { pattern, hits });
        self.goal_searched(found);
        self.run_after_search(now);
    }

    /// Whether a search the user asked for is queued or on its way.
    pub(super) fn user_search_pending(&self) -> bool {
        let user = |p: &Pending| matches!(p, Pending::Search { lookup: None, .. });
        let s = &self.session;
        s.in_flight.as_ref().is_some_and(|f| user(&f.what)) || s.queue.iter().any(user)
    }

    /// Runs the commands that waited for the latest search ([`Client::command`] waits
    /// them again if another search is still on its way).
    fn run_after_search(&mut self, now: Instant) {
        for cmd in std::mem::take(&mut self.after_search) {
            self.command(now, cmd);
        }
        self.leave_if_waiting();
    }

    pub(super) fn finish_leave(&mut self) {
        if self.exit.is_some() {
            return;
        }
        self.exit = Some(self.leave_status());
        self.close_all();
        self.events.push_back(ClientEvent::Left);
    }

    /// The session with the server ended. Before the first `JOIN` the client gives up
    /// (status 1); after it, it tries again later, and shares everything again then.
    pub(super) fn lose_server(&mut self, now: Instant, reason: LostReason) {
        if self.exit.is_some() {
            return;
        }
        if self.session.leaving {
            return self.finish_leave();
        }
        let on_lost = self.goal_on_server_lost();
        if !self.session.joined_once || matches!(on_lost, OnServerLost::GiveUp) {
            self.exit = Some(super::exit::ERROR);
            self.close_all();
            return self.events.push_back(ClientEvent::ServerLost {
                reason,
                retry_in: None,
            });
        }
        let s = &mut self.session;
        if s.link != Link::Down {
            s.link = Link::Down;
            if self.roles.remove(&s.conn).is_some() {
                self.commands.push_back(Command::Close { conn: s.conn });
            }
        }
        s.rx = LineBuf::new(crate::wire::MAX_LINE);
        s.last_rx = None;
        if matches!(on_lost, OnServerLost::Detach) {
            // A one-shot download needs only its peers: let it end, then exit.
            s.leaving = true;
            s.in_flight = None;
            s.queue.clear();
            return self.events.push_back(ClientEvent::ServerLost {
                reason,
                retry_in: None,
            });
        }
        let wait = s.backoff;
        s.backoff = (wait * 2).min(MAX_BACKOFF);
        s.reconnect_at = Some(now + wait);
        // What was on its way is gone; a download waiting for a lookup waits on.
        match s.in_flight.take().map(|f| f.what) {
            Some(Pending::Search {
                lookup: None,
                pattern,
                ..
            }) => {
                self.error(ClientError::SearchCutOff { pattern });
                // Its results will never come: a number typed after it names none.
                self.last_hits.clear();
                self.run_after_search(now);
            }
            Some(lookup @ Pending::Search { .. }) => self.session.queue.push_front(lookup),
            _ => {}
        }
        self.session
            .queue
            .retain(|p| matches!(p, Pending::Search { .. }));
        self.events.push_back(ClientEvent::ServerLost {
            reason,
            retry_in: Some(wait),
        });
    }

    /// Tries the server again once the backoff has passed.
    pub(super) fn reconnect_if_due(&mut self, now: Instant) {
        let s = &mut self.session;
        if s.reconnect_at.is_none_or(|at| at > now) {
            return;
        }
        s.reconnect_at = None;
        s.conn = ConnId(self.next_conn);
        self.next_conn += 1;
        s.link = Link::Connecting;
        self.roles.insert(s.conn, super::Role::Server);
        self.commands.push_back(Command::Connect {
            conn: s.conn,
            addr: self.config.server,
        });
    }

    /// After a reconnection: `JOIN`, then every shared file again, then what was waiting.
    pub(super) fn requeue_session(&mut self) {
        let waiting: Vec<Pending> = self.session.queue.drain(..).collect();
        self.session.queue.push_back(Pending::Join);
        for (name, pieces) in &self.shared {
            self.session.queue.push_back(Pending::Create {
                name: name.clone(),
                size: pieces.size(),
                hash: pieces.root(),
            });
        }
        self.session
            .queue
            .extend(waiting.into_iter().filter(|p| !matches!(p, Pending::Join)));
    }

    /// Closes every connection and keeps the partial files of unfinished downloads.
    pub(super) fn close_all(&mut self) {
        for (conn, _) in std::mem::take(&mut self.roles) {
            self.commands.push_back(Command::Close { conn });
        }
        let ids: Vec<_> = self.downloads.keys().copied().collect();
        for id in ids {
            self.fail_download(id, DownloadFailure::Stopping);
        }
    }
}
