//! The shared folder's hashes, kept from one run to the next: a client starts by hashing
//! every file it shares, which for a big folder means reading all of it (minutes for
//! hundreds of gigabytes). A file whose size, modification and change times, inode and
//! device are those recorded with its hashes is not read again.
//!
//! The change time (`ctime`) is set by the kernel on every write and cannot be set back by
//! a program, so a file rewritten with its old size and modification time (`cp -p`,
//! `touch -r`) still shows as changed. File times tick coarsely (a few milliseconds), so a
//! file written again within one tick of a scan that read it could keep its stamp: files
//! changed less than [`SETTLED`] before a scan are not recorded, and are read again next
//! time (as git does with "racily clean" entries). A hash that is wrong anyway would not
//! spread a bad file: downloaders check every piece against it and fail the download.
//!
//! One cache file per shared folder, in `$NAPSHARE_CACHE`, or `$XDG_CACHE_HOME/napshare`,
//! or `~/.cache/napshare` (an empty `NAPSHARE_CACHE` keeps none); it is replaced whole
//! (written aside, then renamed), holds only the files found in the last scan, and a cache
//! file that cannot be read as a whole is ignored.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use napshare_core::hash::{ContentHash, PieceHashes};

/// Names the folder the cache lives in; empty: no cache.
pub const CACHE_ENV: &str = "NAPSHARE_CACHE";

/// How long before a scan a file must have last changed for its hashes to be recorded.
const SETTLED: Duration = Duration::from_secs(2);

/// The first bytes of a cache file: its format.
const MAGIC: &[u8; 8] = b"NAPHASH1";

/// What must be unchanged for a recorded hash to stand for the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
    ino: u64,
    dev: u64,
}

impl Stamp {
    /// Whether the file last changed before `when`.
    fn before(&self, when: SystemTime) -> bool {
        let Ok(t) = when.duration_since(SystemTime::UNIX_EPOCH) else {
            return false;
        };
        let t = (t.as_secs() as i64, i64::from(t.subsec_nanos()));
        self.mtime < t && self.ctime < t
    }

    fn of(meta: &fs::Metadata) -> Self {
        Self {
            size: meta.size(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
            ino: meta.ino(),
            dev: meta.dev(),
        }
    }
}

/// The hashes of one folder's files, as last recorded and as found in this run.
#[derive(Debug)]
pub struct HashCache {
    /// The cache file; `None`: nothing is kept between runs.
    file: Option<PathBuf>,
    recorded: BTreeMap<String, (Stamp, PieceHashes)>,
    found: BTreeMap<String, (Stamp, PieceHashes)>,
    /// Files that changed after this are not recorded (see [`SETTLED`]).
    settled: SystemTime,
    /// Files whose recorded hashes stood, and files read and hashed.
    pub reused: usize,
    pub hashed: usize,
}

impl HashCache {
    /// The cache of the folder `dir` at its usual place (see the module docs).
    pub fn for_folder(dir: &Path) -> Self {
        Self::at(cache_file(dir))
    }

    /// A cache kept in `file` (`None`: in memory only); a file that is missing or cannot
    /// be read as a whole starts an empty cache.
    #[allow(clippy::disallowed_methods)] // the scan's start, outside the core's state machines
    pub fn at(file: Option<PathBuf>) -> Self {
        Self::scanned_at(file, SystemTime::now())
    }

    /// [`HashCache::at`], for a scan taking place at `now`.
    fn scanned_at(file: Option<PathBuf>, now: SystemTime) -> Self {
        let recorded = file
            .as_deref()
            .and_then(|f| fs::read(f).ok())
            .and_then(|bytes| decode(&bytes))
            .unwrap_or_default();
        Self {
            file,
            recorded,
            found: BTreeMap::new(),
            settled: now.checked_sub(SETTLED).unwrap_or(SystemTime::UNIX_EPOCH),
            reused: 0,
            hashed: 0,
        }
    }

    /// The hashes of the regular file `name` at `path`: the recorded ones when the file is
    /// unchanged since, else read and hashed now (`read` hears the bytes read).
    pub fn hash(
        &mut self,
        name: &str,
        path: &Path,
        read: &mut dyn FnMut(u64),
    ) -> io::Result<PieceHashes> {
        let mut file = crate::disk::open_regular(path)?;
        let stamp = Stamp::of(&file.metadata()?);
        let pieces = match self.recorded.get(name) {
            Some((recorded, pieces)) if *recorded == stamp => {
                self.reused += 1;
                pieces.clone()
            }
            _ => {
                self.hashed += 1;
                // Stamped before reading: a file written while it is read is read again
                // next time.
                crate::disk::hash_open(&mut file, stamp.size, read)?
            }
        };
        if stamp.before(self.settled) {
            self.found.insert(name.to_owned(), (stamp, pieces.clone()));
        }
        Ok(pieces)
    }

