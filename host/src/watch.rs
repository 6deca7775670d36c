//! The live shared folder, host side: a thread turns the operating system's change
//! notifications for the shared folder (the `notify` crate: inotify on Linux) into the
//! names of the files that changed, once each has stopped changing, and hands them to the
//! client loop ([`crate::Input::Folder`]). What to do about a name is the core's business
//! ([`napshare_core::client::Client::handle_folder_change`]): it looks at the file again.
//!
//! Only the top level of the folder is watched, like the scan at start, and only names
//! that can be shared are reported. A name is reported once nothing happened to it for
//! [`SETTLE`] and its size, modification time and inode are what they were at its last
//! event: a file being copied in is reported when the copy ends, not half way. (A writer
//! that pauses for longer than [`SETTLE`] in the middle of a file gets the file shared
//! early, then shared again with its final size.) Opening or reading a file is no change,
//! so serving or hashing a file does not report it again.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant, SystemTime};

use notify::event::{AccessKind, AccessMode, ModifyKind};
use notify::{Event, EventKind, RecursiveMode, Watcher};
use tracing::warn;

use crate::lang::Lang;
use napshare_core::client::{ClientConfig, SharedFile};
use napshare_core::names::check_file_name;

/// How long a file of the shared folder must stay unchanged before it is reported.
pub const SETTLE: Duration = Duration::from_millis(500);

/// Starts watching `config.shared_dir` for the client that starts with `files`, calling
/// `send` with each name that changed (from a thread of its own; it stops when `send`
/// returns `false`). When the folder cannot be watched (the system's limit on watches
/// reached, say) it says so on standard output and the client goes on without it.
pub fn watch_shared(
    config: &ClientConfig,
    files: &[SharedFile],
    lang: Lang,
    send: impl Fn(String) -> bool + Send + 'static,
) {
    let initial = files
        .iter()
        .map(|f| (f.name.clone(), f.pieces.size()))
        .collect();
    let skip_parts = same_folder(&config.shared_dir, &config.downloads_dir);
    if let Err(e) = start(&config.shared_dir, skip_parts, initial, send) {
        let dir = config.shared_dir.display();
        let limits = "fs.inotify.max_user_watches, fs.inotify.max_user_instances";
        let hint = match (&e.kind, lang) {
            (notify::ErrorKind::MaxFilesWatch, Lang::En) => {
                format!(" (the system's limit on watched folders: see {limits})")
            }
            (notify::ErrorKind::MaxFilesWatch, Lang::Pt) => {
                format!(" (o limite do sistema de pastas observadas: veja {limits})")
            }
            _ => String::new(),
        };
        match lang {
            Lang::En => println!(
                "warning: cannot watch the shared folder {dir}: {e}{hint}; files added to it \
                 from now on are not shared until you type CREATEFILE NAME"
            ),
            Lang::Pt => println!(
                "aviso: não é possível observar a pasta compartilhada {dir}: {e}{hint}; \
                 arquivos postos nela daqui em diante só são compartilhados com \
                 COMPARTILHAR NOME"
            ),
        }
    }
}

