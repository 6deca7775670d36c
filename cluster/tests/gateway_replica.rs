//! A gateway and index replicas on one local nats-server: share, search, delete, rebuild,
//! and a partial answer when a partition has no replica.

mod common;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use napshare_cluster::{
    spawn_replica, Delivery, Gateway, GatewayOptions, ReplicaOptions, ReplicaThread, ShareUpdate,
};
use napshare_core::cluster::{Merged, ShareList, SharedFile};
use napshare_core::server::{ReplyKind, SearchRequest, SearchToken};
use napshare_core::ConnId;

use common::{eventually, Nats};

const LOAD: Duration = Duration::from_secs(10);

fn replica(nats: &Nats, k: u32, p: u32) -> ReplicaThread {
    let mut opts = ReplicaOptions::new(vec![nats.url.clone()], k, p);
    opts.lease_ttl = Duration::from_secs(2);
    let replica = spawn_replica(opts).expect("replica starts");
    replica.wait_loaded(LOAD).expect("replica loaded");
    replica
}

/// A gateway whose answers arrive on a channel.
fn gateway(nats: &Nats) -> (Gateway, mpsc::Receiver<Delivery>) {
    let (tx, rx) = mpsc::channel();
    let opts = GatewayOptions {
        urls: vec![nats.url.clone()],
        lease_ttl: Duration::from_secs(2),
        lease_every: Duration::from_millis(500),
        ..GatewayOptions::default()
    };
    let gateway = Gateway::start(opts, move |d| tx.send(d).is_ok()).expect("gateway starts");
    (gateway, rx)
}

fn list(peer: &str, names: &[&str]) -> ShareList {
    ShareList {
        peer: peer.into(),
        files: names
            .iter()
            .map(|n| SharedFile {
                name: (*n).into(),
                size: 1000,
                hash: None,
            })
            .collect(),
    }
}

/// Searches `pattern` and waits for its answer.
fn search(gateway: &Gateway, rx: &mpsc::Receiver<Delivery>, token: u64, pattern: &str) -> Merged {
    gateway
        .search(&SearchRequest {
            token: SearchToken(token),
            conn: ConnId(1),
            pattern: pattern.into(),
            limit: 100,
            kind: ReplyKind::Classic,
        })
        .expect("not busy");
    loop {
        match rx.recv_timeout(Duration::from_secs(5)).expect("an answer") {
            Delivery::Answered { token: t, merged } if t == SearchToken(token) => return merged,
            _ => {}
        }
    }
}

/// Searches until `ok` holds for the answer (publishing and watching take a moment).
fn search_until(
    gateway: &Gateway,
    rx: &mpsc::Receiver<Delivery>,
    pattern: &str,
    ok: impl Fn(&Merged) -> bool,
) -> Merged {
    let mut token = 1000;
    let mut last = Merged::default();
    eventually(LOAD, || {
        token += 1;
        last = search(gateway, rx, token, pattern);
        ok(&last).then_some(())
    })
    .unwrap_or_else(|| panic!("search {pattern:?} never satisfied: last {last:?}"));
    last
}

fn names(m: &Merged) -> Vec<&str> {
    m.hits.iter().map(|h| h.name.as_str()).collect()
}

#[test]
fn share_search_delete_and_rebuild() {
    let Some(nats) = Nats::start() else { return };
    let p0 = replica(&nats, 0, 1);
    let (gw, rx) = gateway(&nats);
    assert!(gw.id().starts_with('g') && gw.id().len() == 17 && !gw.id().contains('.'));

    gw.share(ShareUpdate {
        session: 1,
        list: Some(list("10.0.0.1", &["song.mp3", "other.ogg"])),
    });
    gw.share(ShareUpdate {
        session: 2,
        list: Some(list("10.0.0.2:6700", &["a song.mp3"])),
    });
    let m = search_until(&gw, &rx, "song", |m| m.hits.len() == 2);
    assert!(m.complete, "{m:?}");
    let mut found = names(&m);
    found.sort();
    assert_eq!(found, ["a song.mp3", "song.mp3"]);
    assert!(m.hits.iter().any(|h| h.peer == "10.0.0.2:6700"));

    // A session that leaves is gone at once.
    gw.share(ShareUpdate {
        session: 2,
        list: None,
    });
    let m = search_until(&gw, &rx, "song", |m| m.hits.len() == 1);
    assert_eq!(names(&m), ["song.mp3"]);

    // A replica started afresh rebuilds the partition from KV.
    p0.stop().expect("clean stop");
    let started = Instant::now();
    let mut opts = ReplicaOptions::new(vec![nats.url.clone()], 0, 1);
    opts.lease_ttl = Duration::from_secs(2);
    let p0 = spawn_replica(opts).expect("replica starts");
    let loaded = p0.wait_loaded(LOAD).expect("loaded");
    assert_eq!(
        (loaded.sessions, loaded.files),
        (1, 2),
        "{loaded:?} after {:?}",
        started.elapsed()
    );
    let m = search_until(&gw, &rx, "song", |m| m.complete && m.hits.len() == 1);
    assert_eq!(names(&m), ["song.mp3"]);

    // A clean exit takes the gateway's sessions out of KV.
    gw.shutdown();
    let (gw2, rx2) = gateway(&nats);
    search_until(&gw2, &rx2, "song", |m| m.complete && m.hits.is_empty());
    drop(p0);
}

