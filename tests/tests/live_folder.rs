//! The live shared folder end to end: a client whose shared folder is watched (the default
//! of `napshare client`) shares what is copied in, shares again what is rewritten, and
//! stops sharing what is removed or renamed, with no command; another client's searches
//! see it within a few seconds. A file being written slowly is never listed half written.
//!
//! Waits poll searches against a deadline; nothing here sleeps to let time pass.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use napshare_tests::classic_server::{ClassicServer, Knobs};
use napshare_tests::node::{hit, test_data, ClientProc, Hit, Mix, Runtime, ServerProc};

/// How long a change may take to show in another client's search: "about a second", with
/// room for a loaded machine.
const DEADLINE: Duration = Duration::from_secs(5);

/// Searches `pattern` from `b` until `done` holds for the results, and returns them with
/// the time it took. Every result seen on the way must pass `always`.
fn poll(
    b: &mut ClientProc,
    pattern: &str,
    always: impl Fn(&[Hit]) -> Result<(), String>,
    done: impl Fn(&[Hit]) -> bool,
) -> (Vec<Hit>, Duration) {
    let start = Instant::now();
    loop {
        let hits = b.search(pattern);
        if let Err(why) = always(&hits) {
            panic!("search {pattern:?}: {why}: {hits:?}");
        }
        if done(&hits) {
            return (hits, start.elapsed());
        }
        assert!(
            start.elapsed() < DEADLINE,
            "search {pattern:?} still shows {hits:?} after {DEADLINE:?}"
        );
        // Between two searches; the deadline above is what is checked.
        thread::sleep(Duration::from_millis(50));
    }
}

/// At most one entry named `name`: a file registered again replaces its entry.
fn one_entry(name: &str) -> impl Fn(&[Hit]) -> Result<(), String> + '_ {
    move |hits| match hits.iter().filter(|h| h.name == name).count() {
        0 | 1 => Ok(()),
        n => Err(format!("{n} entries for {name}")),
    }
}

fn anything(_: &[Hit]) -> Result<(), String> {
    Ok(())
}

/// Copies `data` into `dir` as `name` the way a user would: written elsewhere first.
fn copy_in(dir: &Path, name: &str, data: &[u8]) {
    let outside = tempfile_outside();
    let src = outside.path().join(name);
    fs::write(&src, data).unwrap();
    fs::copy(&src, dir.join(name)).unwrap();
}

fn tempfile_outside() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("napshare-outside-")
        .tempdir()
        .unwrap()
}

