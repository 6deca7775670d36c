//! The drain contract on the simulation's side: everything a node asks for is carried out
//! at once, against the simulated links and in-memory folders.

use std::path::Path;

use napshare_core::client::{Command, DownloadId, FileError};
use napshare_core::hash::piece_span;
use napshare_core::wire::ByteRange;
use napshare_core::{ConnId, Transmit};

use super::{file_in, pieces_of, Dial, Host, Sim};

impl Sim {
    /// Carries out everything the server asked for.
    pub(super) fn drain_server(&mut self) {
        loop {
            if let Some(t) = self.server.poll_transmit() {
                self.write(Host::Server, t);
            } else if let Some(conn) = self.server.poll_close() {
                // The server's replies are already queued ahead of the close.
                self.close_end(Host::Server, conn);
                self.server.handle_closed(self.now, conn);
            } else if let Some(e) = self.server.poll_event() {
                self.server_events.push(e);
            } else {
                return;
            }
        }
    }

    /// Carries out everything client `i` asked for. Transmits go first, so bytes handed out
    /// before a `Close` are queued before the close. A command may feed a result back into
    /// the client (a stat, a commit); the loop drains what that produces too.
    pub(super) fn drain_client(&mut self, i: usize) {
        loop {
            let client = &mut self.nodes[i].client;
            if let Some(t) = client.poll_transmit() {
                self.write(Host::Client(i), t);
            } else if let Some(cmd) = client.poll_command() {
                self.run_command(i, cmd);
            } else if let Some(e) = client.poll_event() {
                self.nodes[i].events.push(e);
            } else {
                break;
            }
        }
        if self.nodes[i].client.exit_status().is_some() && !self.nodes[i].dead {
            self.exit(i);
        }
    }

    /// Client `i`'s process ends: its file server stops and its sockets close.
    fn exit(&mut self, i: usize) {
        self.nodes[i].dead = true;
        self.dials.retain(|d| d.from != i);
        let mine: Vec<ConnId> = self
            .ends
            .keys()
            .filter(|(host, _)| *host == Host::Client(i))
            .map(|(_, conn)| *conn)
            .collect();
        for conn in mine {
            self.close_end(Host::Client(i), conn);
        }
    }

    fn run_command(&mut self, i: usize, cmd: Command) {
        match cmd {
            Command::Connect { conn, addr } => self.dials.push_back(Dial {
                from: i,
                conn,
                addr,
            }),
            Command::Close { conn } => {
                self.dials.retain(|d| (d.from, d.conn) != (i, conn));
                self.close_end(Host::Client(i), conn);
            }
            Command::SendFile {
                conn,
                path,
                range,
                close,
            } => self.send_file(i, conn, &path, range, close),
            Command::Stat { name, path, .. } => {
                let node = &mut self.nodes[i];
                let pieces = file_in(&node.shared_dir, &path)
                    .and_then(|n| node.fs.shared.get(&n))
                    .map(|data| pieces_of(data))
                    .ok_or(FileError::NotFound);
                node.client.handle_stat(self.now, &name, pieces);
            }
            Command::OpenPart { download, path } => {
                let result = self.open_part(i, download, &path);
                self.nodes[i]
                    .client
                    .handle_part_opened(self.now, download, result);
            }
            Command::CheckPart {
                download,
                pieces,
                len,
            } => {
                let node = &mut self.nodes[i];
                let part = node.fs.parts.get(&download);
                let data = part.and_then(|p| node.fs.downloads.get(p));
                let data = data.map_or(&[][..], |d| &d[..d.len().min(len as usize)]);
                let good: Vec<bool> = (0..pieces.pieces().len() as u64)
                    .map(|k| {
                        let (start, end) = piece_span(k, pieces.size());
                        let piece = data.get(start as usize..end as usize);
                        piece.is_some_and(|p| pieces.verify(k, p))
                    })
                    .collect();
                node.client.handle_part_checked(self.now, download, &good);
            }
            Command::WritePart {
                download,
                offset,
                data,
            } => {
                let result = self.write_part(i, download, offset, &data);
                self.report_io(i, download, result);
            }
            Command::CommitPart {
                download,
                dest,
                len,
            } => {
                let result = self.commit_part(i, download, &dest, len);
                self.nodes[i]
                    .client
                    .handle_committed(self.now, download, result);
            }
            Command::DropPart { download, remove } => {
                let fs = &mut self.nodes[i].fs;
                if let Some(part) = fs.parts.remove(&download) {
                    if remove {
                        fs.downloads.remove(&part);
                    }
                }
            }
        }
    }

