//! The session with the index server: one request in flight at a time.

use std::collections::VecDeque;
use std::time::Instant;

use super::{Client, ClientEvent, Command, DownloadId, SearchHit};
use crate::wire::{LineBuf, Reply, Request};
use crate::ConnId;

#[derive(Debug)]
pub(super) enum Pending {
    Join,
    Create {
        name: String,
        size: u64,
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
}

impl Client {
    pub(super) fn share(&mut self, name: String, size: u64) {
        self.shared.insert(name.clone(), size);
        self.session.queue.push_back(Pending::Create { name, size });
    }

    /// Sends the next queued request if none is in flight.
    pub(super) fn pump(&mut self, now: Instant) {
        let s = &mut self.session;
        if s.link != Link::Up || s.in_flight.is_some() {
            return;
        }
        let Some(what) = s.queue.pop_front() else {
            return;
        };
        let mut out = Vec::new();
        match &what {
            Pending::Join => Request::Join { addr: &s.join_text }.encode(&mut out),
            Pending::Create { name, size } => {
                Request::CreateFile { name, size: *size }.encode(&mut out)
            }
            Pending::Delete { name } => Request::DeleteFile { name }.encode(&mut out),
            Pending::Search { pattern, .. } => Request::Search { pattern }.encode(&mut out),
            Pending::Leave => Request::Leave.encode(&mut out),
        }
        s.in_flight = Some(InFlight { what, since: now });
        let conn = s.conn;
        self.send(conn, out);
    }

    pub(super) fn on_reply_line(&mut self, now: Instant, line: &str) {
        let Ok(reply) = Reply::parse(line) else {
            return;
        };
        let Some(f) = self.session.in_flight.as_mut() else {
            return;
        };
        match (&mut f.what, reply) {
            (Pending::Join, Reply::ConfirmJoin) => {
                self.session.in_flight = None;
                self.events.push_back(ClientEvent::Joined {
                    server: self.config.server,
                });
            }
            (Pending::Create { name, size }, Reply::ConfirmCreateFile { name: n }) if n == name => {
                let (name, size) = (std::mem::take(name), *size);
                self.session.in_flight = None;
                self.events.push_back(ClientEvent::Shared { name, size });
            }
            (Pending::Delete { name }, Reply::ConfirmDeleteFile { name: n }) if n == name => {
                let name = std::mem::take(name);
                self.session.in_flight = None;
                self.events.push_back(ClientEvent::Unshared { name });
            }
            (Pending::Search { hits, answered, .. }, Reply::File { name, peer, size }) => {
                hits.push(SearchHit {
                    name: name.to_owned(),
                    peer: peer.to_owned(),
                    size,
                });
                *answered = true;
                f.since = now;
            }
            (Pending::Search { answered, .. }, Reply::NoResult) => {
                *answered = true;
                f.since = now;
            }
            (Pending::Search { .. }, Reply::EndSearch) => self.complete_search(),
            (Pending::Leave, Reply::ConfirmLeave) => {
                self.session.in_flight = None;
                self.finish_leave();
            }
            // A reply that does not answer what we asked: ignore it.
            _ => {}
        }
    }

    pub(super) fn complete_search(&mut self) {
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
            self.begin_transfer(id, &hits);
            return;
        }
        self.last_hits.clone_from(&hits);
        self.events
            .push_back(ClientEvent::SearchDone { pattern, hits });
    }

    pub(super) fn finish_leave(&mut self) {
        if self.exit.is_some() {
            return;
        }
        self.exit = Some(0);
        self.close_all();
        self.events.push_back(ClientEvent::Left);
    }

    pub(super) fn lose_server(&mut self, reason: String) {
        if self.exit.is_some() {
            return;
        }
        self.exit = Some(1);
        self.close_all();
        self.events.push_back(ClientEvent::ServerLost { reason });
    }

    /// Closes every connection and keeps the partial files of unfinished downloads.
    pub(super) fn close_all(&mut self) {
        for (conn, _) in std::mem::take(&mut self.roles) {
            self.commands.push_back(Command::Close { conn });
        }
        let ids: Vec<_> = self.downloads.keys().copied().collect();
        for id in ids {
            self.fail_download(id, "the client is stopping".into());
        }
    }
}
