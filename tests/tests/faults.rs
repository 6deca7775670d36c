//! Faults on the way, for each runtime: downloads through a proxy that splits, delays and
//! cuts connections either finish byte-identical or leave no file at the final name; a
//! downloading client killed with SIGKILL at random moments and started again never leaves
//! a corrupt file at the final name, and finishes in the end.

use std::fs;
use std::path::Path;
use std::thread;
use std::time::Duration;

use napshare_tests::node::{test_data, ClientProc, Runtime, ServerProc};
use napshare_tests::proxy::{Faults, Proxy};

const SIZE: usize = 6 * 1024 * 1024 + 12_345;

/// A small deterministic generator for the faults of each try.
fn rng(mut x: u64) -> impl FnMut(u64) -> u64 {
    move |below| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % below.max(1)
    }
}

/// The final file is either absent or exactly right: never a corrupt one.
fn final_file_is_whole_or_absent(path: &Path, data: &[u8]) {
    if let Ok(got) = fs::read(path) {
        assert!(
            got == data,
            "a corrupt file at the final name ({} bytes)",
            got.len()
        );
    }
}

fn downloads_through_a_faulty_proxy(rt: Runtime) {
    let server = ServerProc::start(rt);
    let data = test_data(SIZE, 21);
    let a = ClientProc::joined(rt, server.addr(), &[("film.mkv", &data)]);
    let mut c = ClientProc::joined(rt.other(), server.addr(), &[]);
    assert_eq!(c.search("film").len(), 1);
    let proxy = Proxy::start(a.peer_addr());
    let fin = c.downloads_dir().join("film.mkv");
    let mut next = rng(0x5eed);
    for _ in 0..6 {
        proxy.set_faults(Faults {
            chunk: 1 + next(64 * 1024) as usize,
            delay: Duration::from_micros(next(300)),
            cut_after: Some(next(SIZE as u64 + 4096)),
        });
        let outcome = c.download(&proxy.addr().to_string(), "film.mkv");
        final_file_is_whole_or_absent(&fin, &data);
        if outcome.is_ok() {
            fs::remove_file(&fin).unwrap();
        }
    }
    // With a proxy that only splits and delays, the download finishes, resuming from
    // what the partial file holds.
    proxy.set_faults(Faults {
        chunk: 1500,
        delay: Duration::from_micros(20),
        cut_after: None,
    });
    c.download(&proxy.addr().to_string(), "film.mkv").unwrap();
    assert!(fs::read(&fin).unwrap() == data);
}

fn a_downloader_killed_at_random_moments(rt: Runtime) {
    let server = ServerProc::start(rt);
    let data = test_data(4 * SIZE, 22);
    let a = ClientProc::joined(rt, server.addr(), &[("disk.img", &data)]);
    let dir = tempfile::tempdir().unwrap();
    let addr = server.addr().to_string();
    let fin = dir.path().join("downloads").join("disk.img");
    let mut next = rng(0xdead);
    // Slow the transfer down so that the kills land mid-way.
    let proxy = Proxy::start(a.peer_addr());
    proxy.set_faults(Faults {
        chunk: 16 * 1024,
        delay: Duration::from_micros(200),
        cut_after: None,
    });
    for _ in 0..5 {
        let mut c = ClientProc::start_in(rt.other(), &addr, dir.path(), &[]);
        c.wait_joined();
        c.send("SEARCH disk");
        c.expect("search \"disk\"");
        c.send(&format!("DOWNLOAD {} disk.img", proxy.addr()));
        thread::sleep(Duration::from_millis(50 + next(400)));
        c.kill();
        final_file_is_whole_or_absent(&fin, &data);
    }
    let mut c = ClientProc::start_in(rt.other(), &addr, dir.path(), &[]);
    c.wait_joined();
    c.send("SEARCH disk");
    c.expect("search \"disk\"");
    c.download(&a.peer_addr().to_string(), "disk.img").unwrap();
    assert!(fs::read(&fin).unwrap() == data);
}

#[test]
fn faulty_proxy_mio() {
    downloads_through_a_faulty_proxy(Runtime::Mio);
}

#[test]
fn faulty_proxy_smol() {
    downloads_through_a_faulty_proxy(Runtime::Smol);
}

#[test]
fn killed_downloader_mio() {
    a_downloader_killed_at_random_moments(Runtime::Mio);
}

#[test]
fn killed_downloader_smol() {
    a_downloader_killed_at_random_moments(Runtime::Smol);
}
