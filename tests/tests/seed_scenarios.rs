//! The seed's six tests, end to end with real processes on loopback: one index server and
//! clients that read commands on standard input and print what happened (connect, register
//! automatically, search, download between clients, delete, leave), plus what the seed got
//! wrong or never tried (clients on one host, clients that vanish, `CREATEFILE` mistakes,
//! unknown commands).
//!
//! Each scenario is a function of a [`Mix`] of runtimes (the server's, and the clients'
//! in turn); the `#[test]`s at the end run it for every server runtime against every
//! client runtime, with the second client always on the other runtime, so downloads cross
//! runtimes both ways.

use std::fs;
use std::thread;
use std::time::{Duration, Instant};

use napshare_tests::node::{hit, test_data, ClientProc, Mix, ServerProc, TIMEOUT};

/// How soon the files of a client that vanished must be gone: far less than any timeout,
/// but its close and another client's next search travel on different connections.
const SOON: Duration = Duration::from_secs(5);

// ---- the seed's six scenarios ----

/// A client connects, joins, and leaves with status 0.
fn connect(mix: Mix) {
    let server = ServerProc::start(mix.server);
    let mut a = ClientProc::start(mix.client(0), server.addr(), &[]);
    a.expect(format!("joined the network at {}", server.addr()));
    a.leave();
}

/// A client's startup files are registered without a command: another client finds them.
fn register_automatically(mix: Mix) {
    let server = ServerProc::start(mix.server);
    let a = ClientProc::joined(
        mix.client(0),
        server.addr(),
        &[("alpha.txt", b"alpha!"), ("beta.bin", &[0, 1, 2, 255])],
    );
    let mut b = ClientProc::joined(mix.client(1), server.addr(), &[]);
    let peer = a.peer_addr();
    assert_eq!(
        b.search(""),
        vec![hit("alpha.txt", peer, 6), hit("beta.bin", peer, 4)]
    );
}

/// Search is a case-sensitive substring match; no match prints 0 results.
fn search(mix: Mix) {
    let server = ServerProc::start(mix.server);
    let a = ClientProc::joined(
        mix.client(0),
        server.addr(),
        &[
            ("alpha.txt", b"1"),
            ("Alpha.md", b"22"),
            ("the alpha and omega.pdf", b"333"),
            ("gamma.txt", b"4444"),
        ],
    );
    let mut b = ClientProc::joined(
        mix.client(1),
        server.addr(),
        &[("delta alpha.txt", b"55555")],
    );
    let (pa, pb) = (a.peer_addr(), b.peer_addr());
    let mut found = b.search("alpha");
    found.sort_by(|x, y| x.name.cmp(&y.name));
    assert_eq!(
        found,
        vec![
            hit("alpha.txt", pa, 1),
            hit("delta alpha.txt", pb, 5),
            hit("the alpha and omega.pdf", pa, 3),
        ]
    );
    assert_eq!(
        b.search("pha.t"),
        vec![hit("alpha.txt", pa, 1), hit("delta alpha.txt", pb, 5)]
    );
    assert_eq!(b.search("Alpha"), vec![hit("Alpha.md", pa, 2)]);
    assert_eq!(b.search("ALPHA"), vec![]);
    assert_eq!(b.search("nomatch"), vec![]);
    assert_eq!(
        b.search("and omega"),
        vec![hit("the alpha and omega.pdf", pa, 3)]
    );
}

