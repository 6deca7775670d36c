//! napshare speaks the seed's classic protocol (PROTOCOL-classic.md) byte for byte, over
//! real sockets:
//!
//! - the index server, driven by hand over raw TCP: the seed's transcript, then line
//!   framing the seed got wrong (split and merged writes, `\r\n`, blank lines, overlong
//!   lines), names with spaces, bad lines, `JOIN ip:port`, files leaving with their owner;
//! - a client's file server, driven by hand: every `GET` range form, and refusals that
//!   close with no bytes (path traversal, names not shared);
//! - a napshare client against a stand-in for the seed's server
//!   ([`napshare_tests::classic_server`]), with and without the quirks of other classic
//!   servers (no `ENDSEARCH`, no final `\n`, a reply in one segment).
//!
//! Each test is a function of the [`Runtime`]; the `#[test]`s at the end run it on every
//! runtime.

use std::fs;
use std::net::SocketAddr;
use std::thread;
use std::time::{Duration, Instant};

use napshare_tests::classic_server::{ClassicServer, Knobs};
use napshare_tests::node::{hit, show, test_data, ClientProc, Runtime, ServerProc, Wire};

/// How soon the files of a connection that closed must be gone: far less than any
/// timeout, but the close and the next request travel on different connections.
const SOON: Duration = Duration::from_secs(5);

/// A raw connection that has joined with `join_text`.
fn joined(server: &ServerProc, join_text: &str) -> Wire {
    let mut w = Wire::connect(server.addr());
    w.send(format!("JOIN {join_text}\n"));
    w.expect("CONFIRMJOIN\n");
    w
}

/// Sends `request` and checks the reply is exactly `reply`.
fn ask(w: &mut Wire, request: &str, reply: &str) {
    w.send(request);
    w.expect(reply);
}

fn leave(mut w: Wire) {
    ask(&mut w, "LEAVE\n", "CONFIRMLEAVE\n");
    w.expect_eof();
}

// ---- the index server: exact bytes ----

/// The observed seed transcript, one command per write.
fn seed_transcript(rt: Runtime) {
    let server = ServerProc::start(rt);
    let mut w = Wire::connect(server.addr());
    w.play_seed_transcript();
}

/// The first line must be `JOIN`: anything else closes the connection with no reply.
fn first_line_must_be_join(rt: Runtime) {
    let server = ServerProc::start(rt);
    for first in [
        "SEARCH alpha\n",
        "CREATEFILE a.txt 1\n",
        "HELLO\n",
        "LEAVE\n",
    ] {
        let mut w = Wire::connect(server.addr());
        w.send(first);
        w.expect_eof();
    }
    // The server is still there for others.
    leave(joined(&server, "127.0.0.1"));
}

/// A line the server does not understand gets no reply, registers nothing, and the
/// connection goes on.
fn bad_lines_get_no_reply(rt: Runtime) {
    let server = ServerProc::start(rt);
    let mut w = joined(&server, "127.0.0.1");
    for bad in [
        &b"HELLO\n"[..],
        b"search alpha\n",
        b"CREATEFILE\n",
        b"CREATEFILE alpha.txt\n",
        b"CREATEFILE alpha.txt big\n",
        b"CREATEFILE alpha.txt -1\n",
        b"CREATEFILE alpha.txt 99999999999999999999999\n",
        b"DELETEFILE\n",
        b"LEAVE now\n",
        b"SEARCH \xff\xfe\n",
        b"\x00\x01\x02\n",
    ] {
        w.send(bad);
        // The next reply is the answer to this, so nothing came for the bad line.
        ask(&mut w, "SEARCH alpha\n", "NORESULT\nENDSEARCH\n");
    }
    leave(w);
}

/// Names may hold spaces (the seed's connection dies on one).
fn names_with_spaces(rt: Runtime) {
    let server = ServerProc::start(rt);
    let mut w = joined(&server, "127.0.0.1");
    ask(
        &mut w,
        "CREATEFILE my song.mp3 4096\n",
        "CONFIRMCREATEFILE my song.mp3\n",
    );
    ask(
        &mut w,
        "SEARCH song\n",
        "FILE my song.mp3 127.0.0.1 4096\nENDSEARCH\n",
    );
    ask(
        &mut w,
        "SEARCH y s\n",
        "FILE my song.mp3 127.0.0.1 4096\nENDSEARCH\n",
    );
    ask(
        &mut w,
        "DELETEFILE my song.mp3\n",
        "CONFIRMDELETEFILE my song.mp3\n",
    );
    ask(&mut w, "SEARCH song\n", "NORESULT\nENDSEARCH\n");
    leave(w);
}