    // ---- file commands ----

    /// Sends a range of a shared file. With `close`, the range is clamped and the
    /// connection closed after it: the classic end of an upload, where a file that vanished
    /// is sent as nothing. Without, the whole range must be there (else the connection is
    /// closed) and the client hears `handle_sent`.
    fn send_file(&mut self, i: usize, conn: ConnId, path: &Path, range: ByteRange, close: bool) {
        let node = &self.nodes[i];
        let data = file_in(&node.shared_dir, path).and_then(|n| node.fs.shared.get(&n));
        let slice = data.and_then(|d| {
            let len = d.len() as u64;
            let (start, stop) = range.clamp(len)?;
            let whole = range.end.is_none_or(|end| end < len);
            // Both ends are within the file's length, which is a usize.
            (close || whole).then(|| d[start as usize..stop as usize].to_vec())
        });
        let corrupt = node.corrupt_uploads;
        let sent = slice.is_some();
        if let Some(mut data) = slice.filter(|s| !s.is_empty()) {
            if corrupt {
                data[0] ^= 0xff;
            }
            self.write(Host::Client(i), Transmit { conn, data });
        }
        if close || !sent {
            self.close_end(Host::Client(i), conn);
            self.nodes[i].client.handle_closed(self.now, conn);
        } else {
            self.nodes[i].client.handle_sent(self.now, conn);
        }
    }

    /// Opens (or creates) a partial file, keeping what it holds; returns its length.
    fn open_part(&mut self, i: usize, download: DownloadId, path: &Path) -> Result<u64, String> {
        let node = &mut self.nodes[i];
        if node.fail_part_writes {
            return Err("no space left on device".into());
        }
        let name = file_in(&node.downloads_dir, path).ok_or("not in the downloads folder")?;
        let len = node.fs.downloads.entry(name.clone()).or_default().len();
        node.fs.parts.insert(download, name);
        Ok(len as u64)
    }

    fn write_part(
        &mut self,
        i: usize,
        download: DownloadId,
        offset: u64,
        data: &[u8],
    ) -> Result<(), String> {
        let node = &mut self.nodes[i];
        if node.fail_part_writes {
            return Err("no space left on device".into());
        }
        let part = node.fs.parts.get(&download).ok_or("no open partial file")?;
        let file = node.fs.downloads.entry(part.clone()).or_default();
        let start = usize::try_from(offset).map_err(|_| "offset too large")?;
        let stop = start + data.len();
        if file.len() < stop {
            file.resize(stop, 0);
        }
        file[start..stop].copy_from_slice(data);
        Ok(())
    }

    fn commit_part(
        &mut self,
        i: usize,
        download: DownloadId,
        dest: &Path,
        len: u64,
    ) -> Result<(), String> {
        let node = &mut self.nodes[i];
        let part = node
            .fs
            .parts
            .remove(&download)
            .ok_or("no open partial file")?;
        let dest = file_in(&node.downloads_dir, dest).ok_or("not in the downloads folder")?;
        let mut data = node
            .fs
            .downloads
            .remove(&part)
            .ok_or("the partial file is gone")?;
        data.resize(len as usize, 0);
        node.fs.downloads.insert(dest, data);
        Ok(())
    }

    fn report_io(&mut self, i: usize, download: DownloadId, result: Result<(), String>) {
        if let Err(reason) = result {
            self.nodes[i]
                .client
                .handle_download_io(self.now, download, &reason);
        }
    }
}
