//! Clean shutdown on Ctrl-C and SIGTERM, for each runtime: a client leaves the network
//! (LEAVE, CONFIRMLEAVE) before it exits; the server stops with status 0.

use std::time::Duration;

use napshare_tests::node::{ClientProc, Runtime, ServerProc, TIMEOUT};

fn a_client_leaves_before_it_exits(rt: Runtime, signal: &str) {
    let server = ServerProc::start(rt);
    let mut a = ClientProc::joined(rt, server.addr(), &[("mine.txt", b"m")]);
    let mut b = ClientProc::joined(rt.other(), server.addr(), &[]);
    assert_eq!(b.search("mine").len(), 1);
    a.signal(signal);
    a.expect("left the network");
    assert!(a.wait_exit(TIMEOUT).success(), "status 0 after leaving");
    assert_eq!(b.search("mine"), vec![]);
}

fn sigterm(rt: Runtime) {
    a_client_leaves_before_it_exits(rt, "TERM");
}

fn ctrl_c(rt: Runtime) {
    a_client_leaves_before_it_exits(rt, "INT");
}

fn the_server_stops_on_sigterm(rt: Runtime) {
    let mut server = ServerProc::start(rt);
    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(10)).success());
}

macro_rules! on_runtime {
    ($module:ident, $rt:expr) => {
        mod $module {
            #[test]
            fn a_client_leaves_on_sigterm() {
                super::sigterm($rt)
            }

            #[test]
            fn a_client_leaves_on_ctrl_c() {
                super::ctrl_c($rt)
            }

            #[test]
            fn the_server_stops_on_sigterm() {
                super::the_server_stops_on_sigterm($rt)
            }
        }
    };
}

on_runtime!(mio, napshare_tests::node::Runtime::Mio);
on_runtime!(smol, napshare_tests::node::Runtime::Smol);