/// `LEAVE` and a plain disconnect both take a connection's files, and only its own: two
/// connections from one IP are two owners.
fn files_leave_with_their_owner(rt: Runtime) {
    let server = ServerProc::start(rt);
    let mut a = joined(&server, "127.0.0.1:5001");
    let mut b = joined(&server, "127.0.0.1:5002");
    let mut c = joined(&server, "127.0.0.1:5003");
    ask(
        &mut a,
        "CREATEFILE same.txt 1\n",
        "CONFIRMCREATEFILE same.txt\n",
    );
    ask(
        &mut b,
        "CREATEFILE same.txt 2\n",
        "CONFIRMCREATEFILE same.txt\n",
    );
    ask(
        &mut c,
        "CREATEFILE same.txt 3\n",
        "CONFIRMCREATEFILE same.txt\n",
    );
    let mut watcher = joined(&server, "watcher");
    ask(
        &mut watcher,
        "SEARCH same\n",
        "FILE same.txt 127.0.0.1:5001 1\nFILE same.txt 127.0.0.1:5002 2\n\
         FILE same.txt 127.0.0.1:5003 3\nENDSEARCH\n",
    );
    leave(a);
    ask(
        &mut watcher,
        "SEARCH same\n",
        "FILE same.txt 127.0.0.1:5002 2\nFILE same.txt 127.0.0.1:5003 3\nENDSEARCH\n",
    );
    // B just goes away. Once the server has closed its end, B's files are gone.
    b.shutdown_write();
    b.expect_eof();
    ask(
        &mut watcher,
        "SEARCH same\n",
        "FILE same.txt 127.0.0.1:5003 3\nENDSEARCH\n",
    );
    // C closes its socket abruptly. Its close and the watcher's next request travel on
    // different connections, so either may reach the server first; but the files must go
    // as soon as the close arrives, not after some timeout.
    drop(c);
    let deadline = Instant::now() + SOON;
    loop {
        watcher.send("SEARCH same\n");
        let reply = watcher.read_until(b"ENDSEARCH\n");
        if reply == b"NORESULT\nENDSEARCH\n" {
            break;
        }
        assert_eq!(
            String::from_utf8_lossy(&reply),
            "FILE same.txt 127.0.0.1:5003 3\nENDSEARCH\n"
        );
        assert!(
            Instant::now() < deadline,
            "C's files are still listed {SOON:?} after it closed"
        );
        thread::sleep(Duration::from_millis(20));
    }
    leave(watcher);
}

// ---- the index server: line framing ----

/// A command split across writes, one byte per write, is one command.
fn split_byte_by_byte(rt: Runtime) {
    let server = ServerProc::start(rt);
    let mut w = Wire::connect(server.addr());
    w.send_bytewise("JOIN 127.0.0.1\n");
    w.expect("CONFIRMJOIN\n");
    w.send_bytewise("CREATEFILE alpha.txt 100\n");
    w.expect("CONFIRMCREATEFILE alpha.txt\n");
    w.send_bytewise("SEARCH alpha\n");
    w.expect("FILE alpha.txt 127.0.0.1 100\nENDSEARCH\n");
    w.send_bytewise("LEAVE\n");
    w.expect("CONFIRMLEAVE\n");
    w.expect_eof();
}

/// Several commands in one write are all answered, in order; nothing after `LEAVE` is.
fn several_commands_in_one_write(rt: Runtime) {
    let server = ServerProc::start(rt);
    let mut w = Wire::connect(server.addr());
    w.send(
        "JOIN 127.0.0.1\nCREATEFILE alpha.txt 100\nCREATEFILE beta.txt 7\nSEARCH .txt\n\
         DELETEFILE alpha.txt\nSEARCH .txt\nSEARCH nomatch\nLEAVE\nSEARCH .txt\n",
    );
    w.expect(
        "CONFIRMJOIN\nCONFIRMCREATEFILE alpha.txt\nCONFIRMCREATEFILE beta.txt\n\
         FILE alpha.txt 127.0.0.1 100\nFILE beta.txt 127.0.0.1 7\nENDSEARCH\n\
         CONFIRMDELETEFILE alpha.txt\nFILE beta.txt 127.0.0.1 7\nENDSEARCH\n\
         NORESULT\nENDSEARCH\nCONFIRMLEAVE\n",
    );
    w.expect_eof();
}

