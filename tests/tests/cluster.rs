//! napshare as a cluster, end to end: a real three-node NATS JetStream cluster (three
//! `nats-server` children), gateways and index replicas as real `napshare` processes, and
//! clients on both runtimes. What a user of the network sees: files shared through one
//! gateway are found and downloaded through another; a client that leaves, a gateway
//! that dies or freezes, a replica or a whole partition lost, and a NATS server lost.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use napshare_tests::nats::{require_nats, NatsCluster};
use napshare_tests::node::{
    search_names, search_until, test_data, ClientProc, ClusterNet, Runtime, Wire,
};

/// How long a change may take to reach every replica: the gateway's share batch (0.1 s)
/// plus a KV write and a watch, on a loaded machine.
const SPREAD: Duration = Duration::from_secs(10);

/// How long a change may take when a NATS server was just lost: the streams it led
/// elect a new leader first (raft: 4-9 s), and watches notice a lost consumer by its
/// missed heartbeats.
const SPREAD_AFTER_LOSS: Duration = Duration::from_secs(30);

/// The lease bound of the design (6 s lease + 1 s poll), with room for a loaded machine.
const LEASE_BOUND: Duration = Duration::from_secs(7);
const LEASE_SLACK: Duration = Duration::from_secs(5);

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

/// Clients of gateway A (mio) share; a client of gateway B (smol) finds everything and
/// downloads straight from the peer. Then, in turn: a client leaves (gone at once); one
/// replica of a partition dies (results still complete); both replicas of a partition
/// die (a partial result, on time), and one restarts (rebuilt from KV: complete again);
/// one NATS server dies (nothing lost, and new shares still spread).
#[test]
fn one_network_across_gateways_through_failures() {
    if !require_nats() {
        return;
    }
    let mut nats = NatsCluster::start();
    let mut net = ClusterNet::start(&nats.url_list(), &[Runtime::Mio, Runtime::Smol], 2, 2);
    let (a, b) = (net.gateway(0), net.gateway(1));
    let contents: Vec<Vec<u8>> = (0..6)
        .map(|i| test_data(20_000 + i * 1000, i as u64))
        .collect();
    let names: Vec<String> = (0..6).map(|i| format!("song-{i}.bin")).collect();
    let mut sharers: Vec<ClientProc> = (0..6)
        .map(|i| {
            let runtime = Runtime::ALL[i % 2];
            ClientProc::joined(runtime, a, &[(names[i].as_str(), &contents[i][..])])
        })
        .collect();
    let all: BTreeSet<String> = names.iter().cloned().collect();
    let (found, ok) = search_until(b, "song-", SPREAD, |n| *n == all);
    assert!(ok, "through B, every file shared through A: {found:?}");

    // A classic client of B gets the seed's bytes.
    let mut classic = Wire::connect(b);
    classic.send("JOIN 127.0.0.1\n");
    classic.expect("CONFIRMJOIN\n");
    classic.send("SEARCH song-3.bin\n");
    let peer = sharers[3].peer_addr();
    classic.expect(format!("FILE song-3.bin {peer} 23000\nENDSEARCH\n"));
    classic.send("SEARCH no such thing\n");
    classic.expect("NORESULT\nENDSEARCH\n");

    // Downloaded through B, straight from the peer on A.
    let mut getter = ClientProc::joined(Runtime::Smol, b, &[]);
    let hits = getter.search("song-2.bin");
    assert_eq!(hits.len(), 1, "{hits:?}");
    getter
        .download(&hits[0].peer, "song-2.bin")
        .expect("downloaded through the other gateway");
    let got = std::fs::read(getter.downloads_dir().join("song-2.bin")).unwrap();
    assert!(got == contents[2], "the file arrived whole");

    // A client that leaves is gone from every replica at once (no batch, no lease).
    sharers[5].leave();
    let mut left = all.clone();
    left.remove("song-5.bin");
    let (found, ok) = search_until(b, "song-", Duration::from_secs(2), |n| *n == left);
    assert!(ok, "song-5.bin gone at once: {found:?}");

    // One replica of partition 0 dies: the other answers for it.
    drop(net.replicas[0].remove(0));
    std::thread::sleep(Duration::from_millis(500));
    for _ in 0..5 {
        assert_eq!(
            search_names(b, "song-").0,
            left,
            "complete with one replica gone"
        );
    }

    // Both replicas of partition 1 die: what partition 0 has comes back, on time.
    net.replicas[1].clear();
    std::thread::sleep(Duration::from_millis(500));
    let (partial, took) = search_names(b, "song-");
    assert!(partial.is_subset(&left), "{partial:?}");
    eprintln!(
        "a search with a partition gone: {} of {} files in {took:?}",
        partial.len(),
        left.len()
    );
    assert!(
        net.gateways[1].out.stderr().contains("partial"),
        "the gateway says the result was partial:\n{}",
        net.gateways[1].out.stderr()
    );
    // A restarted replica rebuilds the partition from KV by itself.
    net.start_replica(1, Runtime::Mio);
    let (found, ok) = search_until(b, "song-", SPREAD, |n| *n == left);
    assert!(ok, "complete again after the restart: {found:?}");

    // One NATS server dies: R3 keeps every list, and a new share still spreads.
    nats.kill(0);
    let late = ClientProc::joined(Runtime::Mio, a, &[("late.bin", b"late")]);
    let mut now_all = left.clone();
    now_all.insert("late.bin".into());
    let lost = Instant::now();
    let mut vanished = None;
    let (found, ok) = search_until(b, "", SPREAD_AFTER_LOSS, |n| {
        if !n.is_superset(&left) && vanished.is_none() {
            vanished = Some(n.clone());
        }
        *n == now_all
    });
    eprintln!(
        "with a NATS server lost, a new share spread in {:?}",
        lost.elapsed()
    );
    if !ok {
        for g in &net.gateways {
            eprintln!("{}", g.out.transcript());
        }
        for r in net.replicas.iter().flatten() {
            eprintln!("{}", r.out.transcript());
        }
    }
    assert!(ok, "nothing lost with a NATS server gone: {found:?}");
    assert_eq!(vanished, None, "no file went missing meanwhile");
    drop(late);
}