    /// Records what this run found, replacing the cache file (nothing when there is none).
    pub fn save(&self) -> io::Result<()> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        if let Some(dir) = file.parent() {
            fs::create_dir_all(dir)?;
        }
        let aside = file.with_extension(format!("tmp{}", std::process::id()));
        let mut out = io::BufWriter::new(File::create(&aside)?);
        out.write_all(&encode(&self.found))?;
        out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        fs::rename(&aside, file).inspect_err(|_| {
            let _ = fs::remove_file(&aside);
        })
    }
}

/// Where the cache of folder `dir` is kept: see the module docs.
fn cache_file(dir: &Path) -> Option<PathBuf> {
    let base = match std::env::var_os(CACHE_ENV) {
        Some(path) if path.is_empty() => return None,
        Some(path) => PathBuf::from(path),
        None => {
            let absolute = |var| {
                std::env::var_os(var)
                    .map(PathBuf::from)
                    .filter(|p| p.is_absolute())
            };
            absolute("XDG_CACHE_HOME")
                .or_else(|| absolute("HOME").map(|home| home.join(".cache")))?
                .join("napshare")
        }
    };
    // A folder not made yet (the scan makes it) has no canonical path: its absolute one.
    let dir = fs::canonicalize(dir)
        .or_else(|_| std::path::absolute(dir))
        .ok()?;
    let key = blake3::hash(dir.as_os_str().as_encoded_bytes()).to_hex();
    Some(base.join(format!("hashes-{}", &key[..16])))
}

/// The format: [`MAGIC`], then for each file its name (length as `u32`, bytes), its stamp
/// (size, modification and change time as seconds and nanoseconds, inode, device: `u64`s
/// and `i64`s), its content hash and its piece hashes (count as `u64`, 32 bytes each); all
/// numbers little-endian.
fn encode(files: &BTreeMap<String, (Stamp, PieceHashes)>) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    for (name, (s, pieces)) in files {
        out.extend_from_slice(&(name.len() as u32).to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        for n in [s.size, s.ino, s.dev] {
            out.extend_from_slice(&n.to_le_bytes());
        }
        for n in [s.mtime.0, s.mtime.1, s.ctime.0, s.ctime.1] {
            out.extend_from_slice(&n.to_le_bytes());
        }
        out.extend_from_slice(&pieces.root().0);
        out.extend_from_slice(&(pieces.pieces().len() as u64).to_le_bytes());
        for p in pieces.pieces() {
            out.extend_from_slice(p);
        }
    }
    out
}

/// Reads what [`encode`] wrote; `None` if anything does not fit (a truncated file, a piece
/// list that does not give its hash, another format).
fn decode(bytes: &[u8]) -> Option<BTreeMap<String, (Stamp, PieceHashes)>> {
    let mut r = bytes.strip_prefix(MAGIC)?;
    let mut files = BTreeMap::new();
    while !r.is_empty() {
        let len = u32::from_le_bytes(take(&mut r)?) as usize;
        let name = std::str::from_utf8(r.get(..len)?).ok()?.to_owned();
        r = &r[len..];
        let [size, ino, dev] = [(); 3].map(|()| take(&mut r).map(u64::from_le_bytes));
        let [ms, mn, cs, cn] = [(); 4].map(|()| take(&mut r).map(i64::from_le_bytes));
        let stamp = Stamp {
            size: size?,
            mtime: (ms?, mn?),
            ctime: (cs?, cn?),
            ino: ino?,
            dev: dev?,
        };
        let root = ContentHash(take(&mut r)?);
        let count = usize::try_from(u64::from_le_bytes(take(&mut r)?)).ok()?;
        if count > r.len() / 32 {
            return None;
        }
        let pieces = (0..count)
            .map(|_| take(&mut r))
            .collect::<Option<Vec<_>>>()?;
        let pieces = PieceHashes::checked(stamp.size, pieces, root).ok()?;
        files.insert(name, (stamp, pieces));
    }
    Some(files)
}