/// `\r\n` ends a line like `\n`; the `\r` is in no name.
fn crlf_line_endings(rt: Runtime) {
    let server = ServerProc::start(rt);
    let mut w = Wire::connect(server.addr());
    ask(&mut w, "JOIN 127.0.0.1\r\n", "CONFIRMJOIN\n");
    ask(
        &mut w,
        "CREATEFILE alpha.txt 100\r\n",
        "CONFIRMCREATEFILE alpha.txt\n",
    );
    ask(
        &mut w,
        "SEARCH alpha\r\n",
        "FILE alpha.txt 127.0.0.1 100\nENDSEARCH\n",
    );
    ask(
        &mut w,
        "SEARCH .txt\r\n",
        "FILE alpha.txt 127.0.0.1 100\nENDSEARCH\n",
    );
    ask(
        &mut w,
        "DELETEFILE alpha.txt\r\n",
        "CONFIRMDELETEFILE alpha.txt\n",
    );
    ask(&mut w, "SEARCH alpha\r\n", "NORESULT\nENDSEARCH\n");
    ask(&mut w, "LEAVE\r\n", "CONFIRMLEAVE\n");
    w.expect_eof();
}

/// Blank lines are ignored, before `JOIN` too (the seed closes on one).
fn blank_lines_are_ignored(rt: Runtime) {
    let server = ServerProc::start(rt);
    let mut w = Wire::connect(server.addr());
    ask(&mut w, "\n\r\n  \nJOIN 127.0.0.1\n", "CONFIRMJOIN\n");
    ask(
        &mut w,
        "\n\nCREATEFILE alpha.txt 100\n\n",
        "CONFIRMCREATEFILE alpha.txt\n",
    );
    w.send(" \t \n");
    w.send("\r\n");
    ask(
        &mut w,
        "SEARCH alpha\n",
        "FILE alpha.txt 127.0.0.1 100\nENDSEARCH\n",
    );
    leave(w);
}

/// A line over 4096 bytes gets no reply; the same connection goes on after its end, and
/// other connections are served meanwhile.
fn overlong_lines(rt: Runtime) {
    let server = ServerProc::start(rt);
    let mut w = joined(&server, "127.0.0.1");
    ask(
        &mut w,
        "CREATEFILE alpha.txt 100\n",
        "CONFIRMCREATEFILE alpha.txt\n",
    );
    let mut other = joined(&server, "other");
    let alpha = "FILE alpha.txt 127.0.0.1 100\nENDSEARCH\n";

    // In pieces, past the limit and far beyond, while the other connection is served.
    w.send(format!("SEARCH {}", "a".repeat(3000)));
    ask(&mut other, "SEARCH alpha\n", alpha);
    w.send("b".repeat(3000));
    ask(&mut other, "SEARCH alpha\n", alpha);
    for _ in 0..16 {
        w.send("c".repeat(64 * 1024));
    }
    ask(&mut other, "SEARCH alpha\n", alpha);
    w.send("\n");
    ask(&mut w, "SEARCH alpha\n", alpha);

    // Whole, with a good line behind it in the same write.
    w.send(format!("CREATEFILE {} 1\nSEARCH alpha\n", "x".repeat(5000)));
    w.expect(alpha);
    ask(&mut w, "SEARCH xxx\n", "NORESULT\nENDSEARCH\n");

    // Just under the limit is fine: a 4000-byte name.
    let name = "n".repeat(4000);
    ask(
        &mut w,
        &format!("CREATEFILE {name} 1\n"),
        &format!("CONFIRMCREATEFILE {name}\n"),
    );
    leave(w);
    leave(other);
}

// ---- the index server: the peer address in FILE lines ----

