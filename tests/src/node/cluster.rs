//! A napshare cluster of real processes: gateways (`napshare server --nats`) and index
//! replicas (`napshare index`) on a NATS cluster the test started ([`crate::nats`]).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::command::NodeProc;
use super::output::starts_with;
use super::runtime::Runtime;
use super::server::ServerProc;
use super::TIMEOUT;

/// Gateways and replicas of one cluster; every process is killed when dropped.
pub struct ClusterNet {
    nats: String,
    partitions: u32,
    pub gateways: Vec<ServerProc>,
    /// `replicas[k]`: the replicas of partition `k` that the test has not killed.
    pub replicas: Vec<Vec<NodeProc>>,
}

impl ClusterNet {
    /// Starts `per_partition` replicas of each of `partitions` partitions (each ready),
    /// then one gateway per runtime in `gateways`, on the NATS cluster at `nats` (URLs,
    /// comma-separated).
    pub fn start(nats: &str, gateways: &[Runtime], partitions: u32, per_partition: usize) -> Self {
        let mut net = Self {
            nats: nats.to_owned(),
            partitions,
            gateways: Vec::new(),
            replicas: (0..partitions).map(|_| Vec::new()).collect(),
        };
        for k in 0..partitions {
            for i in 0..per_partition {
                // Both runtimes' binaries run the same replica; alternate them anyway.
                let runtime = Runtime::ALL[i % Runtime::ALL.len()];
                net.start_replica(k, runtime);
            }
        }
        for &runtime in gateways {
            net.start_gateway(runtime);
        }
        net
    }

    /// Starts one more replica of partition `k` and waits until it has caught up.
    pub fn start_replica(&mut self, k: u32, runtime: Runtime) {
        let part = format!("{k}/{}", self.partitions);
        let args = ["index", "--nats", &self.nats, "--partition", &part];
        let mut replica = NodeProc::start(runtime, &args, false);
        replica
            .out
            .expect_line(starts_with(format!("partition {part} ready")), TIMEOUT);
        self.replicas[k as usize].push(replica);
    }

    /// Starts one more gateway.
    pub fn start_gateway(&mut self, runtime: Runtime) -> SocketAddr {
        let args = ["--listen", "127.0.0.1:0", "--nats", &self.nats];
        let gateway = ServerProc::start_with(runtime, &args);
        let addr = gateway.addr();
        self.gateways.push(gateway);
        addr
    }

    /// Where the clients of gateway `i` connect.
    pub fn gateway(&self, i: usize) -> SocketAddr {
        self.gateways[i].addr()
    }
}

/// The names `napshare search --json PATTERN` finds through the server at `server`, with
/// how long the search took.
pub fn search_names(server: SocketAddr, pattern: &str) -> (BTreeSet<String>, Duration) {
    let started = Instant::now();
    let (status, stdout, stderr) = NodeProc::run(
        Runtime::Mio,
        &["search", "--server", &server.to_string(), "--json", pattern],
    );
    let took = started.elapsed();
    // 0: found; 3: nothing found.
    assert!(
        matches!(status.code(), Some(0 | 3)),
        "search failed: {status}\n{stdout}{stderr}"
    );
    let json: serde_json::Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {stdout:?} {stderr}"));
    let names = json["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["name"].as_str().expect("a name").to_owned())
        .collect();
    (names, took)
}

/// Searches through `server` until `want` holds of the names found, for at most
/// `within`; returns the names found last and whether `want` held.
pub fn search_until(
    server: SocketAddr,
    pattern: &str,
    within: Duration,
    mut want: impl FnMut(&BTreeSet<String>) -> bool,
) -> (BTreeSet<String>, bool) {
    let deadline = Instant::now() + within;
    loop {
        let (names, _) = search_names(server, pattern);
        if want(&names) {
            return (names, true);
        }
        if Instant::now() >= deadline {
            return (names, false);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