/// The next `N` bytes of `r`.
fn take<const N: usize>(r: &mut &[u8]) -> Option<[u8; N]> {
    let (head, rest) = r.split_first_chunk::<N>()?;
    *r = rest;
    Some(*head)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, bytes: &[u8]) {
        fs::write(path, bytes).unwrap();
    }

    /// Hashes every file of `dir` through a cache kept in `file`, saves it, and returns
    /// the hashes and how many were reused and hashed. The scan takes place a minute from
    /// now, so that the files just written count as settled.
    #[allow(clippy::disallowed_methods)] // a test's own clock
    fn scan(dir: &Path, file: &Path) -> (Vec<PieceHashes>, usize, usize) {
        let later = SystemTime::now() + Duration::from_secs(60);
        let mut cache = HashCache::scanned_at(Some(file.to_owned()), later);
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        let hashes = names
            .iter()
            .map(|n| cache.hash(n, &dir.join(n), &mut |_| {}).unwrap())
            .collect();
        cache.save().unwrap();
        (hashes, cache.reused, cache.hashed)
    }

    #[test]
    fn unchanged_files_are_not_read_again_and_changed_ones_are() {
        let dir = tempfile::tempdir().unwrap();
        let keep = tempfile::tempdir().unwrap();
        let cache = keep.path().join("cache");
        let shared = dir.path();
        write(&shared.join("a.txt"), b"alpha");
        write(&shared.join("big.bin"), &vec![7u8; 3 << 20]);
        write(&shared.join("empty"), b"");
        let (first, reused, hashed) = scan(shared, &cache);
        assert_eq!((reused, hashed), (0, 3));
        let (again, reused, hashed) = scan(shared, &cache);
        assert_eq!((reused, hashed), (3, 0));
        assert_eq!(again, first);
        // Same size, new content: the change time moves, so it is read again. (Written
        // until it does: file times tick every few milliseconds.)
        let ctime = |p: &Path| Stamp::of(&fs::metadata(p).unwrap()).ctime;
        let before = ctime(&shared.join("a.txt"));
        while ctime(&shared.join("a.txt")) == before {
            std::thread::sleep(Duration::from_millis(2));
            write(&shared.join("a.txt"), b"omega");
        }
        fs::remove_file(shared.join("empty")).unwrap();
        let (after, reused, hashed) = scan(shared, &cache);
        assert_eq!((reused, hashed), (1, 1));
        assert_eq!(after[0], crate::hash_file(&shared.join("a.txt")).unwrap());
        assert_ne!(after[0], first[0]);
        // The removed file is no longer recorded.
        let recorded = decode(&fs::read(&cache).unwrap()).unwrap();
        let mut names: Vec<_> = recorded.keys().cloned().collect();
        names.sort();
        assert_eq!(names, ["a.txt", "big.bin"]);
    }

    /// A file that changed just before the scan is hashed but not recorded: it could
    /// change again within the same tick of the file clock and keep its stamp.
    #[test]
    fn a_file_changed_just_now_is_read_again_next_time() {
        let dir = tempfile::tempdir().unwrap();
        let keep = tempfile::tempdir().unwrap();
        let file = keep.path().join("cache");
        write(&dir.path().join("new.txt"), b"fresh");
        for _ in 0..2 {
            let mut cache = HashCache::at(Some(file.clone()));
            let path = dir.path().join("new.txt");
            cache.hash("new.txt", &path, &mut |_| {}).unwrap();
            cache.save().unwrap();
            assert_eq!((cache.reused, cache.hashed), (0, 1));
        }
    }

    /// Whatever happens to the cache file (cut short, any byte changed), the hashes come
    /// out right: a damaged record is not read, or its stamp no longer matches.
    #[test]
    fn a_damaged_cache_file_never_gives_a_wrong_hash() {
        let dir = tempfile::tempdir().unwrap();
        let keep = tempfile::tempdir().unwrap();
        let cache = keep.path().join("cache");
        write(&dir.path().join("a.txt"), b"alpha");
        write(&dir.path().join("b.txt"), b"beta, longer");
        let (first, _, _) = scan(dir.path(), &cache);
        let good = fs::read(&cache).unwrap();
        assert_eq!(scan(dir.path(), &cache).1, 2, "reused when intact");
        for at in 0..good.len() {
            let mut flipped = good.clone();
            flipped[at] ^= 0x40;
            for damaged in [&good[..at], &flipped[..]] {
                write(&cache, damaged);
                let (hashes, _, _) = scan(dir.path(), &cache);
                assert_eq!(hashes, first, "damaged at byte {at}");
            }
        }
    }
}