/// A gateway killed with SIGKILL, and another frozen with SIGSTOP: their clients' files
/// stop matching through the live gateway within the lease bound, and nobody else's do.
#[test]
fn the_files_of_a_dead_or_frozen_gateway_leave_within_the_lease() {
    if !require_nats() {
        return;
    }
    let nats = NatsCluster::start();
    let mut net = ClusterNet::start(
        &nats.url_list(),
        &[Runtime::Mio, Runtime::Smol, Runtime::Mio],
        2,
        1,
    );
    let live = net.gateway(0);
    let _on_live = ClientProc::joined(Runtime::Mio, live, &[("stays.txt", b"s")]);
    let _on_killed = ClientProc::joined(Runtime::Smol, net.gateway(1), &[("killed.txt", b"k")]);
    let _on_frozen = ClientProc::joined(Runtime::Mio, net.gateway(2), &[("frozen.txt", b"f")]);
    let everything = set(&["stays.txt", "killed.txt", "frozen.txt"]);
    let (found, ok) = search_until(live, ".txt", SPREAD, |n| *n == everything);
    assert!(ok, "{found:?}");

    let started = Instant::now();
    net.gateways[1].kill();
    net.gateways[2].signal("STOP");
    let (found, ok) = search_until(live, ".txt", LEASE_BOUND + LEASE_SLACK, |n| {
        *n == set(&["stays.txt"])
    });
    let took = started.elapsed();
    net.gateways[2].signal("CONT");
    assert!(
        ok,
        "only the live gateway's files left after {took:?}: {found:?}"
    );
    eprintln!("a dead and a frozen gateway's files were gone after {took:?}");
}

/// NATS gone altogether: a gateway answers searches at once with nothing (and says why in
/// its log) instead of hanging its clients; when NATS is back, every file is found again
/// without anyone sharing anew.
#[test]
fn a_whole_nats_outage_is_survived() {
    if !require_nats() {
        return;
    }
    let mut nats = NatsCluster::start();
    let net = ClusterNet::start(&nats.url_list(), &[Runtime::Smol, Runtime::Mio], 2, 1);
    let (a, b) = (net.gateway(0), net.gateway(1));
    let _x = ClientProc::joined(Runtime::Mio, a, &[("x.txt", b"x")]);
    let _y = ClientProc::joined(Runtime::Smol, b, &[("y.txt", b"y")]);
    let both = set(&["x.txt", "y.txt"]);
    let (found, ok) = search_until(b, ".txt", SPREAD, |n| *n == both);
    assert!(ok, "{found:?}");

    for i in 0..3 {
        nats.kill(i);
    }
    let (during, took) = search_names(a, ".txt");
    assert!(during.is_empty(), "{during:?}");
    eprintln!("a search with NATS down answered in {took:?}");
    assert!(
        net.gateways[0].out.stderr().contains("NATS unreachable"),
        "{}",
        net.gateways[0].out.transcript()
    );
    // Sessions go on meanwhile, and what is shared during the outage arrives after it.
    let _z = ClientProc::joined(Runtime::Mio, a, &[("z.txt", b"z")]);
    nats.restart_all(&[0, 1, 2]);
    let all = set(&["x.txt", "y.txt", "z.txt"]);
    let (found, ok) = search_until(a, ".txt", SPREAD_AFTER_LOSS, |n| *n == all);
    assert!(ok, "every file again after NATS came back: {found:?}");
}