/// `FILE` lines show the IP the server saw, with the port of `JOIN ip:port` when there is
/// one that is not the classic 1235; a repeated `JOIN` moves the files.
fn join_text_and_file_lines(rt: Runtime) {
    let server = ServerProc::start(rt);
    let mut watcher = joined(&server, "127.0.0.1");
    for (join, shown) in [
        ("127.0.0.1:4000", "127.0.0.1:4000"),
        ("10.1.2.3:4001", "127.0.0.1:4001"),
        ("10.1.2.3", "127.0.0.1"),
        ("alice", "127.0.0.1"),
        ("my-host:4002", "127.0.0.1:4002"),
        ("127.0.0.1:1235", "127.0.0.1"),
    ] {
        let mut w = joined(&server, join);
        ask(&mut w, "CREATEFILE f.txt 9\n", "CONFIRMCREATEFILE f.txt\n");
        ask(
            &mut watcher,
            "SEARCH f.txt\n",
            &format!("FILE f.txt {shown} 9\nENDSEARCH\n"),
        );
        leave(w);
    }
    let mut w = joined(&server, "127.0.0.1:4000");
    ask(&mut w, "CREATEFILE f.txt 9\n", "CONFIRMCREATEFILE f.txt\n");
    ask(&mut w, "JOIN 127.0.0.1:4005\n", "CONFIRMJOIN\n");
    ask(
        &mut watcher,
        "SEARCH f.txt\n",
        "FILE f.txt 127.0.0.1:4005 9\nENDSEARCH\n",
    );
    leave(w);
    leave(watcher);
}

// ---- a client's file server ----

/// What the file server at `peer` sends for `request` before it closes.
fn get(peer: SocketAddr, request: &str) -> Vec<u8> {
    let mut w = Wire::connect(peer);
    w.send(request);
    w.read_to_end()
}

/// Every `GET` form: `start`, `start-end` (inclusive), `start-`, `start end`; names with
/// spaces; ranges past the end are cut.
fn get_range_forms(rt: Runtime) {
    let server = ServerProc::start(rt);
    let data = test_data(1000, 7);
    let hello = b"hello, world";
    let a = ClientProc::joined(
        rt,
        server.addr(),
        &[("data.bin", &data), ("my file.txt", hello)],
    );
    let peer = a.peer_addr();
    let cases: &[(&str, &[u8])] = &[
        ("GET data.bin 0\n", &data),
        ("GET data.bin 10\n", &data[10..]),
        ("GET data.bin 10-19\n", &data[10..=19]),
        ("GET data.bin 10-\n", &data[10..]),
        ("GET data.bin 10 19\n", &data[10..=19]),
        ("GET data.bin 0-0\n", &data[..1]),
        ("GET data.bin 999\n", &data[999..]),
        ("GET data.bin 990-5000\n", &data[990..]),
        ("GET data.bin 1000\n", b""),
        ("GET data.bin 0\r\n", &data),
        ("GET my file.txt 0\n", hello),
        ("GET my file.txt 7\n", b"world"),
        ("GET my file.txt 7-11\n", b"world"),
        ("GET my file.txt 7 11\n", b"world"),
        ("GET my file.txt 0-4\n", b"hello"),
    ];
    for (request, expected) in cases {
        let got = get(peer, request);
        assert!(
            got == *expected,
            "{request:?}: got {} bytes, expected {}",
            got.len(),
            expected.len()
        );
    }
    // One byte per write.
    let mut w = Wire::connect(peer);
    w.send_bytewise("GET my file.txt 7-11\n");
    assert_eq!(w.read_to_end(), b"world");
}

