//! Downloads: fetch a file into a partial file (`NAME.part`), check it, then keep it.
//!
//! Two ways to fetch, chosen from what the search results say:
//!
//! - **pieces** (`swarm`), when napshare peers list the file with a content hash: the file is
//!   fetched one [`PIECE`] at a time with `XGET`, from up to
//!   [`MAX_SOURCES`](swarm::MAX_SOURCES) peers at once; every piece is checked against the
//!   piece hashes (themselves checked against the file's hash) before it is written, so a
//!   corrupt piece is fetched again from another peer and a peer that goes away leaves its
//!   pieces to the others. A partial file left by an earlier try is re-checked piece by
//!   piece and only what is missing or wrong is fetched.
//! - **classic** (`classic`), from peers that only speak `GET name start`: the bytes come in
//!   order until the peer closes, and only the length the server listed tells a whole file
//!   from a cut one. A cut transfer resumes from where it stopped, from the next peer that
//!   lists the same name and size.
//!
//! `plan` picks the way and the peers; this module holds what both share: the download's
//! lifecycle from open to commit or failure, and its progress. Either way the final name
//! only ever holds a complete file: the partial file is flushed and renamed when (and only
//! when) it is whole.

mod classic;
mod plan;
mod swarm;

use std::time::Instant;

use super::{Client, ClientEvent, Command, DownloadFailure, DownloadId, PeerProblem};
use crate::hash::PIECE;
use crate::wire::PeerAddr;
use crate::ConnId;
use classic::Classic;
use plan::Plan;
use swarm::Swarm;

#[derive(Debug)]
pub(super) struct Download {
    name: String,
    /// The size the server lists, when known.
    size: Option<u64>,
    started: Instant,
    state: State,
    /// Bytes known good so far, for progress reports.
    done: u64,
    /// `done` when progress was last reported.
    reported: u64,
}

impl Download {
    /// Its peers are picked: it is past the search that finds them.
    pub(super) fn planned(&self) -> bool {
        !matches!(self.state, State::Lookup { .. })
    }
}

#[derive(Debug)]
enum State {
    /// Waiting for the search that says who has the file.
    Lookup {
        peer: Option<PeerAddr>,
        /// For `DOWNLOAD N` taken as a name (N is past the latest search's results): how
        /// many results that search listed, for the message if no file is named so.
        listed: Option<usize>,
    },
    /// Waiting for the partial file to open.
    Opening(Plan),
    Classic(Classic),
    Pieces(Swarm),
    /// Waiting for the partial file to be flushed and renamed.
    Committing,
}

impl Client {
    fn new_download(
        &mut self,
        now: Instant,
        name: String,
        size: Option<u64>,
        state: State,
    ) -> DownloadId {
        let id = DownloadId(self.next_download);
        self.next_download += 1;
        let download = Download {
            name,
            size,
            started: now,
            state,
            done: 0,
            reported: 0,
        };
        self.downloads.insert(id, download);
        id
    }

    /// The partial file is open and holds `existing` bytes from an earlier try.
    pub(super) fn part_opened(&mut self, id: DownloadId, existing: u64) {
        let Some(d) = self.downloads.get_mut(&id) else {
            return;
        };
        let State::Opening(plan) = std::mem::replace(&mut d.state, State::Committing) else {
            return;
        };
        match plan {
            Plan::Classic(peers) => self.classic_start(id, peers, existing),
            Plan::Pieces { hash, peers } => self.swarm_start(id, hash, peers, existing),
        }
    }

    /// Where a download is written until it is complete.
    pub fn part_path(&self, name: &str) -> std::path::PathBuf {
        self.config.downloads_dir.join(format!("{name}.part"))
    }

    /// A download connection is up.
    pub(super) fn download_connected(&mut self, id: DownloadId, conn: ConnId) {
        let Some(d) = self.downloads.get(&id) else {
            return;
        };
        match d.state {
            State::Classic(_) => self.classic_connected(id, conn),
            State::Pieces(_) => self.swarm_connected(id, conn),
            _ => {}
        }
    }

