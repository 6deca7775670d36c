//! Liveness between napshare nodes, in the simulation: a client that vanished without
//! closing (no FIN: power loss, a pulled cable, SIGSTOP) leaves the index within the
//! server's idle timeout, while a live but idle client's heartbeat keeps it listed.

use std::time::{Duration, Instant};

use napshare_core::client::ClientEvent;
use napshare_core::server::ServerConfig;
use napshare_core::sim::{Sim, SimConfig};

const IDLE: Duration = Duration::from_secs(30);

fn sim() -> Sim {
    let config = SimConfig {
        seed: 5,
        server: ServerConfig {
            idle_timeout: Some(IDLE),
            ..ServerConfig::default()
        },
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
fn a_silent_client_leaves_the_index_within_the_idle_timeout() {
    let mut sim = sim();
    let quiet = sim.add_client(&[("gone.txt", b"1")]);
    let idle = sim.add_client(&[("here.txt", b"2")]);
    let asker = sim.add_client(&[]);
    sim.settle();
    assert_eq!(search(&mut sim, asker, ".txt"), ["gone.txt", "here.txt"]);

    // `quiet` stops dead without closing; `idle` just has nothing to say for a long time.
    sim.stall(quiet, true);
    live_for(&mut sim, IDLE + Duration::from_secs(2));
    let names = search(&mut sim, asker, ".txt");
    assert_eq!(
        names,
        ["here.txt"],
        "within the idle timeout the silent client is gone"
    );

    // Long after, the idle client is still there: its pings kept it.
    live_for(&mut sim, 3 * IDLE);
    assert_eq!(search(&mut sim, asker, ".txt"), ["here.txt"]);
    let _ = idle;
}
