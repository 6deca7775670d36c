//! A real three-node NATS JetStream cluster on loopback, for tests of the cluster backend.
//!
//! Every node is a `nats-server` child with its own client and route port (free ports found
//! by binding `127.0.0.1:0`), its own store directory and a log file, all in one temporary
//! directory. A shared config file sets `ping_interval: "2s"` and `ping_max: 3`, the design
//! doc's values, so a frozen peer is declared dead after 6 to 8 s instead of minutes.
//!
//! There is no NATS client here (the tests crate has no async runtime): readiness is read
//! from the logs and from the `INFO` line every server sends first on a client connection,
//! whose `connect_urls` list the client ports of every server it has routes to.
//!
//! Log lines of nats-server 2.9.10 this relies on:
//! - `Server is ready`: printed once the client port listens, but *before* the route port
//!   does, so it alone does not mean the node has joined the cluster;
//! - `Self is new JetStream cluster metadata leader`: this node became the meta leader.
//!   Losing leadership always logs one of `JetStream cluster new metadata leader:
//!   <name>/<cluster>` or `JetStream cluster no metadata leader`, so a node whose last such
//!   line is the first one is the leader. Followers' lines are not used: a node that was a
//!   candidate when another won learns the leader without logging it (raft's
//!   `switchToFollower` does not signal a leader change), so some followers never log one.

use std::env;
use std::fs::{self, OpenOptions};
use std::io::{self, BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// How long starting the cluster or restarting a node may take. Generous: elections take a
/// few seconds, and a loaded CI machine runs several test binaries at once.
pub const NATS_TIMEOUT: Duration = Duration::from_secs(30);

/// Nodes in the cluster: the smallest JetStream cluster that survives losing one.
const NODES: usize = 3;

/// Whole-cluster start attempts: another process may take a port between our probe and
/// nats-server binding it.
const START_ATTEMPTS: usize = 3;

const CLUSTER_NAME: &str = "napshare";

/// Failure detection as the design doc asks: a silent peer is dropped after 3 missed pings.
const CONFIG: &str = "ping_interval: \"2s\"\nping_max: 3\n";

const READY: &str = "Server is ready";
const SELF_LEADER: &str = "Self is new JetStream cluster metadata leader";
const NEW_LEADER: &str = "JetStream cluster new metadata leader: ";
const NO_LEADER: &str = "JetStream cluster no metadata leader";

/// The `nats-server` binary: on `PATH`, else where Debian's package puts it (`/usr/sbin`,
/// often not on a non-root `PATH`).
pub fn nats_server_path() -> Option<PathBuf> {
    let on_path = env::var_os("PATH")
        .map(|p| env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    on_path
        .into_iter()
        .chain(["/usr/sbin", "/usr/local/sbin", "/usr/local/bin"].map(PathBuf::from))
        .map(|dir| dir.join("nats-server"))
        .find(|path| is_executable(path))
}

fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Whether `nats-server` can be found.
pub fn nats_server_available() -> bool {
    nats_server_path().is_some()
}

/// Whether a test needing `nats-server` should run. Without it, a test returns early
/// (saying it was skipped) on a developer's machine, but fails under CI (`CI=true`), where a
/// skipped test would hide that `.ci/run` did not install it.
pub fn require_nats() -> bool {
    if nats_server_available() {
        return true;
    }
    if env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
        panic!(
            "nats-server not found on PATH or in /usr/sbin, and CI=true: \
             CI must install it (apt-get install nats-server; see .ci/run)"
        );
    }
    eprintln!(
        "skipped: nats-server not found on PATH or in /usr/sbin (apt-get install nats-server)"
    );
    false
}

/// The first line a NATS server sends a client, `INFO {...}`, as JSON.
pub fn server_info(addr: SocketAddr) -> io::Result<serde_json::Value> {
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line)?;
    let json = line
        .strip_prefix("INFO ")
        .ok_or_else(|| io::Error::other(format!("not an INFO line: {line:?}")))?;
    serde_json::from_str(json.trim()).map_err(io::Error::other)
}

/// One `nats-server` of the cluster.
struct Node {
    name: String,
    port: u16,
    cluster_port: u16,
    store: PathBuf,
    log_path: PathBuf,
    /// Length of the log when this node was last started: later waits read only what
    /// the current process wrote.
    log_start: u64,
    child: Option<Child>,
}

impl Node {
    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn route_url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.cluster_port)
    }

    /// What the current process logged.
    fn current_log(&self) -> String {
        let bytes = fs::read(&self.log_path).unwrap_or_default();
        let start = (self.log_start as usize).min(bytes.len());
        String::from_utf8_lossy(&bytes[start..]).into_owned()
    }

    /// The last leader change this node logged: `Some(its name)` when it became the
    /// leader, `Some(other)` when it saw `other` win, `None` for no leader or no line yet.
    fn leader_view(&self) -> Option<String> {
        let log = self.current_log();
        let line = log.lines().rfind(|l| {
            l.contains(SELF_LEADER) || l.contains(NEW_LEADER) || l.contains(NO_LEADER)
        })?;
        if line.contains(SELF_LEADER) {
            return Some(self.name.clone());
        }
        let (_, rest) = line.split_once(NEW_LEADER)?;
        // `<server name>/<cluster name>`
        Some(rest.trim().split('/').next()?.to_owned())
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill(); // SIGKILL
            let _ = child.wait();
        }
    }
}

