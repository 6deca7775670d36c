//! The classic strategy: one peer at a time, `GET name start`, no hashes; a cut transfer
//! resumes after the bytes the partial file already holds.

use std::collections::VecDeque;

use super::State;
use crate::client::{Client, Command, DownloadFailure, DownloadId, PeerProblem, Role};
use crate::wire::{ByteRange, Get, PeerAddr};
use crate::ConnId;

#[derive(Debug)]
pub(super) struct Classic {
    /// Peers still to try, in order.
    peers: VecDeque<PeerAddr>,
    /// The connection of the current try, with its peer.
    pub(super) conn: Option<(ConnId, PeerAddr)>,
    /// Bytes in the partial file.
    pub(super) len: u64,
}

impl Client {
    /// The partial file is open and holds `existing` bytes from an earlier try.
    pub(super) fn classic_start(
        &mut self,
        id: DownloadId,
        peers: VecDeque<PeerAddr>,
        existing: u64,
    ) {
        let Some(d) = self.downloads.get_mut(&id) else {
            return;
        };
        // More than the whole file cannot be a start of it: begin again.
        let len = match d.size {
            Some(size) if existing > size => 0,
            _ => existing,
        };
        d.done = len;
        d.state = State::Classic(Classic {
            peers,
            conn: None,
            len,
        });
        self.classic_next(id);
    }

    /// The connection to a classic peer is up: ask for the rest of the file.
    pub(super) fn classic_connected(&mut self, id: DownloadId, conn: ConnId) {
        let Some(d) = self.downloads.get_mut(&id) else {
            return;
        };
        let State::Classic(c) = &mut d.state else {
            return;
        };
        let mut out = Vec::new();
        let start = c.len;
        Get {
            name: &d.name,
            range: ByteRange { start, end: None },
        }
        .encode(&mut out);
        self.send(conn, out);
    }

    /// Bytes from the classic peer: they go on where the partial file ends.
    pub(super) fn classic_bytes(&mut self, id: DownloadId, conn: ConnId, data: &[u8]) {
        let Some(d) = self.downloads.get_mut(&id) else {
            return;
        };
        let State::Classic(c) = &mut d.state else {
            return;
        };
        let offset = c.len;
        if d.size.is_some_and(|size| offset + data.len() as u64 > size) {
            // More than the listed size: this peer's file is not the one listed.
            c.conn = None;
            self.drop_conn(conn);
            return self.classic_next(id);
        }
        c.len += data.len() as u64;
        d.done = c.len;
        self.commands.push_back(Command::WritePart {
            download: id,
            offset,
            data: data.to_vec(),
        });
        self.report_progress(id);
    }

    /// The classic peer closed: only the listed size tells a whole file from a cut one.
    pub(super) fn classic_closed(
        &mut self,
        id: DownloadId,
        conn: ConnId,
        why: Option<PeerProblem>,
    ) {
        let Some(d) = self.downloads.get_mut(&id) else {
            return;
        };
        let State::Classic(c) = &mut d.state else {
            return;
        };
        if c.conn.is_none_or(|(k, _)| k != conn) {
            return;
        }
        let (_, peer) = c.conn.take().expect("checked just above");
        let complete = d.size.map_or(c.len > 0, |size| c.len == size);
        if complete && why.is_none() {
            return self.commit(id);
        }
        let problem = match (why, d.size) {
            (Some(why), _) => why,
            (None, Some(size)) => PeerProblem::StoppedAfter { got: c.len, size },
            (None, None) => PeerProblem::SentNothing {
                name: d.name.clone(),
            },
        };
        if c.peers.is_empty() {
            return self.fail_download(id, DownloadFailure::Peer { peer, problem });
        }
        self.classic_next(id);
    }

    /// Connects to the next classic peer, resuming where the partial file ends.
    fn classic_next(&mut self, id: DownloadId) {
        let Some(d) = self.downloads.get_mut(&id) else {
            return;
        };
        let State::Classic(c) = &mut d.state else {
            return;
        };
        if d.size == Some(c.len) && c.len > 0 {
            // An earlier try already got it all.
            return self.commit(id);
        }
        let Some(peer) = c.peers.pop_front() else {
            return self.fail_download(id, DownloadFailure::NoPeerSentAll);
        };
        let conn = ConnId(self.next_conn);
        self.next_conn += 1;
        c.conn = Some((conn, peer));
        self.roles.insert(conn, Role::Download(id));
        self.commands
            .push_back(Command::Connect { conn, addr: peer.0 });
    }
}
