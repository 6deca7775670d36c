//! Liveness between napshare nodes, in the simulation with the default settings: a client
//! that vanished without closing (no FIN: power loss, a pulled cable, SIGSTOP) leaves the
//! index within [`FROZEN_BOUND`] (30 s), while a live but idle client's heartbeat keeps it
//! listed. Then the same with real processes on each runtime, with a shorter
//! `--idle-timeout`.

use std::time::{Duration, Instant};

use napshare_core::client::ClientEvent;
use napshare_core::server::{ServerConfig, FROZEN_BOUND};
use napshare_tests::sim::{Sim, SimConfig};

fn sim() -> Sim {
    let config = SimConfig {
        seed: 5,
        server: ServerConfig::default(),
        ..SimConfig::default()
    };
    Sim::new(Instant::now(), config)
}

/// Lets `total` of virtual time pass in small steps, delivering what is sent meanwhile.
fn live_for(sim: &mut Sim, total: Duration) {
    let step = Duration::from_secs(1);
    let mut passed = Duration::ZERO;
    while passed < total {
        sim.advance(step);
        sim.settle();
        passed += step;
    }
}

/// The names client `i` finds for `pattern`, asked and answered without moving the clock.
fn search(sim: &mut Sim, i: usize, pattern: &str) -> Vec<String> {
    sim.command_line(i, &format!("SEARCH {pattern}")).unwrap();
    sim.settle();
    match sim.events(i).last() {
        Some(ClientEvent::SearchDone { hits, .. }) => hits.iter().map(|h| h.name.clone()).collect(),
        other => panic!("no search result: {other:?}"),
    }
}

#[test]
fn by_default_a_silent_client_leaves_the_index_within_30_s() {
    let mut sim = sim();
    let quiet = sim.add_client(&[("gone.txt", b"1")]);
    let idle = sim.add_client(&[("here.txt", b"2")]);
    let asker = sim.add_client(&[]);
    sim.settle();
    assert_eq!(search(&mut sim, asker, ".txt"), ["gone.txt", "here.txt"]);

    // `quiet` stops dead without closing; `idle` just has nothing to say for a long time.
    sim.stall(quiet, true);
    live_for(&mut sim, FROZEN_BOUND);
    let names = search(&mut sim, asker, ".txt");
    assert_eq!(names, ["here.txt"], "within 30 s the silent client is gone");

    // Long after, the idle client is still there: its pings kept it.
    live_for(&mut sim, 3 * FROZEN_BOUND);
    assert_eq!(search(&mut sim, asker, ".txt"), ["here.txt"]);
    let _ = idle;
}

mod processes {
    //! The same with real processes: a napshare client stopped with SIGSTOP (it can neither
    //! ping nor close) leaves the search results within the server's idle timeout.

    use std::time::{Duration, Instant};

    use napshare_tests::node::{ClientProc, Runtime, ServerProc};

    /// A client stopped with SIGSTOP, continued (then killed) however the test ends.
    struct Stopped(ClientProc);

    impl Stopped {
        fn stop(client: ClientProc) -> Self {
            client.signal("STOP");
            Self(client)
        }
    }

    impl Drop for Stopped {
        fn drop(&mut self) {
            self.0.signal("CONT");
        }
    }

    /// The default idle timeout scaled down to 3 s (the defaults are the simulation's test
    /// above and the core's unit tests): the same bound, from a real SIGSTOP.
    fn a_stopped_client_is_removed_within_the_bound(rt: Runtime) {
        let idle = 3;
        let server = ServerProc::start_with(
            rt,
            &[
                "--listen",
                "127.0.0.1:0",
                "--idle-timeout",
                &idle.to_string(),
            ],
        );
        let frozen = ClientProc::joined(rt, server.addr(), &[("frozen.txt", b"f")]);
        let mut other = ClientProc::joined(rt.other(), server.addr(), &[("alive.txt", b"a")]);
        assert_eq!(other.search(".txt").len(), 2);
        let _stopped = Stopped::stop(frozen);
        let since = Instant::now();
        loop {
            let names: Vec<String> = other.search(".txt").into_iter().map(|h| h.name).collect();
            if names == ["alive.txt"] {
                break;
            }
            // The bound is the idle timeout; allow for a loaded machine on top.
            assert!(
                since.elapsed() < Duration::from_secs(idle + 10),
                "still listed: {names:?}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        // The live, idle client is still there a while later: its pings kept it.
        std::thread::sleep(Duration::from_secs(idle + 1));
        assert_eq!(other.search("alive").len(), 1);
    }

    #[test]
    fn mio() {
        a_stopped_client_is_removed_within_the_bound(Runtime::Mio);
    }

    #[test]
    fn smol() {
        a_stopped_client_is_removed_within_the_bound(Runtime::Smol);
    }
}