/// Whether `a` and `b` are the same folder (the downloads' `.part` files are then in the
/// shared folder, and are not shared as they grow).
fn same_folder(a: &Path, b: &Path) -> bool {
    match (fs::canonicalize(a), fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// Watches `dir` and starts the thread that reports its changes with `send`. `initial`
/// holds the names and sizes the client shares at start: whatever differs from them by
/// the time the watch is in place is reported too, so nothing changed between the scan
/// and the watch is missed.
#[allow(clippy::disallowed_methods)] // the watcher's thread and its debounce clock, outside the core
fn start(
    dir: &Path,
    skip_parts: bool,
    initial: BTreeMap<String, u64>,
    send: impl Fn(String) -> bool + Send + 'static,
) -> notify::Result<()> {
    // notify reports paths under the folder as it was given, made absolute: so is ours.
    let dir = if dir.is_absolute() {
        dir.to_owned()
    } else {
        std::env::current_dir()?.join(dir)
    };
    let (tx, rx) = mpsc::channel();
    let mut watcher = notify::recommended_watcher(tx)?;
    watcher.watch(&dir, RecursiveMode::NonRecursive)?;
    let mut folder = Folder {
        dir,
        skip_parts,
        known: initial.keys().cloned().collect(),
        settling: Settling::default(),
    };
    folder.catch_up(Instant::now(), &initial);
    std::thread::spawn(move || {
        // Dropping the watcher would stop the notifications.
        let _watcher = watcher;
        folder.run(&rx, send);
    });
    Ok(())
}

/// What the watcher saw under a name: `None` when nothing is there.
type Seen = Option<Look>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Look {
    file: bool,
    len: u64,
    modified: Option<SystemTime>,
    inode: u64,
}

fn look(path: &Path) -> Seen {
    let m = fs::symlink_metadata(path).ok()?;
    Some(Look {
        file: m.is_file(),
        len: m.len(),
        modified: m.modified().ok(),
        inode: m.ino(),
    })
}

/// Names waiting to settle: when each is due and what was seen under it at its last event.
#[derive(Debug, Default)]
struct Settling {
    waiting: BTreeMap<String, (Instant, Seen)>,
}

impl Settling {
    /// Something happened to `name` at `now`, and `seen` is what is there now.
    fn touch(&mut self, now: Instant, name: String, seen: Seen) {
        self.waiting.insert(name, (now + SETTLE, seen));
    }

    fn next_due(&self) -> Option<Instant> {
        self.waiting.values().map(|(due, _)| *due).min()
    }

    /// The names that settled by `now`: due, and unchanged since their last event (`look`
    /// tells what is there now). Those that changed silently wait another [`SETTLE`].
    fn settled(&mut self, now: Instant, look: impl Fn(&str) -> Seen) -> Vec<String> {
        let due: Vec<String> = self
            .waiting
            .iter()
            .filter(|(_, (at, _))| *at <= now)
            .map(|(name, _)| name.clone())
            .collect();
        let mut out = Vec::new();
        for name in due {
            let seen = look(&name);
            match self.waiting.get_mut(&name) {
                Some(entry) if entry.1 != seen => *entry = (now + SETTLE, seen),
                Some(_) => {
                    self.waiting.remove(&name);
                    out.push(name);
                }
                None => {}
            }
        }
        out
    }
}

/// The watcher thread's state.
struct Folder {
    /// The shared folder, absolute.
    dir: PathBuf,
    /// Leave out `.part` files: the downloads folder is the shared folder.
    skip_parts: bool,
    /// Every name shared at start or seen since, to look at again after a lost event.
    known: BTreeSet<String>,
    settling: Settling,
}

impl Folder {
    /// Reports names as they settle, until `send` fails or notify stops.
    #[allow(clippy::disallowed_methods)] // the debounce clock of the watcher's own thread
    fn run(&mut self, rx: &Receiver<notify::Result<Event>>, send: impl Fn(String) -> bool) {
        loop {
            let got = match self.settling.next_due() {
                Some(due) => rx.recv_timeout(due.saturating_duration_since(Instant::now())),
                None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
            };
            let now = Instant::now();
            match got {
                Ok(Ok(event)) => self.on_event(now, &event),
                Ok(Err(e)) => warn!(error = %e, "watching the shared folder"),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            let dir = &self.dir;
            for name in self.settling.settled(now, |name| look(&dir.join(name))) {
                if !send(name) {
                    return;
                }
            }
        }
    }

    fn on_event(&mut self, now: Instant, event: &Event) {
        if event.need_rescan() {
            // Events were lost (the kernel's queue overflowed): look at everything again.
            let names = self.listing().into_iter().chain(self.known.clone());
            for name in names.collect::<BTreeSet<_>>() {
                self.touch(now, name);
            }
        }
        match event.kind {
            // Opening and reading (an upload, our own hashing) change nothing.
            EventKind::Access(AccessKind::Close(AccessMode::Write)) => {}
            EventKind::Access(_) => return,
            _ => {}
        }
        for path in &event.paths {
            if let Some(name) = self.name_of(path) {
                self.touch(now, name);
            } else if *path == self.dir
                && matches!(
                    event.kind,
                    EventKind::Remove(_) | EventKind::Modify(ModifyKind::Name(_))
                )
            {
                warn!(folder = %self.dir.display(), "the shared folder was removed or moved: its changes are no longer seen");
            }
        }
    }

    fn touch(&mut self, now: Instant, name: String) {
        let seen = look(&self.dir.join(&name));
        self.known.insert(name.clone());
        self.settling.touch(now, name, seen);
    }

    /// The name of `path` if it is a file of the shared folder that could be shared.
    fn name_of(&self, path: &Path) -> Option<String> {
        if path.parent()? != self.dir {
            return None;
        }
        let name = path.file_name()?.to_str()?;
        let part = self.skip_parts && name.ends_with(".part");
        (check_file_name(name).is_ok() && !part).then(|| name.to_owned())
    }

    /// The names in the folder now that could be shared.
    fn listing(&self) -> Vec<String> {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        entries
            .filter_map(|e| self.name_of(&e.ok()?.path()))
            .collect()
    }

    /// Reports what changed between the scan at start (`initial`) and now.
    fn catch_up(&mut self, now: Instant, initial: &BTreeMap<String, u64>) {
        let present = self.listing();
        let changed: Vec<String> = present
            .iter()
            .filter(|name| {
                let seen = look(&self.dir.join(name));
                let size = seen.filter(|s| s.file).map(|s| s.len);
                size.is_none() || initial.get(*name) != size.as_ref()
            })
            .cloned()
            .collect();
        let gone = initial.keys().filter(|n| !present.contains(n)).cloned();
        for name in changed.into_iter().chain(gone.collect::<Vec<_>>()) {
            self.touch(now, name);
        }
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // real time and a real folder: what the watcher runs on
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_name_settles_once_unchanged_for_the_whole_window() {
        let t0 = Instant::now();
        let seen = |len| {
            Some(Look {
                file: true,
                len,
                modified: None,
                inode: 1,
            })
        };
        let mut s = Settling::default();
        s.touch(t0, "a".into(), seen(1));
        assert_eq!(s.next_due(), Some(t0 + SETTLE));
        assert!(s.settled(t0 + SETTLE / 2, |_| seen(1)).is_empty());
        // It grew with no event seen: another window.
        let t1 = t0 + SETTLE;
        assert!(s.settled(t1, |_| seen(2)).is_empty());
        assert_eq!(s.next_due(), Some(t1 + SETTLE));
        assert_eq!(s.settled(t1 + SETTLE, |_| seen(2)), ["a"]);
        assert_eq!(s.next_due(), None);
        // Gone, and still gone: reported.
        s.touch(t1, "b".into(), None);
        assert_eq!(s.settled(t1 + SETTLE, |_| None), ["b"]);
    }

    /// A watcher on a new temporary folder, and what it reports with when it reported it.
    fn watched(
        skip_parts: bool,
        initial: &[(&str, u64)],
        files: &[(&str, &[u8])],
    ) -> (tempfile::TempDir, mpsc::Receiver<(Instant, String)>) {
        let dir = tempfile::tempdir().unwrap();
        for (name, data) in files {
            fs::write(dir.path().join(name), data).unwrap();
        }
        let (tx, rx) = mpsc::channel();
        let initial = initial.iter().map(|(n, s)| ((*n).to_owned(), *s)).collect();
        start(dir.path(), skip_parts, initial, move |name| {
            tx.send((Instant::now(), name)).is_ok()
        })
        .unwrap();
        (dir, rx)
    }

    fn next(rx: &mpsc::Receiver<(Instant, String)>, within: Duration) -> Option<(Instant, String)> {
        rx.recv_timeout(within).ok()
    }

    #[test]
    fn changes_are_reported_once_they_settle_and_reading_is_no_change() {
        let (dir, rx) = watched(false, &[], &[]);
        let path = dir.path().join("new.txt");
        let wrote = Instant::now();
        fs::write(&path, b"hello").unwrap();
        let (at, name) = next(&rx, Duration::from_secs(5)).expect("reported");
        assert_eq!(name, "new.txt");
        assert!(at >= wrote + SETTLE, "reported before it settled");
        // Hashing and reading it (what the client and its uploads do) report nothing.
        crate::hash_file(&path).unwrap();
        fs::read(&path).unwrap();
        assert_eq!(next(&rx, SETTLE * 3), None);
        // A rename reports both names; a removal the name.
        fs::rename(&path, dir.path().join("renamed.txt")).unwrap();
        let mut names = [
            next(&rx, Duration::from_secs(5)),
            next(&rx, Duration::from_secs(5)),
        ]
        .map(|n| n.expect("reported").1);
        names.sort();
        assert_eq!(names, ["new.txt", "renamed.txt"]);
        fs::remove_file(dir.path().join("renamed.txt")).unwrap();
        assert_eq!(next(&rx, Duration::from_secs(5)).unwrap().1, "renamed.txt");
        // Subfolders and names that cannot be shared are not reported.
        fs::create_dir(dir.path().join("sub")).unwrap();
        fs::write(dir.path().join("sub").join("inner.txt"), b"x").unwrap();
        fs::write(dir.path().join("tab\there"), b"x").unwrap();
        let reported: Vec<String> = std::iter::from_fn(|| next(&rx, SETTLE * 3))
            .map(|(_, n)| n)
            .collect();
        assert_eq!(
            reported,
            ["sub"],
            "the folder itself is a name; the core skips it"
        );
    }

    #[test]
    fn a_file_written_slowly_is_reported_only_when_it_is_whole() {
        let (dir, rx) = watched(false, &[], &[]);
        let mut f = fs::File::create(dir.path().join("slow.bin")).unwrap();
        for _ in 0..15 {
            f.write_all(&[7; 1000]).unwrap();
            std::thread::sleep(Duration::from_millis(100));
        }
        let last_write = Instant::now();
        drop(f);
        let (at, name) = next(&rx, Duration::from_secs(5)).expect("reported");
        assert_eq!(name, "slow.bin");
        assert!(at >= last_write, "reported while it was being written");
        assert_eq!(
            fs::metadata(dir.path().join("slow.bin")).unwrap().len(),
            15_000
        );
        assert_eq!(next(&rx, SETTLE * 2), None, "reported once");
    }

    #[test]
    fn what_changed_before_the_watch_started_is_reported() {
        // Shared at start: same.txt (unchanged), grown.txt (was 1 byte), gone.txt.
        let (_dir, rx) = watched(
            false,
            &[("same.txt", 4), ("grown.txt", 1), ("gone.txt", 3)],
            &[
                ("same.txt", b"same"),
                ("grown.txt", b"grown"),
                ("new.txt", b"n"),
            ],
        );
        let mut names: Vec<String> = std::iter::from_fn(|| next(&rx, SETTLE * 4))
            .map(|(_, n)| n)
            .collect();
        names.sort();
        assert_eq!(names, ["gone.txt", "grown.txt", "new.txt"]);
    }

    #[test]
    fn partial_downloads_are_left_out_when_they_land_in_the_shared_folder() {
        let (dir, rx) = watched(true, &[], &[]);
        fs::write(dir.path().join("movie.mkv.part"), b"half").unwrap();
        fs::rename(
            dir.path().join("movie.mkv.part"),
            dir.path().join("movie.mkv"),
        )
        .unwrap();
        let names: Vec<String> = std::iter::from_fn(|| next(&rx, SETTLE * 3))
            .map(|(_, n)| n)
            .collect();
        assert_eq!(names, ["movie.mkv"]);
    }

    #[test]
    fn a_folder_that_cannot_be_watched_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        assert!(start(&missing, false, BTreeMap::new(), |_| true).is_err());
    }
}
