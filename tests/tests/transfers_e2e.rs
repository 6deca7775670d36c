//! Verified, resumable, multi-source transfers end to end: real processes on loopback,
//! for each server runtime with clients on both runtimes (see [`Mix`]).

use std::fs;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use napshare_tests::node::{test_data, ClientProc, Mix, Runtime, ServerProc, TIMEOUT};

const MIB: usize = 1024 * 1024;

/// Waits until `path` holds at least `bytes` bytes, or `done` says to stop looking;
/// returns whether the size was reached.
fn wait_for_size(path: &Path, bytes: u64, done: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + TIMEOUT;
    while Instant::now() < deadline {
        if fs::metadata(path).is_ok_and(|m| m.len() >= bytes) {
            return true;
        }
        if done() {
            return false;
        }
        thread::sleep(Duration::from_millis(2));
    }
    panic!("{} never reached {bytes} bytes", path.display());
}

/// 64 MiB from three peers at once, byte-identical.
fn sixty_four_mib_from_three_peers(mix: Mix) {
    let server = ServerProc::start(mix.server);
    let data = test_data(64 * MIB, 64);
    let _peers: Vec<ClientProc> = (0..3)
        .map(|i| ClientProc::joined(mix.client(i), server.addr(), &[("big.iso", &data)]))
        .collect();
    let mut c = ClientProc::joined(mix.client(3), server.addr(), &[]);
    c.send("DOWNLOAD big.iso");
    c.expect("downloading big.iso from 3 peers");
    c.expect("downloaded big.iso: ");
    assert!(fs::read(c.downloads_dir().join("big.iso")).unwrap() == data);
}

/// One of two peers is killed with SIGKILL mid-way; the other finishes the file.
fn a_peer_killed_mid_way_is_replaced(mix: Mix) {
    let server = ServerProc::start(mix.server);
    let data = test_data(48 * MIB, 48);
    let mut a = ClientProc::joined(mix.client(0), server.addr(), &[("film.mkv", &data)]);
    let _b = ClientProc::joined(mix.client(1), server.addr(), &[("film.mkv", &data)]);
    let mut c = ClientProc::joined(mix.client(2), server.addr(), &[]);
    c.send("DOWNLOAD film.mkv");
    c.expect("downloading film.mkv from 2 peers");
    let part = c.downloads_dir().join("film.mkv.part");
    let fin = c.downloads_dir().join("film.mkv");
    wait_for_size(&part, 4 * MIB as u64, || fin.exists());
    a.kill();
    c.expect("downloaded film.mkv: ");
    assert!(fs::read(&fin).unwrap() == data);
}

/// A downloading client killed with SIGKILL leaves no file at the final name; restarted
/// on the same folders it re-checks the partial file and finishes it from another peer.
fn a_killed_download_resumes_after_a_restart(mix: Mix) {
    let server = ServerProc::start(mix.server);
    let data = test_data(48 * MIB, 7);
    let _a = ClientProc::joined(mix.client(0), server.addr(), &[("disk image.img", &data)]);
    let dir = tempfile::tempdir().unwrap();
    let addr = server.addr().to_string();
    let mut c = ClientProc::start_in(mix.client(1), &addr, dir.path(), &[]);
    c.wait_joined();
    c.send("DOWNLOAD disk image.img");
    let part = c.downloads_dir().join("disk image.img.part");
    let fin = c.downloads_dir().join("disk image.img");
    let caught = wait_for_size(&part, 8 * MIB as u64, || fin.exists());
    c.kill();
    if caught && !fin.exists() {
        assert!(fs::metadata(&part).unwrap().len() >= 8 * MIB as u64);
    }
    let _b = ClientProc::joined(mix.client(2), server.addr(), &[("disk image.img", &data)]);
    let mut again = ClientProc::start_in(mix.client(3), &addr, dir.path(), &[]);
    again.wait_joined();
    again.send("DOWNLOAD disk image.img");
    again.expect("downloaded disk image.img: ");
    assert!(fs::read(&fin).unwrap() == data);
    assert!(!part.exists(), "the partial file became the final file");
}

/// A name with spaces and accents is shared, found and downloaded as it is.
fn names_with_spaces_and_accents(mix: Mix) {
    let server = ServerProc::start(mix.server);
    let name = "música de verão — ação 100%.flac";
    let data = test_data(3 * MIB + 17, 3);
    let a = ClientProc::joined(mix.client(0), server.addr(), &[(name, &data)]);
    let mut b = ClientProc::joined(mix.client(1), server.addr(), &[]);
    let hits = b.search("verão");
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(hits[0].name, name);
    b.download(&a.peer_addr().to_string(), name).unwrap();
    assert!(fs::read(b.downloads_dir().join(name)).unwrap() == data);
}

/// Commands piped in as a script would, the input ending right after them: the client
/// runs the search, downloads the numbered result, and leaves only once the file is saved.
fn a_piped_script_gets_its_file_before_leaving(mix: Mix) {
    let server = ServerProc::start(mix.server);
    let data = test_data(8 * MIB + 5, 4);
    let _a = ClientProc::joined(mix.client(0), server.addr(), &[("album.zip", &data)]);
    let mut b = ClientProc::start(mix.client(1), server.addr(), &[]);
    b.send("SEARCH album");
    b.send("DOWNLOAD 1");
    b.close_stdin();
    let status = b.wait_exit(TIMEOUT);
    assert!(status.success(), "{status}");
    assert!(fs::read(b.downloads_dir().join("album.zip")).unwrap() == data);
}

macro_rules! on_mix {
    ($module:ident, $mix:expr, [$($scenario:ident),* $(,)?]) => {
        mod $module {
            use super::*;
            $(
                #[test]
                fn $scenario() {
                    super::$scenario($mix)
                }
            )*
        }
    };
}

/// Runs every scenario with a server of each runtime (the clients alternate runtimes).
macro_rules! on_every_server {
    ($($scenario:ident),* $(,)?) => {
        on_mix!(mio_server, Mix::new(Runtime::Mio, Runtime::Mio), [$($scenario),*]);
        on_mix!(smol_server, Mix::new(Runtime::Smol, Runtime::Smol), [$($scenario),*]);
    };
}

on_every_server!(
    sixty_four_mib_from_three_peers,
    a_peer_killed_mid_way_is_replaced,
    a_killed_download_resumes_after_a_restart,
    names_with_spaces_and_accents,
    a_piped_script_gets_its_file_before_leaving,
);
