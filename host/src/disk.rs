//! The file-system side of a client: scanning the shared folder, serving file ranges and
//! writing downloads, carried out for the client's commands.

use std::collections::{BTreeMap, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use napshare_core::client::{Command, DownloadId, FileError, SharedFile};
use napshare_core::hash::{piece_span, FileHasher, PieceHashes, PIECE};
use napshare_core::names::check_file_name;
use napshare_core::wire::{ByteRange, CLASSIC_SERVER_PORT};

use crate::{HashCache, Input};

/// The regular files directly in `dir` (not symlinks, not subfolders), sorted by name and
/// hashed, through `cache`: a file unchanged since a run recorded its hashes is not read
/// again (see `hash_cache`), and what this scan found is recorded for the next. Creates
/// `dir` if it does not exist. Names that cannot be shared (not UTF-8, control characters)
/// and files that cannot be read are returned apart so the user can be told.
///
/// `progress` hears the bytes gone through so far and the folder's total, as reading goes
/// on (a first scan of a big folder reads for minutes).
pub fn scan_shared(
    dir: &Path,
    cache: &mut HashCache,
    mut progress: impl FnMut(u64, u64),
) -> io::Result<(Vec<SharedFile>, Vec<PathBuf>)> {
    fs::create_dir_all(dir)?;
    let mut found = Vec::new();
    let mut skipped = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if !entry.file_type()?.is_file() {
            continue;
        }
        let size = entry.metadata().map_or(0, |m| m.len());
        match entry.file_name().into_string() {
            Ok(name) if check_file_name(&name).is_ok() => found.push((name, size)),
            _ => skipped.push(entry.path()),
        }
    }
    let total = found.iter().map(|(_, size)| size).sum();
    let mut done = 0;
    let mut files = Vec::new();
    for (name, size) in found {
        let path = dir.join(&name);
        let start = done;
        let read = cache.hash(&name, &path, &mut |n| {
            done += n;
            progress(done, total);
        });
        // The file may have grown or shrunk since it was listed.
        done = start + size;
        progress(done, total);
        match read {
            Ok(pieces) => files.push(SharedFile { name, pieces }),
            Err(_) => skipped.push(path),
        }
    }
    files.sort_by(|a, b| a.name.cmp(&b.name));
    tracing::debug!(
        files = files.len(),
        hashed = cache.hashed,
        reused = cache.reused,
        "shared folder scanned"
    );
    if let Err(e) = cache.save() {
        // Only the next start is slower for it.
        tracing::warn!("cannot keep the shared folder's hashes for the next run: {e}");
    }
    Ok((files, skipped))
}

/// Hashes the regular file at `path` (not following a symlink).
pub fn hash_file(path: &Path) -> io::Result<PieceHashes> {
    let mut file = open_regular(path)?;
    let size = file.metadata()?.len();
    hash_open(&mut file, size, &mut |_| {})
}

/// Hashes `file`, which is `size` bytes long, from its current position (its start);
/// `read` hears the bytes read as it goes.
pub(super) fn hash_open(
    file: &mut File,
    size: u64,
    read: &mut dyn FnMut(u64),
) -> io::Result<PieceHashes> {
    let mut hasher = FileHasher::new(size);
    let mut buf = vec![0; PIECE as usize];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        read(n as u64);
    }
    hasher
        .finish()
        .ok_or_else(|| io::Error::other("the file changed while it was hashed"))
}

/// Opens a regular file for reading, refusing a symlink at the last step of the path (even
/// one swapped in since the file was shared: `O_NOFOLLOW`) and anything that is not a
/// regular file, so nothing outside the shared folder can be read through it.
pub(super) fn open_regular(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file in the shared folder",
        ));
    }
    Ok(file)
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
    /// The next byte of the file to send, and the end of the range.
    pos: u64,
    end: u64,
    /// Bytes read from the file and not yet all written; `buf[sent..]` is still to go.
    buf: Vec<u8>,
    sent: usize,
}

/// Size of one read from a file being served.
const CHUNK: usize = 64 * 1024;