fn read_log(path: &Path) -> String {
    fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// Why a start did not get ready.
enum NotReady {
    /// A node exited, most likely because a probed port was taken meanwhile: try again.
    Exited(usize),
    TimedOut(String),
}

/// A running three-node JetStream cluster; every node is killed when it is dropped.
pub struct NatsCluster {
    binary: PathBuf,
    nodes: Vec<Node>,
    // Last, so the store directories go after the processes using them.
    dir: TempDir,
}

impl NatsCluster {
    /// Starts three nodes and waits until all are ready and routed to each other, and one
    /// of them leads the JetStream meta group. Panics (with the logs' tails) after [`NATS_TIMEOUT`].
    pub fn start() -> NatsCluster {
        let binary = nats_server_path().expect("nats-server not found (see require_nats)");
        for attempt in 1..=START_ATTEMPTS {
            let mut cluster = NatsCluster::spawn(binary.clone());
            match cluster.wait_ready(Instant::now() + NATS_TIMEOUT) {
                Ok(()) => return cluster,
                Err(NotReady::Exited(i)) if attempt < START_ATTEMPTS => {
                    eprintln!(
                        "nats: node n{i} exited while starting (attempt {attempt}), retrying \
                         on new ports:\n{}",
                        tail(&cluster.log(i), 5)
                    );
                }
                Err(NotReady::Exited(i)) => cluster.fail(&format!("node n{i} exited")),
                Err(NotReady::TimedOut(what)) => cluster.fail(&what),
            }
        }
        unreachable!()
    }

    /// Reserves ports, writes the config and starts every node, without waiting.
    fn spawn(binary: PathBuf) -> NatsCluster {
        let dir = tempfile::Builder::new()
            .prefix("napshare-nats-")
            .tempdir()
            .expect("create temporary directory");
        fs::write(dir.path().join("nats.conf"), CONFIG).expect("write nats.conf");
        let ports = free_ports(2 * NODES);
        let nodes = (0..NODES)
            .map(|i| Node {
                name: format!("n{i}"),
                port: ports[2 * i],
                cluster_port: ports[2 * i + 1],
                store: dir.path().join(format!("n{i}")),
                log_path: dir.path().join(format!("n{i}.log")),
                log_start: 0,
                child: None,
            })
            .collect();
        let mut cluster = NatsCluster { binary, nodes, dir };
        for i in 0..NODES {
            cluster.spawn_node(i);
        }
        cluster
    }

    fn spawn_node(&mut self, i: usize) {
        let routes = self
            .nodes
            .iter()
            .enumerate()
            .filter(|&(j, _)| j != i)
            .map(|(_, n)| n.route_url())
            .collect::<Vec<_>>()
            .join(",");
        let config = self.dir.path().join("nats.conf");
        let node = &mut self.nodes[i];
        // Appended to, so a restarted node's log keeps what the killed process wrote.
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log_path)
            .expect("open nats log");
        node.log_start = log.metadata().map(|m| m.len()).unwrap_or(0);
        let err = log.try_clone().expect("clone log handle");
        let child = Command::new(&self.binary)
            .arg("-c")
            .arg(&config)
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &node.port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(&node.store)
            .args(["--server_name", &node.name, "--cluster_name", CLUSTER_NAME])
            .args(["--cluster", &node.route_url(), "--routes", &routes])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.binary.display()));
        node.child = Some(child);
    }

    /// Waits until every running node logged [`READY`], sees every other running node in
    /// its `connect_urls`, and exactly one of them leads the meta group.
    fn wait_ready(&mut self, deadline: Instant) -> Result<(), NotReady> {
        loop {
            for (i, node) in self.nodes.iter_mut().enumerate() {
                if let Some(child) = &mut node.child {
                    if let Ok(Some(_)) = child.try_wait() {
                        node.child = None;
                        return Err(NotReady::Exited(i));
                    }
                }
            }
            let missing = self.not_ready();
            if missing.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(NotReady::TimedOut(format!(
                    "not ready after {NATS_TIMEOUT:?}: {}",
                    missing.join("; ")
                )));
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// What keeps the running nodes from being ready; empty when they are.
    fn not_ready(&self) -> Vec<String> {
        let running: Vec<&Node> = self.nodes.iter().filter(|n| n.child.is_some()).collect();
        let mut expected: Vec<String> = running
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        expected.sort();
        let mut missing = Vec::new();
        for node in &running {
            if !node.current_log().contains(READY) {
                missing.push(format!("{} has not logged {READY:?}", node.name));
                continue;
            }
            match server_info(SocketAddr::from(([127, 0, 0, 1], node.port))) {
                Ok(info) => {
                    let mut urls: Vec<String> = info["connect_urls"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|u| u.as_str().map(str::to_owned))
                        .collect();
                    urls.sort();
                    if urls != expected {
                        missing.push(format!(
                            "{} routes to {urls:?}, not {expected:?}",
                            node.name
                        ));
                    }
                }
                Err(e) => missing.push(format!("{}: no INFO: {e}", node.name)),
            }
        }
        if missing.is_empty() {
            if let Err(e) = self.running_leader() {
                missing.push(e);
            }
        }
        missing
    }

    /// The one running node that says it leads the meta group (see the module docs).
    fn running_leader(&self) -> Result<usize, String> {
        let running = || {
            self.nodes
                .iter()
                .enumerate()
                .filter(|(_, n)| n.child.is_some())
        };
        let claims: Vec<usize> = running()
            .filter(|(_, n)| n.leader_view().as_deref() == Some(n.name.as_str()))
            .map(|(i, _)| i)
            .collect();
        match claims[..] {
            [leader] => Ok(leader),
            _ => {
                let views: Vec<(&str, Option<String>)> = running()
                    .map(|(_, n)| (n.name.as_str(), n.leader_view()))
                    .collect();
                Err(format!(
                    "not exactly one running meta leader; last leader each node logged: \
                     {views:?}"
                ))
            }
        }
    }

    /// Fails the test with `what` and the tail of every node's log.
    fn fail(&self, what: &str) -> ! {
        let mut msg = format!("nats cluster in {}: {what}", self.dir.path().display());
        for (i, node) in self.nodes.iter().enumerate() {
            let state = if node.child.is_some() {
                "running"
            } else {
                "not running"
            };
            msg += &format!(
                "\n--- n{i} ({state}, client {} route {}), last lines of its log:\n{}",
                node.port,
                node.cluster_port,
                tail(&self.log(i), 25)
            );
        }
        panic!("{msg}");
    }

    /// The client URL of every node, `nats://127.0.0.1:<port>`, running or not.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(Node::url).collect()
    }

    /// [`urls`](Self::urls) comma-joined, as NATS clients accept a server list.
    pub fn url_list(&self) -> String {
        self.urls().join(",")
    }

    /// The client address of node `i`.
    pub fn addr(&self, i: usize) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.nodes[i].port))
    }

    /// The server name of node `i` (`n0`, `n1`, `n2`), as logs and `INFO` name it.
    pub fn name(&self, i: usize) -> &str {
        &self.nodes[i].name
    }

    /// Whether node `i` was started and not killed.
    pub fn is_running(&self, i: usize) -> bool {
        self.nodes[i].child.is_some()
    }

    /// Kills node `i` with SIGKILL (no goodbye to its peers) and reaps it.
    pub fn kill(&mut self, i: usize) {
        self.nodes[i].kill();
    }

    /// Starts the killed node `i` again on the same ports and store, and waits until the
    /// cluster is ready again as in [`start`](Self::start).
    pub fn restart(&mut self, i: usize) {
        self.restart_all(&[i]);
    }

    /// Starts the stopped nodes `nodes` again together (as after an outage of all of
    /// them: one alone would wait for the others' routes), then waits until ready.
    pub fn restart_all(&mut self, nodes: &[usize]) {
        for &i in nodes {
            assert!(!self.is_running(i), "restart: n{i} is still running");
            self.spawn_node(i);
        }
        match self.wait_ready(Instant::now() + NATS_TIMEOUT) {
            Ok(()) => {}
            Err(NotReady::Exited(j)) => {
                self.fail(&format!("n{j} exited after restarting {nodes:?}"))
            }
            Err(NotReady::TimedOut(what)) => self.fail(&format!("restarting {nodes:?}: {what}")),
        }
    }

    /// Waits until the running nodes are routed to each other and one of them leads the
    /// meta group (a new one after the leader was killed), and returns its index.
    pub fn wait_leader(&mut self) -> usize {
        match self.wait_ready(Instant::now() + NATS_TIMEOUT) {
            Ok(()) => {}
            Err(NotReady::Exited(j)) => self.fail(&format!("n{j} exited")),
            Err(NotReady::TimedOut(what)) => self.fail(&what),
        }
        self.running_leader().unwrap_or_else(|e| self.fail(&e))
    }

    /// Everything node `i` logged, over all its starts.
    pub fn log(&self, i: usize) -> String {
        read_log(&self.nodes[i].log_path)
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            node.kill();
        }
    }
}

/// `n` distinct free loopback ports: all bound at once (so no duplicates), then released.
fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("local_addr").port())
        .collect()
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