/// A client downloads from another: byte-identical binary data, names with spaces, with
/// and without a search first, an empty file; a name the peer does not share fails and
/// leaves nothing behind.
fn download(mix: Mix) {
    let server = ServerProc::start(mix.server);
    let mib = test_data(1024 * 1024, 1);
    let small = test_data(1000, 2);
    let a = ClientProc::joined(
        mix.client(0),
        server.addr(),
        &[
            ("one mib.bin", &mib),
            ("small one.dat", &small),
            ("empty", b""),
        ],
    );
    let mut b = ClientProc::joined(mix.client(1), server.addr(), &[]);
    let peer = a.peer_addr().to_string();

    assert_eq!(b.search("mib"), vec![hit("one mib.bin", &peer, mib.len())]);
    let done = b.download(&peer, "one mib.bin").unwrap();
    assert!(done.contains(&format!(": {} bytes", mib.len())), "{done}");
    assert!(fs::read(b.downloads_dir().join("one mib.bin")).unwrap() == mib);

    // No search first: the client has to find the size on its own.
    let done = b.download(&peer, "small one.dat").unwrap();
    assert!(done.contains(": 1000 bytes"), "{done}");
    assert_eq!(
        fs::read(b.downloads_dir().join("small one.dat")).unwrap(),
        small
    );

    let done = b.download(&peer, "empty").unwrap();
    assert!(done.contains(": 0 bytes"), "{done}");
    assert_eq!(fs::read(b.downloads_dir().join("empty")).unwrap(), b"");

    b.download(&peer, "not shared.txt").unwrap_err();
    assert!(!b.downloads_dir().join("not shared.txt").exists());

    // Nothing half-written is left behind.
    let mut left: Vec<_> = fs::read_dir(b.downloads_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert_eq!(left, ["empty", "one mib.bin", "small one.dat"]);
}

/// A download of a few MiB of binary data (several pieces) between two clients is
/// byte-identical.
fn download_several_mib(mix: Mix) {
    let server = ServerProc::start(mix.server);
    let big = test_data(3 * 1024 * 1024 + 4321, 3);
    let a = ClientProc::joined(mix.client(0), server.addr(), &[("big file.bin", &big)]);
    let mut b = ClientProc::joined(mix.client(1), server.addr(), &[]);
    let peer = a.peer_addr().to_string();
    assert_eq!(b.search("big"), vec![hit("big file.bin", &peer, big.len())]);
    let done = b.download(&peer, "big file.bin").unwrap();
    assert!(done.contains(&format!(": {} bytes", big.len())), "{done}");
    assert!(fs::read(b.downloads_dir().join("big file.bin")).unwrap() == big);
}

/// `DELETEFILE` removes a file from the server (another client's search no longer finds
/// it) and the client stops serving it.
fn delete(mix: Mix) {
    let server = ServerProc::start(mix.server);
    let mut a = ClientProc::joined(
        mix.client(0),
        server.addr(),
        &[("alpha.txt", b"alpha"), ("beta.txt", b"beta")],
    );
    let mut b = ClientProc::joined(mix.client(1), server.addr(), &[]);
    let peer = a.peer_addr();
    assert_eq!(b.search("alpha"), vec![hit("alpha.txt", peer, 5)]);

    a.send("DELETEFILE alpha.txt");
    a.expect("stopped sharing alpha.txt");
    assert_eq!(b.search("alpha"), vec![]);
    assert_eq!(b.search(".txt"), vec![hit("beta.txt", peer, 4)]);
    // The file is still in A's folder, but A no longer serves it.
    assert!(a.shared_dir().join("alpha.txt").exists());
    b.download(&peer.to_string(), "alpha.txt").unwrap_err();
}

/// `LEAVE` removes the client's files and ends it with status 0; a client killed without a
/// word loses its files at once too.
fn leave(mix: Mix) {
    let server = ServerProc::start(mix.server);
    let mut a = ClientProc::joined(
        mix.client(0),
        server.addr(),
        &[("alpha.txt", b"alpha"), ("beta.txt", b"beta")],
    );
    let mut b = ClientProc::joined(mix.client(1), server.addr(), &[("mine.txt", b"b")]);
    assert_eq!(b.search(".txt").len(), 3);
    a.leave();
    assert_eq!(b.search(".txt"), vec![hit("mine.txt", b.peer_addr(), 1)]);

    let mut c = ClientProc::joined(mix.client(2), server.addr(), &[("gamma.txt", b"gamma")]);
    let gamma = vec![hit("gamma.txt", c.peer_addr(), 5)];
    assert_eq!(b.search("gamma"), gamma);
    c.kill();
    // The dead client's connection closes with it. That close and B's next search travel
    // on different connections, so the search may still overtake it; but the files must go
    // as soon as the server sees the close, not after some timeout (the seed keeps them).
    let deadline = Instant::now() + SOON;
    loop {
        let found = b.search("gamma");
        if found.is_empty() {
            break;
        }
        assert_eq!(found, gamma);
        assert!(
            Instant::now() < deadline,
            "a killed client's files are still listed {SOON:?} later"
        );
        thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(b.search(".txt"), vec![hit("mine.txt", b.peer_addr(), 1)]);
}

// ---- beyond the seed ----

/// Two clients on one host are two peers: each is listed with its own file server, and one
/// leaving does not take the other's files (the seed keys files by IP).
fn two_clients_on_one_host(mix: Mix) {
    let server = ServerProc::start(mix.server);
    let mut a = ClientProc::joined(mix.client(0), server.addr(), &[("same.txt", b"from a")]);
    let mut b = ClientProc::joined(mix.client(1), server.addr(), &[("same.txt", b"from b!")]);
    let (pa, pb) = (a.peer_addr(), b.peer_addr());
    assert_ne!(pa, pb);
    let mut found = b.search("same");
    found.sort_by_key(|x| x.size);
    assert_eq!(found, vec![hit("same.txt", pa, 6), hit("same.txt", pb, 7)]);

    // Each serves its own copy.
    b.download(&pa.to_string(), "same.txt").unwrap();
    assert_eq!(
        fs::read(b.downloads_dir().join("same.txt")).unwrap(),
        b"from a"
    );

    a.leave();
    assert_eq!(b.search("same"), vec![hit("same.txt", pb, 7)]);
}

/// `CREATEFILE` shares a file put in the shared folder while the client runs, with or
/// without its size; a wrong size or a missing file is an error and shares nothing.
fn createfile_while_running(mix: Mix) {
    let server = ServerProc::start(mix.server);
    let mut a = ClientProc::joined(mix.client(0), server.addr(), &[]);
    let mut b = ClientProc::joined(mix.client(1), server.addr(), &[]);
    let pa = a.peer_addr();

    let data = test_data(70_000, 3);
    fs::write(a.shared_dir().join("new file.bin"), &data).unwrap();
    fs::write(a.shared_dir().join("sized.txt"), b"12345").unwrap();
    a.send("CREATEFILE new file.bin");
    a.expect(format!("sharing new file.bin ({} bytes)", data.len()));
    a.send("CREATEFILE sized.txt 5");
    a.expect("sharing sized.txt (5 bytes)");
    assert_eq!(b.search("new"), vec![hit("new file.bin", pa, data.len())]);
    b.download(&pa.to_string(), "new file.bin").unwrap();
    assert!(fs::read(b.downloads_dir().join("new file.bin")).unwrap() == data);

    fs::write(a.shared_dir().join("wrong.txt"), b"12345").unwrap();
    a.send("CREATEFILE wrong.txt 999");
    let err = a.expect("error:");
    assert!(err.contains("wrong.txt"), "{err}");
    a.send("CREATEFILE ghost.txt 3");
    let err = a.expect("error:");
    assert!(err.contains("ghost.txt"), "{err}");
    a.send("CREATEFILE ghost2.txt");
    let err = a.expect("error:");
    assert!(err.contains("ghost2.txt"), "{err}");

    // Nothing of that reached the server, and A did not claim otherwise.
    assert_eq!(b.search("wrong"), vec![]);
    assert_eq!(b.search("ghost"), vec![]);
    assert_eq!(
        a.search(".txt"),
        vec![hit("sized.txt", pa, 5)],
        "A's own view"
    );
    let claimed: Vec<_> = a
        .out
        .seen()
        .iter()
        .filter(|l| l.starts_with("sharing wrong") || l.starts_with("sharing ghost"))
        .collect();
    assert!(claimed.is_empty(), "{claimed:?}");
    b.download(&pa.to_string(), "wrong.txt").unwrap_err();
}

/// An unknown command prints an error and the help, and the client goes on working.
fn unknown_command(mix: Mix) {
    let server = ServerProc::start(mix.server);
    let mut a = ClientProc::joined(mix.client(0), server.addr(), &[("alpha.txt", b"a")]);
    a.send("FROBNICATE alpha.txt");
    let err = a.expect("error:");
    assert!(err.contains("FROBNICATE"), "{err}");
    a.expect("commands:");
    a.expect("SEARCH");
    assert_eq!(a.search("alpha"), vec![hit("alpha.txt", a.peer_addr(), 1)]);
    a.send("CREATEFILE ../escape.txt");
    a.expect("error:");
    assert_eq!(a.search("alpha").len(), 1);
    a.leave();
}

/// End of standard input means `LEAVE`: the client leaves, its files go, it exits with 0,
/// also when the input ends right after a command.
fn end_of_input_leaves(mix: Mix) {
    let server = ServerProc::start(mix.server);
    let mut b = ClientProc::joined(mix.client(0), server.addr(), &[("stays.txt", b"s")]);
    // Several clients, so that a lost wake-up does not pass by luck.
    let mut idle: Vec<ClientProc> = (0..4)
        .map(|i| {
            let name = format!("idle{i}.txt");
            ClientProc::joined(mix.client(1), server.addr(), &[(name.as_str(), b"x")])
        })
        .collect();
    let mut busy: Vec<ClientProc> = (0..4)
        .map(|i| {
            let name = format!("busy{i}.txt");
            ClientProc::joined(mix.client(2), server.addr(), &[(name.as_str(), b"y")])
        })
        .collect();
    assert_eq!(b.search("idle").len(), 4);
    assert_eq!(b.search("busy").len(), 4);
    for c in &mut idle {
        c.close_stdin();
    }
    for c in &mut busy {
        c.send("SEARCH stays");
        c.close_stdin();
    }
    for c in &mut busy {
        assert_eq!(c.read_search("stays").len(), 1);
    }
    for c in idle.iter_mut().chain(&mut busy) {
        c.expect("left the network");
        let status = c.wait_exit(TIMEOUT);
        assert!(status.success(), "{status}\n{}", c.out.transcript());
    }
    assert_eq!(b.search("idle"), vec![]);
    assert_eq!(b.search("busy"), vec![]);
}

/// A client whose server goes away says so and exits with a failure status.
fn server_lost(mix: Mix) {
    let mut server = ServerProc::start(mix.server);
    let addr = server.addr();
    let mut a = ClientProc::joined(mix.client(0), addr, &[("alpha.txt", b"a")]);
    let mut b = ClientProc::joined(mix.client(1), addr, &[("beta.txt", b"b")]);
    server.kill();
    a.expect("lost the server");
    b.expect("lost the server");
    // While it is gone, a search says so clearly.
    b.send("SEARCH alpha");
    b.expect("not connected to the server");
    // A server killed and started again on its address gets every client's files back,
    // with no one doing anything.
    let _again = ServerProc::start_with(mix.server, &["--listen", &addr.to_string()]);
    a.expect(format!("joined the network at {addr}"));
    b.expect(format!("joined the network at {addr}"));
    b.expect("sharing beta.txt");
    a.expect("sharing alpha.txt");
    let mut found: Vec<String> = b.search(".txt").into_iter().map(|h| h.name).collect();
    found.sort();
    assert_eq!(found, ["alpha.txt", "beta.txt"]);
}

/// A thin `#[test]` per scenario and runtime: `mod mio { fn connect() .. }`.
macro_rules! on_runtime {
    ($module:ident, $mix:expr, [$($(#[$attr:meta])* $scenario:ident),* $(,)?]) => {
        mod $module {
            use super::*;
            $(
                #[test]
                $(#[$attr])*
                fn $scenario() {
                    super::$scenario($mix)
                }
            )*
        }
    };
}

use napshare_tests::node::Runtime::{Mio, Smol};

/// Runs every scenario for each server runtime against each client runtime.
macro_rules! on_every_mix {
    ($($(#[$attr:meta])* $scenario:ident),* $(,)?) => {
        on_runtime!(mio_server_mio_client, Mix::new(Mio, Mio), [$($(#[$attr])* $scenario),*]);
        on_runtime!(mio_server_smol_client, Mix::new(Mio, Smol), [$($(#[$attr])* $scenario),*]);
        on_runtime!(smol_server_mio_client, Mix::new(Smol, Mio), [$($(#[$attr])* $scenario),*]);
        on_runtime!(smol_server_smol_client, Mix::new(Smol, Smol), [$($(#[$attr])* $scenario),*]);
    };
}

on_every_mix!(
    connect,
    register_automatically,
    search,
    download,
    download_several_mib,
    delete,
    leave,
    two_clients_on_one_host,
    createfile_while_running,
    unknown_command,
    end_of_input_leaves,
    server_lost,
);