impl Upload {
    /// Opens `range` of the regular file at `path`. Unless `exact`, the range is clamped to
    /// the file and one that starts past the end gives an empty upload (the peer sees a
    /// close with no bytes, the classic error signal); with `exact` a range the file does
    /// not wholly hold is an error.
    pub fn open(path: &Path, range: ByteRange, exact: bool) -> io::Result<Self> {
        let file = open_regular(path)?;
        let len = file.metadata()?.len();
        let whole = range.end.is_none_or(|end| end < len) && range.start <= len;
        if exact && !whole {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file shrank",
            ));
        }
        let (pos, end) = range.clamp(len).unwrap_or((len, len));
        Ok(Self {
            file,
            pos,
            end,
            buf: Vec::new(),
            sent: 0,
        })
    }

    /// The next bytes to write, or an empty slice when everything was sent.
    pub fn chunk(&mut self) -> io::Result<&[u8]> {
        if self.sent == self.buf.len() && self.pos < self.end {
            let want = CHUNK.min(usize::try_from(self.end - self.pos).unwrap_or(CHUNK));
            self.buf.resize(want, 0);
            let n = self.file.read_at(&mut self.buf, self.pos)?;
            self.buf.truncate(n);
            self.sent = 0;
            self.advance(n as u64);
        }
        Ok(&self.buf[self.sent..])
    }

    /// Records that `n` bytes of the last chunk were written.
    pub fn consume(&mut self, n: usize) {
        self.sent += n;
    }

    /// Records that `n` bytes were read from the position; `0` means the file ended early
    /// (it shrank since it was opened), and ends the upload.
    fn advance(&mut self, n: u64) {
        self.pos = if n == 0 { self.end } else { self.pos + n };
    }

    /// Whether everything was sent.
    pub fn is_done(&self) -> bool {
        self.pos >= self.end && self.sent == self.buf.len()
    }
}

/// Carries out a client's file commands on the real file system and reports back.
#[derive(Debug, Default)]
pub struct Disk {
    parts: BTreeMap<DownloadId, (File, PathBuf)>,
    /// The thread that reads and hashes files for the commands that may be answered later.
    hasher: Option<mpsc::Sender<Job>>,
}

/// Work for the hashing thread.
#[derive(Debug)]
enum Job {
    /// [`Command::Stat`] with `later`.
    Look { name: String, path: PathBuf },
    /// [`Command::CheckPart`], on a handle of its own to the partial file.
    Check {
        download: DownloadId,
        file: File,
        pieces: PieceHashes,
        len: u64,
    },
}

impl Job {
    fn run(self) -> Input {
        match self {
            Self::Look { name, path } => Input::Looked {
                name,
                result: hash_file(&path).map_err(FileError::from),
            },
            Self::Check {
                download,
                file,
                pieces,
                len,
            } => Input::PartChecked {
                download,
                good: check_part(&file, &pieces, len),
            },
        }
    }
}

impl Disk {
    /// A disk that answers every look at once, on the caller's thread.
    pub fn new() -> Self {
        Self::default()
    }