#[test]
fn a_partition_without_replica_gives_a_partial_answer_by_the_deadline() {
    let Some(nats) = Nats::start() else { return };
    // Two partitions, a replica for partition 0 only.
    let _p0 = replica(&nats, 0, 2);
    let (gw, rx) = gateway(&nats);
    // Files on some sessions of each partition.
    for session in 0..8 {
        gw.share(ShareUpdate {
            session,
            list: Some(list("10.0.0.9", &[&format!("track{session}.mp3")])),
        });
    }
    // Partition 0 answers and 1 does not: hits, never complete.
    let m = search_until(&gw, &rx, "track", |m| !m.hits.is_empty());
    assert!(!m.complete);
    assert!(m.hits.len() < 8, "some sessions are on partition 1: {m:?}");
    // Answered within about the deadline (100 ms), not a hang.
    let t = Instant::now();
    let m = search(&gw, &rx, 1, "track");
    assert!(!m.complete);
    assert!(
        t.elapsed() < Duration::from_millis(600),
        "{:?}",
        t.elapsed()
    );

    // Partition 1's replica comes: complete.
    let _p1 = replica(&nats, 1, 2);
    let m = search_until(&gw, &rx, "track", |m| m.complete);
    assert_eq!(m.hits.len(), 8);
}

#[test]
fn a_replica_with_another_partition_count_is_refused() {
    let Some(nats) = Nats::start() else { return };
    let _p0 = replica(&nats, 0, 1);
    let other = spawn_replica(ReplicaOptions::new(vec![nats.url.clone()], 0, 3)).expect("thread");
    // It stops by itself with the error; stop() only joins it.
    eventually(LOAD, || other.is_finished().then_some(())).expect("the replica ends");
    let err = other.stop();
    assert!(
        matches!(err, Err(napshare_cluster::Error::PartitionsMismatch { .. })),
        "{err:?}"
    );
}

#[test]
fn searches_before_the_partition_count_is_known_are_answered_empty() {
    let Some(nats) = Nats::start() else { return };
    let (gw, rx) = gateway(&nats);
    let t = Instant::now();
    let m = search(&gw, &rx, 7, "anything");
    assert_eq!(m, Merged::default());
    assert!(t.elapsed() < Duration::from_secs(1));
}

#[test]
fn a_replica_rebuilds_many_sessions_exactly() {
    let Some(nats) = Nats::start() else { return };
    let p0 = replica(&nats, 0, 1);
    let (gw, rx) = gateway(&nats);
    for session in 0..200 {
        let names = [
            format!("x{session}a"),
            format!("x{session}b"),
            format!("x{session}c"),
        ];
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        gw.share(ShareUpdate {
            session,
            list: Some(list("10.0.0.3", &names)),
        });
    }
    // Updated twice, then deleted: only the latest counts.
    for session in 0..50 {
        gw.share(ShareUpdate {
            session,
            list: Some(list("10.0.0.3", &["replaced"])),
        });
        gw.share(ShareUpdate {
            session,
            list: None,
        });
    }
    search_until(&gw, &rx, "x199c", |m| m.hits.len() == 1);
    search_until(&gw, &rx, "x", |m| m.hits.len() == 100 && !m.complete);
    // Wait until the publishers are done (every delete applied) before counting.
    search_until(&gw, &rx, "replaced", |m| m.complete && m.hits.is_empty());
    drop(p0);
    let mut opts = ReplicaOptions::new(vec![nats.url.clone()], 0, 1);
    opts.lease_ttl = Duration::from_secs(2);
    let fresh = spawn_replica(opts).expect("starts");
    let loaded = fresh.wait_loaded(LOAD).expect("loaded");
    assert_eq!((loaded.sessions, loaded.files), (150, 450));
}