/// Copy in, rewrite, delete, rename, and a slow writer, with A's folder watched.
fn live_folder(mix: Mix) {
    let server = ServerProc::start(mix.server);
    let mut a = ClientProc::start_watching(mix.client(0), server.addr(), &[("start.txt", b"s")]);
    a.wait_joined();
    let mut b = ClientProc::joined(mix.client(1), server.addr(), &[]);
    let pa = a.peer_addr();
    let shared = a.shared_dir().to_owned();

    // Copied in: found, with its size, then downloaded.
    let data = test_data(200_000, 7);
    let copied = Instant::now();
    copy_in(&shared, "live.bin", &data);
    let (_, took) = poll(&mut b, "live", one_entry("live.bin"), |h| {
        h == [hit("live.bin", pa, data.len())]
    });
    eprintln!("{mix:?}: copied in -> found in {took:?}");
    a.expect(format!("sharing live.bin ({} bytes)", data.len()));
    assert!(copied.elapsed() < DEADLINE);
    b.download(&pa.to_string(), "live.bin").unwrap();
    assert!(fs::read(b.downloads_dir().join("live.bin")).unwrap() == data);

    // Rewritten with another size: the new size, and one entry all along.
    let smaller = test_data(1234, 8);
    fs::write(shared.join("live.bin"), &smaller).unwrap();
    let (_, took) = poll(&mut b, "live", one_entry("live.bin"), |h| {
        h == [hit("live.bin", pa, smaller.len())]
    });
    eprintln!("{mix:?}: rewritten -> new size in {took:?}");
    a.expect("sharing live.bin (1234 bytes)");

    // Removed: gone.
    fs::remove_file(shared.join("live.bin")).unwrap();
    let (_, took) = poll(&mut b, "live", anything, <[Hit]>::is_empty);
    eprintln!("{mix:?}: removed -> gone in {took:?}");
    a.expect("stopped sharing live.bin");

    // Renamed: the old name goes, the new one comes, the file that was there all along
    // stays.
    fs::rename(shared.join("start.txt"), shared.join("renamed.txt")).unwrap();
    let (_, took) = poll(&mut b, ".txt", anything, |h| {
        h == [hit("renamed.txt", pa, 1)]
    });
    eprintln!("{mix:?}: renamed -> new name only in {took:?}");

    // Written slowly, in chunks over about 2 s: never listed with a partial size.
    let chunk = test_data(10_000, 9);
    let chunks = 20;
    let whole = chunk.len() * chunks;
    let mut f = fs::File::create(shared.join("slow.bin")).unwrap();
    for _ in 0..chunks {
        f.write_all(&chunk).unwrap();
        f.flush().unwrap();
        let hits = b.search("slow");
        assert!(
            hits.is_empty(),
            "listed while being written: {hits:?} (whole: {whole} bytes)"
        );
        thread::sleep(Duration::from_millis(100));
    }
    drop(f);
    let (_, took) = poll(
        &mut b,
        "slow",
        |hits| match hits.iter().find(|h| h.size != whole as u64) {
            Some(h) => Err(format!("listed with {} of {whole} bytes", h.size)),
            None => Ok(()),
        },
        |h| h == [hit("slow.bin", pa, whole)],
    );
    eprintln!("{mix:?}: slow writer done -> found in {took:?}");
    b.download(&pa.to_string(), "slow.bin").unwrap();
    assert_eq!(
        fs::read(b.downloads_dir().join("slow.bin")).unwrap().len(),
        whole
    );

    // DELETEFILE and CREATEFILE still work on a watched folder.
    a.send("DELETEFILE renamed.txt");
    a.expect("stopped sharing renamed.txt");
    poll(&mut b, ".txt", anything, <[Hit]>::is_empty);
    a.send("CREATEFILE renamed.txt 1");
    a.expect("sharing renamed.txt (1 bytes)");
    poll(&mut b, ".txt", anything, |h| {
        h == [hit("renamed.txt", pa, 1)]
    });

    a.leave();
}

#[test]
fn live_folder_mio() {
    live_folder(Mix::new(Runtime::Mio, Runtime::Mio));
}

#[test]
fn live_folder_smol() {
    live_folder(Mix::new(Runtime::Smol, Runtime::Smol));
}

/// On a classic server (the seed's, which lists a name twice when it is registered twice)
/// a rewritten file still ends with one entry: the client drops the old one first.
fn classic_server_keeps_one_entry(rt: Runtime) {
    let server = ClassicServer::start(Knobs::SEED).unwrap();
    let mut a = ClientProc::start_watching(rt, server.addr(), &[]);
    a.wait_joined();
    let mut b = ClientProc::joined(rt.other(), server.addr(), &[]);
    let shared = a.shared_dir().to_owned();
    fs::write(shared.join("doc.txt"), b"first").unwrap();
    poll(&mut b, "doc", one_entry("doc.txt"), |h| {
        h.len() == 1 && h[0].size == 5
    });
    fs::write(shared.join("doc.txt"), b"second, longer").unwrap();
    poll(&mut b, "doc", one_entry("doc.txt"), |h| {
        h.len() == 1 && h[0].size == 14
    });
    fs::remove_file(shared.join("doc.txt")).unwrap();
    poll(&mut b, "doc", anything, <[Hit]>::is_empty);
}

#[test]
fn classic_server_keeps_one_entry_mio() {
    classic_server_keeps_one_entry(Runtime::Mio);
}

#[test]
fn classic_server_keeps_one_entry_smol() {
    classic_server_keeps_one_entry(Runtime::Smol);
}