    /// A disk that hands the commands that may be answered later (a [`Command::Stat`]
    /// with `later`, every [`Command::CheckPart`]) to a thread of its own, one after the
    /// other, which gives each answer to `send` as an [`Input`] (`send` returns `false`
    /// once the loop is gone, and the thread stops).
    pub fn with_hasher(send: impl Fn(Input) -> bool + Send + 'static) -> Self {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::spawn(move || {
            for job in rx {
                if !send(job.run()) {
                    return;
                }
            }
        });
        Self {
            hasher: Some(tx),
            ..Self::default()
        }
    }

    /// Does `job` on the hashing thread when there is one and `later` allows (its answer
    /// comes as an input); else, or when the thread is gone, now.
    fn run(&self, job: Job, later: bool, facts: &mut VecDeque<Input>) {
        let job = match &self.hasher {
            Some(hasher) if later => match hasher.send(job) {
                Ok(()) => return,
                Err(back) => back.0,
            },
            _ => job,
        };
        facts.push_back(job.run());
    }

    /// Performs the file command `cmd`; what it finds is a fact for the client.
    pub fn perform(&mut self, cmd: Command, facts: &mut VecDeque<Input>) {
        match cmd {
            Command::Stat { name, path, later } => {
                self.run(Job::Look { name, path }, later, facts);
            }
            Command::OpenPart { download, path } => {
                let opened = path
                    .parent()
                    .map_or(Ok(()), fs::create_dir_all)
                    .and_then(|()| open_part(&path));
                let result = match opened {
                    Ok((f, len)) => {
                        self.parts.insert(download, (f, path));
                        Ok(len)
                    }
                    Err(e) => Err(e.to_string()),
                };
                facts.push_back(Input::PartOpened { download, result });
            }
            Command::CheckPart {
                download,
                pieces,
                len,
            } => {
                // On the hashing thread, through a handle of its own (reads at offsets, so
                // the two handles' shared position does not matter). A partial file that is
                // gone, or cannot be opened twice, has no good piece.
                match self
                    .parts
                    .get(&download)
                    .and_then(|(f, _)| f.try_clone().ok())
                {
                    Some(file) => {
                        let job = Job::Check {
                            download,
                            file,
                            pieces,
                            len,
                        };
                        self.run(job, true, facts);
                    }
                    None => facts.push_back(Input::PartChecked {
                        download,
                        good: Vec::new(),
                    }),
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
                    let why = e.to_string();
                    facts.push_back(Input::Written { download, why });
                }
            }
            Command::CommitPart {
                download,
                dest,
                len,
            } => {
                let result = match self.parts.remove(&download) {
                    Some((f, part)) => commit(&f, &part, &dest, len).map_err(|e| e.to_string()),
                    None => Err("the partial file is gone".to_owned()),
                };
                facts.push_back(Input::Committed { download, result });
            }
            Command::DropPart { download, remove } => {
                if let Some((_, part)) = self.parts.remove(&download) {
                    if remove {
                        let _ = fs::remove_file(part);
                    }
                }
            }
            // Sockets are the runtime's (see `drain`).
            Command::Connect { .. } | Command::Close { .. } | Command::SendFile { .. } => {
                unreachable!("not a file command: {cmd:?}")
            }
        }
    }
}

/// Opens a partial file for writing without losing what it holds; returns its length.
fn open_part(path: &Path) -> io::Result<(File, u64)> {
    if fs::symlink_metadata(path).is_ok_and(|m| !m.is_file()) {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "something that is not a file is in the way",
        ));
    }
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    let len = f.metadata()?.len();
    Ok((f, len))
}

/// Which pieces of the first `len` bytes of `f` match `pieces`.
fn check_part(f: &File, pieces: &PieceHashes, len: u64) -> Vec<bool> {
    let mut good = Vec::new();
    let mut buf = Vec::new();
    for i in 0..pieces.pieces().len() as u64 {
        let (start, end) = piece_span(i, pieces.size());
        if end > len {
            good.push(false);
            continue;
        }
        buf.resize((end - start) as usize, 0);
        let ok = f.read_exact_at(&mut buf, start).is_ok();
        good.push(ok && pieces.verify(i, &buf));
    }
    good
}

