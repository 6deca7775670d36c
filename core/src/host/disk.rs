//! The file-system side of a client: scanning the shared folder, serving file ranges and
//! writing downloads, carried out for [`Client`]'s commands.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::client::{Client, Command, DownloadId, SharedFile};
use crate::names::check_file_name;
use crate::wire::{ByteRange, CLASSIC_SERVER_PORT};

/// The regular files directly in `dir` (not symlinks, not subfolders), sorted by name.
/// Creates `dir` if it does not exist. Names that cannot be shared (not UTF-8, control
/// characters) are returned apart so the user can be told.
pub fn scan_shared(dir: &Path) -> io::Result<(Vec<SharedFile>, Vec<PathBuf>)> {
    fs::create_dir_all(dir)?;
    let mut files = Vec::new();
    let mut skipped = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if !entry.file_type()?.is_file() {
            continue;
        }
        match entry.file_name().into_string() {
            Ok(name) if check_file_name(&name).is_ok() => files.push(SharedFile {
                name,
                size: entry.metadata()?.len(),
            }),
            _ => skipped.push(entry.path()),
        }
    }
    files.sort_by(|a, b| a.name.cmp(&b.name));
    Ok((files, skipped))
}

/// Resolves `HOST[:PORT]` (port 1234 when absent), preferring an IPv4 address.
pub fn resolve_server(text: &str) -> io::Result<SocketAddr> {
    if let Ok(sa) = text.parse::<SocketAddr>() {
        return Ok(sa);
    }
    if let Ok(ip) = text.parse::<std::net::IpAddr>() {
        return Ok(SocketAddr::new(ip, CLASSIC_SERVER_PORT));
    }
    let with_port = match text.rsplit_once(':') {
        Some((_, port)) if port.parse::<u16>().is_ok() => text.to_owned(),
        _ => format!("{text}:{CLASSIC_SERVER_PORT}"),
    };
    let addrs: Vec<SocketAddr> = with_port.to_socket_addrs()?.collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address for that host"))
}

/// A file range being sent to a peer, read in chunks as the socket takes them.
#[derive(Debug)]
pub struct Upload {
    file: File,
    remaining: u64,
    buf: Vec<u8>,
    /// Bytes of `buf` already written to the socket.
    sent: usize,
}

/// Size of one read from a file being served.
const CHUNK: usize = 64 * 1024;

impl Upload {
    /// Opens `range` of the regular file at `path`. A range that starts past the end gives
    /// an empty upload (the peer sees a close with no bytes, the classic error signal).
    pub fn open(path: &Path, range: ByteRange) -> io::Result<Self> {
        if !fs::symlink_metadata(path)?.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a regular file",
            ));
        }
        let mut file = File::open(path)?;
        let len = file.metadata()?.len();
        let (start, stop) = range.clamp(len).unwrap_or((len, len));
        file.seek(SeekFrom::Start(start))?;
        Ok(Self {
            file,
            remaining: stop - start,
            buf: Vec::new(),
            sent: 0,
        })
    }

    /// The next bytes to write, or an empty slice when everything was sent.
    pub fn chunk(&mut self) -> io::Result<&[u8]> {
        if self.sent == self.buf.len() && self.remaining > 0 {
            let want = CHUNK.min(usize::try_from(self.remaining).unwrap_or(CHUNK));
            self.buf.resize(want, 0);
            let n = self.file.read(&mut self.buf)?;
            if n == 0 {
                // The file shrank since it was opened: send what there was.
                self.remaining = 0;
            }
            self.buf.truncate(n);
            self.remaining -= n as u64;
            self.sent = 0;
        }
        Ok(&self.buf[self.sent..])
    }

    /// Records that `n` bytes of the last chunk were written.
    pub fn consume(&mut self, n: usize) {
        self.sent += n;
    }
}

/// Carries out a client's file commands on the real file system and reports back.
#[derive(Debug, Default)]
pub struct Disk {
    parts: BTreeMap<DownloadId, (File, PathBuf)>,
}

impl Disk {
    pub fn new() -> Self {
        Self::default()
    }

    /// Performs `cmd` if it is a file command, reporting the result to `client`; gives
    /// back the socket commands for the runtime.
    pub fn perform(&mut self, now: Instant, cmd: Command, client: &mut Client) -> Option<Command> {
        match cmd {
            Command::Stat { name, path } => {
                let result = match fs::symlink_metadata(&path) {
                    Ok(m) if m.is_file() => Ok(m.len()),
                    Ok(_) => Err("not a regular file in the shared folder".to_owned()),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        Err("no such file in the shared folder".to_owned())
                    }
                    Err(e) => Err(e.to_string()),
                };
                client.handle_stat(now, &name, result);
            }
            Command::CreatePart { download, path } => {
                let created = path
                    .parent()
                    .map_or(Ok(()), fs::create_dir_all)
                    .and_then(|()| {
                        OpenOptions::new()
                            .write(true)
                            .create(true)
                            .truncate(true)
                            .open(&path)
                    });
                match created {
                    Ok(f) => {
                        self.parts.insert(download, (f, path));
                    }
                    Err(e) => client.handle_download_io(now, download, &e.to_string()),
                }
            }
            Command::WritePart {
                download,
                offset,
                data,
            } => {
                let written = match self.parts.get_mut(&download) {
                    Some((f, _)) => f
                        .seek(SeekFrom::Start(offset))
                        .and_then(|_| f.write_all(&data)),
                    None => Ok(()), // creating it failed and was reported
                };
                if let Err(e) = written {
                    client.handle_download_io(now, download, &e.to_string());
                }
            }
            Command::CommitPart { download, dest } => {
                let result = match self.parts.remove(&download) {
                    Some((f, part)) => f
                        .sync_all()
                        .and_then(|()| fs::rename(&part, &dest))
                        .map_err(|e| e.to_string()),
                    None => Err("the partial file is gone".to_owned()),
                };
                client.handle_committed(now, download, result);
            }
            Command::DropPart { download, remove } => {
                if let Some((_, part)) = self.parts.remove(&download) {
                    if remove {
                        let _ = fs::remove_file(part);
                    }
                }
            }
            net @ (Command::Connect { .. } | Command::Close { .. } | Command::SendFile { .. }) => {
                return Some(net)
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_sends_exactly_the_range() {
        let dir = std::env::temp_dir().join(format!("napshare-upload-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f");
        fs::write(&path, b"0123456789").unwrap();
        let collect = |range| {
            let mut up = Upload::open(&path, range).unwrap();
            let mut out = Vec::new();
            loop {
                let c = up.chunk().unwrap().to_vec();
                if c.is_empty() {
                    return out;
                }
                up.consume(c.len());
                out.extend(c);
            }
        };
        assert_eq!(
            collect(ByteRange {
                start: 2,
                end: Some(4)
            }),
            b"234"
        );
        assert_eq!(
            collect(ByteRange {
                start: 7,
                end: None
            }),
            b"789"
        );
        assert_eq!(
            collect(ByteRange {
                start: 11,
                end: None
            }),
            b""
        );
        fs::remove_dir_all(dir).unwrap();
    }
}