/// `GET`s the file server refuses are answered by a close with no bytes (the classic error
/// signal): names outside the shared folder, names not shared (even when the file is in the
/// folder), malformed ranges. Lines that are not `GET` at all never get file bytes either.
fn get_refusals(rt: Runtime) {
    let server = ServerProc::start(rt);
    let mut a = ClientProc::joined(rt, server.addr(), &[("data.bin", b"0123456789")]);
    // In the folder but never shared.
    fs::write(a.shared_dir().join("later.txt"), b"secret").unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink("/etc/passwd", a.shared_dir().join("passwd")).unwrap();
    // Shared, then unshared.
    fs::write(a.shared_dir().join("gone.txt"), b"gone").unwrap();
    a.send("CREATEFILE gone.txt");
    a.expect("sharing gone.txt");
    a.send("DELETEFILE gone.txt");
    a.expect("stopped sharing gone.txt");
    let peer = a.peer_addr();
    for request in [
        "GET ../../etc/passwd 0\n",
        "GET /etc/passwd 0\n",
        "GET ../shared/data.bin 0\n",
        "GET ./data.bin 0\n",
        "GET passwd 0\n",
        "GET later.txt 0\n",
        "GET gone.txt 0\n",
        "GET nothing.txt 0\n",
        "GET data.bin\n",
        "GET data.bin x\n",
        "GET data.bin -3\n",
        "GET data.bin 5-2\n",
        "GET data.bin 0 x\n",
        "GET  0\n",
    ] {
        let got = get(peer, request);
        assert!(
            got.is_empty(),
            "{request:?} got {} bytes: {:?}",
            got.len(),
            String::from_utf8_lossy(&got)
        );
    }
    // Not requests at all: a close with no bytes, the classic error, never an error text
    // a classic downloader could take for the file.
    for request in ["PUT data.bin 0\n", "get data.bin 0\n", "\n", "data.bin\n"] {
        let mut w = Wire::connect(peer);
        w.send(request);
        w.shutdown_write();
        let got = w.read_to_end();
        assert!(got.is_empty(), "{request:?} got {}", show(&got));
    }
    // And it still serves what it shares.
    assert_eq!(get(peer, "GET data.bin 0\n"), b"0123456789");
}

/// A file that was shared and then replaced by a symlink to a file outside the shared
/// folder is not served: not by name (`GET`), not by a later download.
fn a_shared_file_replaced_by_a_symlink_is_not_served(rt: Runtime) {
    let server = ServerProc::start(rt);
    let a = ClientProc::joined(rt, server.addr(), &[("data.bin", b"0123456789")]);
    let outside = tempfile::tempdir().unwrap();
    let canary = outside.path().join("canary.txt");
    fs::write(&canary, b"CANARY secret outside the shared folder").unwrap();
    let shared = a.shared_dir().join("data.bin");
    fs::remove_file(&shared).unwrap();
    std::os::unix::fs::symlink(&canary, &shared).unwrap();
    for request in ["GET data.bin 0\n", "GET data.bin 0-5\n"] {
        let got = get(a.peer_addr(), request);
        assert!(got.is_empty(), "{request:?} got {}", show(&got));
    }
    let mut b = ClientProc::joined(rt.other(), server.addr(), &[]);
    b.download(&a.peer_addr().to_string(), "data.bin")
        .unwrap_err();
    assert!(!b.downloads_dir().join("data.bin").exists());
}

/// A classic downloader that shuts down its sending side after `GET` (as `nc -N` does)
/// still gets the whole file, and a blank line before the `GET` changes nothing.
fn get_from_a_half_closed_peer(rt: Runtime) {
    let server = ServerProc::start(rt);
    let data = test_data(8 * 1024 * 1024, 11);
    let a = ClientProc::joined(rt, server.addr(), &[("big.bin", &data)]);
    for request in ["GET big.bin 0\n", "\r\nGET big.bin 0\n"] {
        let mut w = Wire::connect(a.peer_addr());
        w.send(request);
        w.shutdown_write();
        let got = w.read_to_end();
        assert!(
            got == data,
            "{request:?}: got {} of {} bytes",
            got.len(),
            data.len()
        );
    }
}

// ---- requests with no line ending ----

/// "Some implementations send no line ending at all and just wait for the reply"
/// (PROTOCOL-classic.md): the server must answer such a request.
fn server_answers_a_request_without_line_ending(rt: Runtime) {
    let server = ServerProc::start(rt);
    let mut w = Wire::connect(server.addr());
    ask(&mut w, "JOIN 127.0.0.1", "CONFIRMJOIN\n");
    ask(
        &mut w,
        "CREATEFILE alpha.txt 100",
        "CONFIRMCREATEFILE alpha.txt\n",
    );
    ask(
        &mut w,
        "SEARCH alpha",
        "FILE alpha.txt 127.0.0.1 100\nENDSEARCH\n",
    );
    ask(&mut w, "LEAVE", "CONFIRMLEAVE\n");
    w.expect_eof();
}