    /// Bytes from a peer we download from.
    pub(super) fn download_bytes(&mut self, id: DownloadId, conn: ConnId, data: &[u8]) {
        let Some(d) = self.downloads.get(&id) else {
            return;
        };
        match d.state {
            State::Classic(_) => self.classic_bytes(id, conn, data),
            State::Pieces(_) => self.swarm_bytes(id, conn, data),
            _ => {}
        }
    }

    /// A download connection closed or could not be made.
    pub(super) fn download_closed(
        &mut self,
        id: DownloadId,
        conn: ConnId,
        why: Option<PeerProblem>,
    ) {
        let Some(d) = self.downloads.get(&id) else {
            return;
        };
        match d.state {
            State::Classic(_) => self.classic_closed(id, conn, why),
            State::Pieces(_) => self.swarm_closed(id, conn, why),
            _ => {}
        }
    }

    /// The partial file is flushed and renamed, or that failed.
    pub(super) fn download_committed(
        &mut self,
        now: Instant,
        id: DownloadId,
        result: Result<(), String>,
    ) {
        let Some(d) = self.downloads.remove(&id) else {
            return;
        };
        let status = match result {
            Ok(()) => super::exit::OK,
            Err(_) => super::exit::FAILED,
        };
        self.events.push_back(match result {
            Ok(()) => ClientEvent::DownloadDone {
                path: self.config.downloads_dir.join(&d.name),
                name: d.name,
                bytes: d.done,
                elapsed: now.saturating_duration_since(d.started),
            },
            Err(reason) => ClientEvent::DownloadFailed {
                name: d.name,
                reason: DownloadFailure::Save(reason),
            },
        });
        self.download_ended(id, status);
    }

    /// Gives up a download, closing its connections and keeping what it has in the partial
    /// file (removing it only when empty).
    pub(super) fn fail_download(&mut self, id: DownloadId, reason: DownloadFailure) {
        let Some(d) = self.downloads.remove(&id) else {
            return;
        };
        let conns: Vec<ConnId> = match &d.state {
            State::Classic(c) => c.conn.iter().map(|(k, _)| *k).collect(),
            State::Pieces(s) => s.fetchers.keys().copied().collect(),
            _ => Vec::new(),
        };
        for conn in conns {
            self.drop_conn(conn);
        }
        if !matches!(d.state, State::Lookup { .. }) {
            self.commands.push_back(Command::DropPart {
                download: id,
                remove: d.done == 0,
            });
        }
        self.events.push_back(ClientEvent::DownloadFailed {
            name: d.name,
            reason,
        });
        // Given up before any peer was picked: no peer lists it.
        let status = match d.state {
            State::Lookup { .. } => super::exit::NOT_FOUND,
            _ => super::exit::FAILED,
        };
        self.download_ended(id, status);
    }

    fn commit(&mut self, id: DownloadId) {
        let Some(d) = self.downloads.get_mut(&id) else {
            return;
        };
        let conns: Vec<ConnId> = match &d.state {
            State::Pieces(s) => s.fetchers.keys().copied().collect(),
            _ => Vec::new(),
        };
        let len = match &d.state {
            State::Classic(c) => c.len,
            State::Pieces(s) => s.size,
            _ => d.done,
        };
        d.done = len;
        d.state = State::Committing;
        let dest = self.config.downloads_dir.join(&d.name);
        for conn in conns {
            self.drop_conn(conn);
        }
        self.commands.push_back(Command::CommitPart {
            download: id,
            dest,
            len,
        });
    }

    fn report_progress(&mut self, id: DownloadId) {
        let Some(d) = self.downloads.get_mut(&id) else {
            return;
        };
        // At most one report per 1% of the file, or per piece when the size is unknown.
        let step = d.size.map_or(PIECE, |s| (s / 100).max(1));
        if d.done >= d.reported + step {
            d.reported = d.done;
            self.events.push_back(ClientEvent::DownloadProgress {
                name: d.name.clone(),
                done: d.done,
                size: d.size,
            });
        }
    }

    fn drop_conn(&mut self, conn: ConnId) {
        if self.roles.remove(&conn).is_some() {
            self.commands.push_back(Command::Close { conn });
        }
    }
}