#[test]
fn sessions_of_a_gateway_without_lease_are_dropped_and_purged() {
    let Some(nats) = Nats::start() else { return };
    let _p0 = replica(&nats, 0, 1);
    let (gw, rx) = gateway(&nats);
    // A gateway that died without a clean exit: its session is in KV, its lease is not.
    let key = "g00000000deadbeef.1";
    let mut value = Vec::new();
    list("10.0.0.4", &["orphan.mp3"])
        .encode(&mut value)
        .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let store = runtime.block_on(async {
        let client = async_nats::connect(&nats.url).await.unwrap();
        let js = async_nats::jetstream::new(client);
        let store = js.get_key_value("shares-p0").await.unwrap();
        store.put(key, value.into()).await.unwrap();
        store
    });
    // Found at first (it may be seen before the next lease check), gone within the
    // lease check's period or two, and purged from KV.
    let t = Instant::now();
    search_until(&gw, &rx, "orphan", |m| m.hits.is_empty());
    assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());
    let gone = eventually(LOAD, || {
        let entry = runtime.block_on(store.entry(key)).unwrap();
        entry
            .is_none_or(|e| e.operation != async_nats::jetstream::kv::Operation::Put)
            .then_some(())
    });
    assert!(gone.is_some(), "the orphan's key is purged");
    // The live gateway's sessions stay.
    gw.share(ShareUpdate {
        session: 9,
        list: Some(list("10.0.0.5", &["kept.mp3"])),
    });
    search_until(&gw, &rx, "kept", |m| m.hits.len() == 1);
    std::thread::sleep(Duration::from_millis(2500));
    let m = search(&gw, &rx, 1, "kept");
    assert_eq!(m.hits.len(), 1, "a leased gateway's session is not expired");
}

#[test]
fn after_a_nats_outage_the_gateway_asks_for_its_sessions_again() {
    let Some(mut nats) = Nats::start() else {
        return;
    };
    let _p0 = replica(&nats, 0, 1);
    let (gw, rx) = gateway(&nats);
    gw.share(ShareUpdate {
        session: 1,
        list: Some(list("10.0.0.6", &["before.mp3"])),
    });
    search_until(&gw, &rx, "before", |m| m.hits.len() == 1);
    nats.restart(Duration::from_millis(300));
    // Meanwhile searches are answered (from nothing), never hang.
    let back = eventually(Duration::from_secs(15), || {
        rx.try_iter()
            .any(|d| matches!(d, Delivery::Reconnected))
            .then_some(())
    });
    assert!(back.is_some(), "Delivery::Reconnected after the outage");
    // What the host does then: share every session again.
    gw.share(ShareUpdate {
        session: 1,
        list: Some(list("10.0.0.6", &["before.mp3"])),
    });
    search_until(&gw, &rx, "before", |m| m.complete && m.hits.len() == 1);
}

#[test]
fn a_gateway_without_nats_starts_answers_empty_and_stops_promptly() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let (tx, rx) = mpsc::channel();
    let opts = GatewayOptions {
        urls: vec![format!("nats://127.0.0.1:{port}")],
        ..GatewayOptions::default()
    };
    let t = Instant::now();
    let gw = Gateway::start(opts, move |d| tx.send(d).is_ok()).expect("starts anyway");
    gw.share(ShareUpdate {
        session: 1,
        list: Some(list("10.0.0.7", &["waiting.mp3"])),
    });
    let m = search(&gw, &rx, 1, "waiting");
    assert_eq!(m, Merged::default());
    gw.shutdown();
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
}

/// Whatever else writes into a partition's bucket or asks its subject, a replica logs and
/// skips what it cannot read, and goes on answering.
#[test]
fn malformed_values_and_requests_are_skipped() {
    let Some(nats) = Nats::start() else { return };
    let p0 = replica(&nats, 0, 1);
    let (gw, rx) = gateway(&nats);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = async_nats::connect(&nats.url).await.unwrap();
        let js = async_nats::jetstream::new(client.clone());
        let kv = js.get_key_value("shares-p0").await.unwrap();
        let mut good = Vec::new();
        list("10.0.0.3", &["forged.txt"]).encode(&mut good).unwrap();
        kv.put("gjunk.1", "not a share list".into()).await.unwrap();
        kv.put("no-session-number", good.into()).await.unwrap();
        let asked = client.request("search.p0", "not a request".into());
        let reply = tokio::time::timeout(Duration::from_millis(500), asked).await;
        assert!(
            !matches!(reply, Ok(Ok(_))),
            "no answer to a malformed request"
        );
    });
    gw.share(ShareUpdate {
        session: 1,
        list: Some(list("10.0.0.1", &["fine.txt"])),
    });
    let m = search_until(&gw, &rx, ".txt", |m| !m.hits.is_empty());
    assert_eq!(names(&m), ["fine.txt"], "only the well-formed list");
    assert!(!p0.is_finished(), "the replica still runs");
}