/// The same for a `GET` sent to a client's file server with no line ending.
fn file_server_answers_a_get_without_line_ending(rt: Runtime) {
    let server = ServerProc::start(rt);
    let a = ClientProc::joined(rt, server.addr(), &[("data.bin", b"0123456789")]);
    let mut w = Wire::connect(a.peer_addr());
    w.send("GET data.bin 3");
    w.expect("3456789");
    w.expect_eof();
}

// ---- a napshare client against the seed's server ----

/// A napshare client joins, shares, searches and downloads with a classic server that
/// behaves as `knobs` say, and never sends it two requests in one segment.
fn client_against_classic_server(rt: Runtime, knobs: Knobs) {
    let fake = ClassicServer::start(knobs).unwrap();
    let data = test_data(200_000, 9);
    let mut a = ClientProc::joined(
        rt,
        fake.addr(),
        &[("alpha.txt", b"hello alpha"), ("data.bin", &data)],
    );
    let mut b = ClientProc::joined(rt, fake.addr(), &[("beta.txt", b"b")]);

    // The seed lists IPs only, with no port.
    assert_eq!(b.search("alpha"), vec![hit("alpha.txt", "127.0.0.1", 11)]);
    let mut all = b.search(".");
    all.sort_by(|x, y| x.name.cmp(&y.name));
    assert_eq!(
        all,
        vec![
            hit("alpha.txt", "127.0.0.1", 11),
            hit("beta.txt", "127.0.0.1", 1),
            hit("data.bin", "127.0.0.1", data.len()),
        ]
    );
    assert_eq!(b.search("nomatch"), vec![]);
    assert_eq!(b.search("ALPHA"), vec![]);

    // The user names A's file server, whose port the seed does not list.
    let peer = a.peer_addr().to_string();
    b.download(&peer, "data.bin").unwrap();
    assert!(fs::read(b.downloads_dir().join("data.bin")).unwrap() == data);

    a.send("DELETEFILE alpha.txt");
    a.expect("stopped sharing alpha.txt");
    assert_eq!(b.search("alpha"), vec![]);
    b.leave();

    let received = fake.received();
    for r in &received {
        let text = String::from_utf8_lossy(&r.bytes);
        let lines = r.bytes.iter().filter(|&&c| c == b'\n').count();
        // An empty recv is a connection's end.
        assert!(
            r.bytes.is_empty() || (lines == 1 && r.bytes.ends_with(b"\n")),
            "connection {} sent {text:?} as one segment; the seed reads one request per recv()",
            r.conn
        );
    }
    // Each session starts with its JOIN, naming the client's file server.
    for (conn, c) in [&a, &b].into_iter().enumerate() {
        let first = received.iter().find(|r| r.conn == conn).unwrap();
        let first = String::from_utf8_lossy(&first.bytes);
        let join = format!("JOIN 127.0.0.1:{}", c.peer_addr().port());
        assert!(
            first.starts_with(&join) && first.ends_with('\n'),
            "connection {conn} began with {first:?}, not {join:?}"
        );
    }
}

fn classic_server_seed(rt: Runtime) {
    client_against_classic_server(rt, Knobs::SEED);
}

fn classic_server_without_endsearch(rt: Runtime) {
    client_against_classic_server(
        rt,
        Knobs {
            end_search: false,
            ..Knobs::SEED
        },
    );
}

fn classic_server_without_final_newline(rt: Runtime) {
    client_against_classic_server(
        rt,
        Knobs {
            final_newline: false,
            ..Knobs::SEED
        },
    );
}

fn classic_server_in_one_segment(rt: Runtime) {
    client_against_classic_server(
        rt,
        Knobs {
            one_segment: true,
            ..Knobs::SEED
        },
    );
}

fn classic_server_with_every_quirk(rt: Runtime) {
    client_against_classic_server(
        rt,
        Knobs {
            final_newline: false,
            one_segment: true,
            ..Knobs::NEVER_ENDS
        },
    );
}

