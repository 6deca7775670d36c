//! Downloads: fetch a file from a peer into a partial file, check it, then keep it.

use std::path::PathBuf;
use std::time::Instant;

use super::session::{Link, Pending};
use super::{Client, ClientEvent, Command, DownloadId, Role, SearchHit};
use crate::wire::PeerAddr;
use crate::ConnId;

#[derive(Debug)]
pub(super) struct Download {
    pub(super) conn: ConnId,
    pub(super) name: String,
    pub(super) peer: PeerAddr,
    pub(super) expected: Option<u64>,
    pub(super) received: u64,
    pub(super) started: Instant,
}

impl Client {
    pub(super) fn start_download(&mut self, now: Instant, peer: PeerAddr, name: String) {
        if self.downloads.values().any(|d| d.name == name) {
            self.error(format!("{name} is already downloading"));
            return;
        }
        let id = DownloadId(self.next_download);
        self.next_download += 1;
        let conn = self.new_conn();
        self.downloads.insert(
            id,
            Download {
                conn,
                name: name.clone(),
                peer,
                expected: None,
                received: 0,
                started: now,
            },
        );
        let known = self.last_hits.iter().any(|h| h.name == name);
        if known || self.session.link != Link::Up {
            let hits = std::mem::take(&mut self.last_hits);
            self.begin_transfer(id, &hits);
            self.last_hits = hits;
        } else {
            // Classic transfers end with a close, so only the size the server lists tells a
            // whole file from a cut one: ask for it first.
            self.session.queue.push_back(Pending::Search {
                pattern: name,
                hits: Vec::new(),
                answered: false,
                lookup: Some(id),
            });
        }
    }

    /// Opens the partial file and connects to the peer, expecting the size `hits` list
    /// for this file at this peer.
    pub(super) fn begin_transfer(&mut self, id: DownloadId, hits: &[SearchHit]) {
        let Some(d) = self.downloads.get_mut(&id) else {
            return;
        };
        d.expected = hits
            .iter()
            .find(|h| h.name == d.name && h.peer.parse::<PeerAddr>() == Ok(d.peer))
            .map(|h| h.size);
        let (conn, name, peer, size) = (d.conn, d.name.clone(), d.peer, d.expected);
        self.roles.insert(conn, Role::Download(id));
        self.commands.push_back(Command::CreatePart {
            download: id,
            path: self.part_path(&name),
        });
        self.commands
            .push_back(Command::Connect { conn, addr: peer.0 });
        self.events
            .push_back(ClientEvent::DownloadStarted { name, peer, size });
    }

    /// Where a download is written until it is complete.
    pub fn part_path(&self, name: &str) -> PathBuf {
        self.config.downloads_dir.join(format!("{name}.part"))
    }

    pub(super) fn on_download_bytes(&mut self, id: DownloadId, data: &[u8]) {
        let Some(d) = self.downloads.get_mut(&id) else {
            return;
        };
        let offset = d.received;
        d.received += data.len() as u64;
        if d.expected.is_some_and(|e| d.received > e) {
            let (conn, expected) = (d.conn, d.expected.unwrap_or_default());
            self.roles.remove(&conn);
            self.commands.push_back(Command::Close { conn });
            self.fail_download(
                id,
                format!("the peer sent more than the {expected} bytes advertised"),
            );
            return;
        }
        self.commands.push_back(Command::WritePart {
            download: id,
            offset,
            data: data.to_vec(),
        });
    }

    /// The peer closed: the classic end of a transfer.
    pub(super) fn end_download(&mut self, id: DownloadId) {
        let Some(d) = self.downloads.get_mut(&id) else {
            return;
        };
        match d.expected {
            _ if d.received == 0 && d.expected != Some(0) => {
                let reason = format!("{} sent nothing (it does not share {})", d.peer, d.name);
                self.fail_download(id, reason);
            }
            Some(e) if d.received != e => {
                let reason = format!("the peer stopped after {} of {e} bytes", d.received);
                self.fail_download(id, reason);
            }
            _ => {
                let dest = self.config.downloads_dir.join(&d.name);
                self.commands
                    .push_back(Command::CommitPart { download: id, dest });
            }
        }
    }

    pub(super) fn fail_download(&mut self, id: DownloadId, reason: String) {
        let Some(d) = self.downloads.remove(&id) else {
            return;
        };
        self.commands.push_back(Command::DropPart {
            download: id,
            remove: d.received == 0,
        });
        self.events.push_back(ClientEvent::DownloadFailed {
            name: d.name,
            reason,
        });
    }
}