/// Makes a finished partial file the final file: exact length, on disk, then renamed. The
/// final name may hold an older regular file (it is replaced) but nothing else.
fn commit(f: &File, part: &Path, dest: &Path, len: u64) -> io::Result<()> {
    if fs::symlink_metadata(dest).is_ok_and(|m| !m.is_file()) {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} exists and is not a regular file", dest.display()),
        ));
    }
    f.set_len(len)?;
    f.sync_all()?;
    fs::rename(part, dest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A look that may wait, and a check of a resumed download's partial file, are not
    /// done on the caller's thread (which would hold the client up for as long as a big
    /// file takes to read) but by the hashing thread, whose answers come as inputs for the
    /// loop; errors too.
    #[test]
    fn long_reads_are_answered_by_the_hashing_thread() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.bin");
        let data: Vec<u8> = (0..(2u32 << 20) + 7).map(|i| (i % 251) as u8).collect();
        fs::write(&path, &data).unwrap();
        let (tx, rx) = mpsc::channel();
        let mut disk = Disk::with_hasher(move |input| tx.send(input).is_ok());
        let mut facts = VecDeque::new();
        let answer = || {
            rx.recv_timeout(Duration::from_secs(60))
                .expect("an answer from the hashing thread")
        };
        let pieces = hash_file(&path).unwrap();
        for (name, result) in [
            ("big.bin", Ok(pieces.clone())),
            ("gone", Err(FileError::NotFound)),
        ] {
            let look = Command::Stat {
                name: name.to_owned(),
                path: dir.path().join(name),
                later: true,
            };
            disk.perform(look, &mut facts);
            let name = name.to_owned();
            assert_eq!(answer(), Input::Looked { name, result });
        }
        // A partial file with its first piece right, its second wrong, and the third not
        // there yet.
        let download = DownloadId(7);
        let part = dir.path().join("big.bin.part");
        let mut partial = data[..(2 << 20) + 3].to_vec();
        partial[(1 << 20) + 5] ^= 1;
        fs::write(&part, &partial).unwrap();
        let open = Command::OpenPart {
            download,
            path: part,
        };
        disk.perform(open, &mut facts);
        let len = partial.len() as u64;
        let check = Command::CheckPart {
            download,
            pieces,
            len,
        };
        disk.perform(check, &mut facts);
        let good = vec![true, false, false];
        assert_eq!(answer(), Input::PartChecked { download, good });
        // Only the opening, which needs no thread, was answered here.
        let opened = Input::PartOpened {
            download,
            result: Ok(len),
        };
        assert_eq!(facts, [opened]);
    }

    /// The scan reports its progress in bytes as it reads, up to the folder's total, and
    /// lists the files it could share and apart the names it could not.
    #[test]
    fn the_scan_reports_its_progress_and_what_it_left_out() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("b.bin"), vec![1u8; (3 << 20) + 1]).unwrap();
        fs::write(dir.path().join("a.txt"), b"alpha").unwrap();
        fs::write(dir.path().join("bad\nname"), b"x").unwrap();
        fs::create_dir(dir.path().join("sub")).unwrap();
        let mut cache = HashCache::at(None);
        let mut seen = Vec::new();
        let (files, skipped) = scan_shared(dir.path(), &mut cache, |done, total| {
            seen.push((done, total))
        })
        .unwrap();
        let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["a.txt", "b.bin"]);
        assert_eq!(skipped, [dir.path().join("bad\nname")]);
        let total = 5 + (3 << 20) + 1;
        assert!(seen.iter().all(|&(_, t)| t == total));
        assert!(seen.windows(2).all(|w| w[0].0 <= w[1].0), "never backwards");
        assert!(seen.len() >= 4, "reported while reading: {seen:?}");
        assert_eq!(seen.last(), Some(&(total, total)));
    }

    #[test]
    fn a_download_never_replaces_what_is_not_a_regular_file() {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path();
        fs::create_dir_all(dir.join("taken")).unwrap();
        let part = dir.join("x.part");
        let (f, _) = open_part(&part).unwrap();
        let err = commit(&f, &part, &dir.join("taken"), 0).unwrap_err();
        assert!(err.to_string().contains("not a regular file"), "{err}");
        assert!(
            dir.join("taken").is_dir() && part.exists(),
            "nothing was lost"
        );
        // A partial file's name taken by a folder is refused too.
        fs::create_dir_all(dir.join("y.part")).unwrap();
        assert!(open_part(&dir.join("y.part")).is_err());
    }

    #[test]
    fn upload_sends_exactly_the_range() {
        let temp = tempfile::tempdir().unwrap();
        let path = temp.path().join("f");
        fs::write(&path, b"0123456789").unwrap();
        let collect = |range| {
            let mut up = Upload::open(&path, range, false).unwrap();
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
    }
}