/// Against a classic server that never ends a search (the matching `FILE` lines, and
/// nothing at all when nothing matches), every wait is bounded: `DOWNLOAD peer name` starts
/// and completes whether the server lists the name or not (the classic peer protocol needs
/// only the name), the commands typed after it are answered, and `LEAVE` exits well
/// within the reply timeout. (The tests name peers as `ip:port`: a plain `ip` means the
/// classic port 1235, which a test cannot count on having.)
fn classic_server_that_never_ends_a_search(rt: Runtime) {
    let bound = napshare_core::client::REPLY_TIMEOUT / 2;
    let fake = ClassicServer::start(Knobs::NEVER_ENDS).unwrap();
    // C is listed on another server only: to `fake` its files are unknown.
    let elsewhere = ClassicServer::start(Knobs::NEVER_ENDS).unwrap();
    let (listed, unlisted, late) = (test_data(150_000, 3), test_data(90_000, 4), b"late");
    let a = ClientProc::joined(rt, fake.addr(), &[("listed.bin", &listed)]);
    let c = ClientProc::joined(
        rt.other(),
        elsewhere.addr(),
        &[("unlisted.bin", &unlisted), ("late.txt", late)],
    );
    let mut b = ClientProc::joined(rt, fake.addr(), &[]);

    // Found at the server.
    b.download(&a.peer_addr().to_string(), "listed.bin")
        .unwrap();
    assert!(fs::read(b.downloads_dir().join("listed.bin")).unwrap() == listed);
    // Not found at the server: the lookup ends with nothing, and the peer is asked anyway.
    b.download(&c.peer_addr().to_string(), "unlisted.bin")
        .unwrap();
    assert!(fs::read(b.downloads_dir().join("unlisted.bin")).unwrap() == unlisted);

    // Later commands are answered, with results and without.
    assert_eq!(
        b.search("listed"),
        vec![hit("listed.bin", "127.0.0.1", listed.len())]
    );
    assert_eq!(b.search("nomatch"), vec![]);

    // Piped in together, as a script would: the download is looked up, fetched, then the
    // client leaves, promptly.
    let since = Instant::now();
    b.send(&format!("DOWNLOAD {} late.txt", c.peer_addr()));
    b.send("SEARCH nothing");
    b.send("LEAVE");
    let out = b.out.read_to_end(bound);
    for wanted in [
        "downloaded late.txt: ",
        "search \"nothing\": 0 results",
        "left the network",
    ] {
        assert!(
            out.iter().any(|l| l.starts_with(wanted)),
            "no line starting with {wanted:?} in {out:?}"
        );
    }
    assert!(b.wait_exit(bound).success());
    assert!(
        since.elapsed() < bound,
        "LEAVE waited {:?}, as long as the reply timeout",
        since.elapsed()
    );
    assert_eq!(fs::read(b.downloads_dir().join("late.txt")).unwrap(), late);
}

/// A thin `#[test]` per test function and runtime: `mod mio { fn seed_transcript() .. }`.
macro_rules! on_runtime {
    ($module:ident, $rt:expr, [$($(#[$attr:meta])* $test:ident),* $(,)?]) => {
        mod $module {
            $(
                #[test]
                $(#[$attr])*
                fn $test() {
                    super::$test($rt)
                }
            )*
        }
    };
}

/// Runs every test on each runtime.
macro_rules! on_every_runtime {
    ($($(#[$attr:meta])* $test:ident),* $(,)?) => {
        on_runtime!(mio, napshare_tests::node::Runtime::Mio, [$($(#[$attr])* $test),*]);
        on_runtime!(smol, napshare_tests::node::Runtime::Smol, [$($(#[$attr])* $test),*]);
    };
}

on_every_runtime!(
    seed_transcript,
    first_line_must_be_join,
    bad_lines_get_no_reply,
    names_with_spaces,
    files_leave_with_their_owner,
    split_byte_by_byte,
    several_commands_in_one_write,
    crlf_line_endings,
    blank_lines_are_ignored,
    overlong_lines,
    join_text_and_file_lines,
    get_range_forms,
    get_refusals,
    get_from_a_half_closed_peer,
    a_shared_file_replaced_by_a_symlink_is_not_served,
    server_answers_a_request_without_line_ending,
    file_server_answers_a_get_without_line_ending,
    classic_server_seed,
    classic_server_without_endsearch,
    classic_server_without_final_newline,
    classic_server_in_one_segment,
    classic_server_with_every_quirk,
    classic_server_that_never_ends_a_search,
);
