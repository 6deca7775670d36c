//! The NATS test harness itself: a real three-node JetStream cluster starts, survives
//! losing a node (electing a new meta leader if it lost the leader) and takes a restarted
//! node back. Checked through the logs and the `INFO` line each server sends on connect,
//! since the tests crate has no NATS client.

use napshare_tests::nats::{require_nats, server_info, NatsCluster};

/// Node `i`'s `INFO`: a JetStream server of our cluster, routed to exactly `peers`' ports.
fn assert_info(cluster: &NatsCluster, i: usize, peers: &[usize]) {
    let info = server_info(cluster.addr(i))
        .unwrap_or_else(|e| panic!("INFO from {}: {e}\n{}", cluster.name(i), cluster.log(i)));
    assert_eq!(info["jetstream"], true, "{info}");
    assert_eq!(info["server_name"], cluster.name(i), "{info}");
    assert_eq!(info["cluster"], "napshare", "{info}");
    let mut urls: Vec<&str> = info["connect_urls"]
        .as_array()
        .expect("connect_urls")
        .iter()
        .map(|u| u.as_str().expect("url"))
        .collect();
    urls.sort();
    let mut want: Vec<String> = peers.iter().map(|&p| cluster.addr(p).to_string()).collect();
    want.sort();
    assert_eq!(urls, want, "{info}");
}

#[test]
fn cluster_starts_with_jetstream_and_a_meta_leader() {
    if !require_nats() {
        return;
    }
    let mut cluster = NatsCluster::start();
    let urls = cluster.urls();
    assert_eq!(urls.len(), 3);
    assert_eq!(cluster.url_list(), urls.join(","));
    for (i, url) in urls.iter().enumerate() {
        assert_eq!(*url, format!("nats://{}", cluster.addr(i)));
        assert_info(&cluster, i, &[0, 1, 2]);
        assert!(cluster.log(i).contains("Server is ready"));
    }
    let leader = cluster.wait_leader();
    let leader_log = cluster.log(leader);
    assert!(
        leader_log.contains("Self is new JetStream cluster metadata leader"),
        "{leader_log}"
    );
}

#[test]
fn killing_the_leader_elects_another_and_restart_rejoins() {
    if !require_nats() {
        return;
    }
    let mut cluster = NatsCluster::start();
    let old = cluster.wait_leader();
    cluster.kill(old);
    assert!(!cluster.is_running(old));
    let survivors: Vec<usize> = (0..3).filter(|&i| i != old).collect();

    let new = cluster.wait_leader();
    assert_ne!(new, old);
    for &i in &survivors {
        assert_info(&cluster, i, &survivors);
    }
    assert!(std::net::TcpStream::connect(cluster.addr(old)).is_err());

    cluster.restart(old);
    assert!(cluster.is_running(old));
    for i in 0..3 {
        assert_info(&cluster, i, &[0, 1, 2]);
    }
    // The log keeps both runs. A rejoining node may cause another election, so any
    // running leader will do.
    let log = cluster.log(old);
    assert_eq!(log.matches("Starting nats-server").count(), 2, "{log}");
    cluster.wait_leader();
}

#[test]
fn killing_a_follower_keeps_the_leader() {
    if !require_nats() {
        return;
    }
    let mut cluster = NatsCluster::start();
    let leader = cluster.wait_leader();
    let follower = (leader + 1) % 3;
    cluster.kill(follower);
    assert_eq!(cluster.wait_leader(), leader);
    let survivors: Vec<usize> = (0..3).filter(|&i| i != follower).collect();
    for &i in &survivors {
        assert_info(&cluster, i, &survivors);
    }
    cluster.restart(follower);
    cluster.wait_leader();
}
