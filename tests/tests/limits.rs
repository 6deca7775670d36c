//! Server limits, each exceeded by one connection while the others carry on, for each
//! runtime: a client that stops reading is dropped, connections past the maximum are
//! closed as they come, a connection that never joins is closed.

use std::io::Read;
use std::time::{Duration, Instant};

use napshare_tests::node::{ClientProc, Runtime, ServerProc, Wire};

/// A client that asks and asks but never reads its replies is dropped once more than the
/// queued-bytes limit waits for it; everyone else is served as before.
fn a_client_that_stops_reading_is_dropped(rt: Runtime) {
    let server = ServerProc::start_with(rt, &["--listen", "127.0.0.1:0", "--max-queued", "65536"]);
    let files: Vec<(String, Vec<u8>)> = (0..300)
        .map(|i| {
            (
                format!("a rather long file name number {i:04}.txt"),
                vec![b'x'],
            )
        })
        .collect();
    let shared: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(n, d)| (n.as_str(), d.as_slice()))
        .collect();
    let _a = ClientProc::joined(rt, server.addr(), &shared);
    let mut b = ClientProc::joined(rt.other(), server.addr(), &[]);

    let mut slow = Wire::connect(server.addr());
    slow.send("JOIN 127.0.0.1\n");
    // Each answer is ~15 KB; 4,000 of them are far more than any socket buffers hold.
    let flood = "SEARCH file name\n".repeat(4000);
    let stream = slow.stream();
    stream
        .set_write_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    // The server stops taking our requests or drops us before we finish: either is fine.
    let _ = std::io::Write::write_all(stream, flood.as_bytes());

    // Reading now, we get some replies and then the end: not 4,000 answers.
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut got = Vec::new();
    let started = Instant::now();
    let mut buf = vec![0; 1 << 16];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
        assert!(started.elapsed() < Duration::from_secs(60), "never dropped");
    }
    let answers = got.windows(10).filter(|w| w == b"ENDSEARCH\n").count();
    assert!(
        answers < 4000,
        "all {answers} answers came: the slow client was not dropped"
    );

    // The others did not notice.
    assert_eq!(b.search("number 0042").len(), 1);
}

/// Past `--max-connections`, a new connection is closed at once; the open ones work.
fn connections_past_the_maximum_are_closed(rt: Runtime) {
    let server = ServerProc::start_with(rt, &["--listen", "127.0.0.1:0", "--max-connections", "3"]);
    let mut open: Vec<Wire> = (0..3).map(|_| Wire::connect(server.addr())).collect();
    for w in &mut open {
        w.send("JOIN 127.0.0.1\n");
        w.expect("CONFIRMJOIN\n");
    }
    let mut extra = Wire::connect(server.addr());
    extra.expect_eof();
    open[0].send("SEARCH x\n");
    open[0].expect("NORESULT\nENDSEARCH\n");
}

/// A connection that never sends `JOIN` is closed after `--join-timeout`.
fn a_connection_that_never_joins_is_closed(rt: Runtime) {
    let server = ServerProc::start_with(rt, &["--listen", "127.0.0.1:0", "--join-timeout", "1"]);
    let mut w = Wire::connect(server.addr());
    w.expect_eof();
}

macro_rules! on_runtime {
    ($module:ident, $rt:expr) => {
        mod $module {
            #[test]
            fn a_client_that_stops_reading_is_dropped() {
                super::a_client_that_stops_reading_is_dropped($rt)
            }

            #[test]
            fn connections_past_the_maximum_are_closed() {
                super::connections_past_the_maximum_are_closed($rt)
            }

            #[test]
            fn a_connection_that_never_joins_is_closed() {
                super::a_connection_that_never_joins_is_closed($rt)
            }
        }
    };
}

on_runtime!(mio, napshare_tests::node::Runtime::Mio);
on_runtime!(smol, napshare_tests::node::Runtime::Smol);
