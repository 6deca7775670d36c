//! An in-memory, deterministic simulation of a napshare network.
//!
//! A [`Sim`] wires one index [`Server`] and any number of [`Client`]s together with no
//! sockets, no real clock and no OS randomness, so that behaviour tests are fast and every
//! failure replays from its seed. It plays the part of both runtimes' drivers:
//!
//! - **links**: a client's [`Command::Connect`] becomes a pending dial; when it is carried
//!   out the target (the server or another client's file server) accepts, or the dial fails
//!   when nothing listens there. Bytes from `poll_transmit` queue per direction and are
//!   handed over in chunks cut at random points, so one delivery may hold half a line or
//!   several writes merged, exactly as TCP may.
//! - **files**: each client has an in-memory folder of shared files and one of downloads
//!   (with `.part` files); the file commands a client asks for run against them.
//! - **time**: virtual. Delivering bytes takes no time; when nothing is in flight,
//!   [`Sim::step`] jumps to the earliest `poll_timeout` of all nodes.
//! - **faults**: a client can crash ([`Sim::kill`]), uploads can be cut after some bytes
//!   ([`Sim::cut_uploads_after`]), a client's network can stall ([`Sim::stall`]) and
//!   partial-file writes can fail ([`Sim::fail_part_writes`]).
//!
//! Every `handle_*` call is followed by draining every `poll_*` of that node, as the drain
//! contract in napshare-core's crate docs asks of a real driver.
//!
//! It lives in the tests crate, not in core, because it plays the driver: core is only the
//! protocol. Its randomness is one seeded [`fastrand::Rng`], so a seed replays a run.

use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fastrand::Rng;
use napshare_core::client::{
    Client, ClientConfig, ClientEvent, DownloadId, Goal, SearchHit, SharedFile,
};
use napshare_core::command::{CommandError, UserCommand};
use napshare_core::hash::{FileHasher, PieceHashes};
use napshare_core::server::{Server, ServerConfig, ServerEvent};
use napshare_core::wire::{PeerAddr, CLASSIC_PEER_PORT, CLASSIC_SERVER_PORT};
use napshare_core::ConnId;

mod drive;
mod links;
#[cfg(test)]
mod tests;

/// Where the simulated index server listens.
pub const SERVER_ADDR: SocketAddr =
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), CLASSIC_SERVER_PORT);

/// How many steps [`Sim::run_until_idle`] allows before it calls the run a livelock. A step
/// may move a single byte, so this is generous.
pub const MAX_STEPS: u64 = 50_000_000;

/// How a simulation is set up.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Decides every split point and every interleaving.
    pub seed: u64,
    /// The most bytes one delivery hands over; 1 splits every byte apart.
    pub max_chunk: usize,
    pub server: ServerConfig,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            seed: 0,
            max_chunk: 4096,
            // No heartbeat by default: a network that pings forever is never idle.
            server: ServerConfig {
                idle_timeout: None,
                ..ServerConfig::default()
            },
        }
    }
}

/// A node of the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Host {
    Server,
    /// A client, by the index [`Sim::add_client`] returned.
    Client(usize),
}

/// The simulation was still busy when its step budget ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the simulation was still busy after {steps} steps")]
pub struct NotIdle {
    pub steps: u64,
}

/// A client's files: what it shares and what it downloaded, by name.
#[derive(Debug, Default, Clone)]
pub struct Fs {
    pub shared: BTreeMap<String, Vec<u8>>,
    /// Finished downloads and `.part` files.
    pub downloads: BTreeMap<String, Vec<u8>>,
    /// The partial file each open download writes to.
    parts: BTreeMap<DownloadId, String>,
}

/// The piece hashes of `data`, as the host computes them for a shared file.
pub fn pieces_of(data: &[u8]) -> PieceHashes {
    let mut h = FileHasher::new(data.len() as u64);
    h.update(data);
    h.finish().expect("fed the whole length")
}

/// `len` pseudo-random bytes from `rng`, for file contents.
pub fn random_bytes(rng: &mut Rng, len: usize) -> Vec<u8> {
    let mut data = vec![0; len];
    rng.fill(&mut data);
    data
}

/// The name of `path` if it is a file directly inside `dir`. Paths elsewhere do not exist
/// in the simulation, like a path the driver cannot open.
fn file_in(dir: &Path, path: &Path) -> Option<String> {
    if path.parent() != Some(dir) {
        return None;
    }
    path.file_name()?.to_str().map(str::to_owned)
}

/// One direction of a link: bytes written by one end and not yet read by the other.
#[derive(Debug, Default)]
struct Pipe {
    bytes: VecDeque<u8>,
    /// The writer closed: after `bytes` the reader sees EOF.
    fin: bool,
    /// Bytes handed to the reader so far.
    delivered: u64,
    /// Reset the whole link once this many bytes went through.
    cut_after: Option<u64>,
}

#[derive(Debug)]
struct End {
    host: Host,
    conn: ConnId,
    /// This end has not closed its socket yet.
    open: bool,
}

/// A TCP connection: `pipes[s]` carries bytes from `ends[s]` to the other end.
#[derive(Debug)]
struct Link {
    ends: [End; 2],
    pipes: [Pipe; 2],
}

/// A connection a client asked for that has not been carried out yet.
#[derive(Debug)]
struct Dial {
    from: usize,
    conn: ConnId,
    addr: SocketAddr,
}

/// Something [`Sim::step`] can do without moving the clock.
#[derive(Debug, Clone, Copy)]
enum Work {
    /// Carry out `dials[k]`.
    Dial(usize),
    /// Hand the next chunk (or the EOF) of `links[id].pipes[side]` to its reader.
    Deliver { id: u64, side: usize },
}

#[derive(Debug)]
struct Node {
    client: Client,
    ip: IpAddr,
    peer_port: u16,
    shared_dir: PathBuf,
    downloads_dir: PathBuf,
    fs: Fs,
    events: Vec<ClientEvent>,
    /// The process is gone (crashed, or exited after `LEAVE` or losing the server):
    /// nothing listens on its port and nothing drives it any more.
    dead: bool,
    /// Fault: connections accepted by its file server are reset after this many bytes.
    cut_uploads_after: Option<u64>,
    /// Flip the first byte of every file range this client sends.
    corrupt_uploads: bool,
    /// Fault: creating or writing partial files fails.
    fail_part_writes: bool,
    /// Fault: no byte moves to or from it and its dials wait; its connections stay up.
    stalled: bool,
    next_port: u16,
}

/// The simulated network. See the module docs.
#[derive(Debug)]
pub struct Sim {
    now: Instant,
    rng: Rng,
    max_chunk: usize,
    server: Server,
    server_events: Vec<ServerEvent>,
    nodes: Vec<Node>,
    links: BTreeMap<u64, Link>,
    /// Open ends: which link and which side of it each (host, connection) is.
    ends: BTreeMap<(Host, ConnId), (u64, usize)>,
    next_link: u64,
    dials: VecDeque<Dial>,
    /// Fault: nothing listens at [`SERVER_ADDR`]: dials to it are refused.
    server_down: bool,
}

impl Sim {
    /// A network with just the index server, at virtual time `now`.
    pub fn new(now: Instant, config: SimConfig) -> Self {
        Self {
            now,
            rng: Rng::with_seed(config.seed),
            max_chunk: config.max_chunk.max(1),
            server: Server::new(now, config.server),
            server_events: Vec::new(),
            nodes: Vec::new(),
            links: BTreeMap::new(),
            ends: BTreeMap::new(),
            next_link: 0,
            dials: VecDeque::new(),
            server_down: false,
        }
    }

    /// A network whose randomness comes from `seed`, with default settings otherwise.
    pub fn with_seed(now: Instant, seed: u64) -> Self {
        Self::new(
            now,
            SimConfig {
                seed,
                ..SimConfig::default()
            },
        )
    }

    // ---- building the network ----

    /// Starts a client with a file server on the classic port, sharing `files`; returns its
    /// index. Its IP is 10.0.0.(2 + index).
    pub fn add_client(&mut self, files: &[(&str, &[u8])]) -> usize {
        self.add_client_with_port(CLASSIC_PEER_PORT, files)
    }

    /// Starts a client whose file server listens on `peer_port`.
    ///
    /// # Panics
    /// Past 250 clients: the simulated subnet is full.
    pub fn add_client_with_port(&mut self, peer_port: u16, files: &[(&str, &[u8])]) -> usize {
        self.add_node(peer_port, files, None)
    }

    /// Starts a one-shot client with `goal` that shares nothing, as `napshare search` or
    /// `napshare get` does; it exits by itself ([`Client::exit_status`]).
    pub fn add_goal_client(&mut self, goal: Goal) -> usize {
        self.add_node(CLASSIC_PEER_PORT, &[], Some(goal))
    }

    fn add_node(&mut self, peer_port: u16, files: &[(&str, &[u8])], goal: Option<Goal>) -> usize {
        let i = self.nodes.len();
        let host = u8::try_from(i + 2)
            .ok()
            .filter(|&h| h < 255)
            .expect("at most 250 simulated clients");
        let root = PathBuf::from(format!("/sim/{i}"));
        let config = ClientConfig {
            server: SERVER_ADDR,
            shared_dir: root.join("public"),
            downloads_dir: root.join("downloads"),
            peer_port,
            goal,
        };
        let fs = Fs {
            shared: files
                .iter()
                .map(|(name, data)| ((*name).to_owned(), data.to_vec()))
                .collect(),
            ..Fs::default()
        };
        let listing = fs
            .shared
            .iter()
            .map(|(name, data)| SharedFile {
                name: name.clone(),
                pieces: pieces_of(data),
            })
            .collect();
        self.nodes.push(Node {
            client: Client::new(self.now, config.clone(), listing),
            ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, host)),
            peer_port,
            shared_dir: config.shared_dir,
            downloads_dir: config.downloads_dir,
            fs,
            events: Vec::new(),
            dead: false,
            cut_uploads_after: None,
            corrupt_uploads: false,
            fail_part_writes: false,
            stalled: false,
            next_port: 49152,
        });
        self.drain_client(i);
        i
    }

    /// Puts a file in client `i`'s shared folder (it is not shared until `CREATEFILE`).
    pub fn put_shared(&mut self, i: usize, name: &str, data: &[u8]) {
        self.nodes[i]
            .fs
            .shared
            .insert(name.to_owned(), data.to_vec());
    }

    /// Puts a file in client `i`'s downloads folder, as if left by an earlier run.
    pub fn put_download(&mut self, i: usize, name: &str, data: &[u8]) {
        self.nodes[i]
            .fs
            .downloads
            .insert(name.to_owned(), data.to_vec());
    }

    /// Removes a file from client `i`'s shared folder behind the client's back.
    pub fn remove_shared(&mut self, i: usize, name: &str) {
        self.nodes[i].fs.shared.remove(name);
    }

    /// Client `i`'s host saw `name` change in its shared folder (its watcher reports it
    /// once the file stopped changing): the client looks at the folder as it is now.
    pub fn folder_change(&mut self, i: usize, name: &str) {
        if self.nodes[i].dead {
            return;
        }
        let now = self.now;
        self.nodes[i].client.handle_folder_change(now, name);
        self.drain_client(i);
    }

    // ---- the user ----

    /// Client `i`'s user types a command. A dead client hears nothing.
    pub fn command(&mut self, i: usize, cmd: UserCommand) {
        if self.nodes[i].dead {
            return;
        }
        let now = self.now;
        self.nodes[i].client.command(now, cmd);
        self.drain_client(i);
    }

    /// Client `i` gets a stop signal ([`Client::stop`]).
    pub fn stop(&mut self, i: usize) {
        let now = self.now;
        self.nodes[i].client.stop(now);
        self.drain_client(i);
    }

    /// Client `i`'s user types `line`, parsed as the runtimes parse it.
    pub fn command_line(&mut self, i: usize, line: &str) -> Result<(), CommandError> {
        let cmd = UserCommand::parse(line)?;
        self.command(i, cmd);
        Ok(())
    }

    /// Runs `SEARCH pattern` on client `i` until the network is idle; returns the hits.
    ///
    /// # Panics
    /// If the search did not complete; the client's events say why.
    pub fn search(&mut self, i: usize, pattern: &str) -> Vec<SearchHit> {
        let seen = self.nodes[i].events.len();
        self.command(
            i,
            UserCommand::Search {
                pattern: pattern.to_owned(),
            },
        );
        self.run_until_idle();
        let events = &self.nodes[i].events[seen..];
        let done = events.iter().rev().find_map(|e| match e {
            ClientEvent::SearchDone { hits, .. } => Some(hits.clone()),
            _ => None,
        });
        done.unwrap_or_else(|| {
            panic!("search {pattern:?} by client {i} did not finish: {events:?}")
        })
    }

    /// Client `i` downloads `name` from client `from` until the network is idle; returns the
    /// `DownloadDone` or `DownloadFailed` event.
    ///
    /// # Panics
    /// If the download neither finished nor failed.
    pub fn download(&mut self, i: usize, from: usize, name: &str) -> ClientEvent {
        let seen = self.nodes[i].events.len();
        let peer = self.peer_addr(from);
        let name = name.to_owned();
        self.command(
            i,
            UserCommand::Download {
                peer: Some(peer),
                name,
            },
        );
        self.run_until_idle();
        let events = &self.nodes[i].events[seen..];
        let outcome = events.iter().rev().find(|e| {
            matches!(
                e,
                ClientEvent::DownloadDone { .. } | ClientEvent::DownloadFailed { .. }
            )
        });
        outcome
            .cloned()
            .unwrap_or_else(|| panic!("download by client {i} did not end: {events:?}"))
    }

    // ---- faults ----

    /// Client `i` crashes: its open connections are reset (the other ends see them close,
    /// with no `LEAVE`), its file server stops listening and it is never driven again.
    pub fn kill(&mut self, i: usize) {
        self.nodes[i].dead = true;
        self.dials.retain(|d| d.from != i);
        let me = Host::Client(i);
        for id in self.links_where(|e| e.host == me && e.open) {
            self.reset(id);
        }
    }

    /// The network drops client `i`'s connection to the server: both ends see it close.
    pub fn cut_server_link(&mut self, i: usize) {
        let me = Host::Client(i);
        let mine = self.links_where(|e| e.host == me && e.open);
        for id in mine {
            if self.links[&id].ends.iter().any(|e| e.host == Host::Server) {
                self.reset(id);
            }
        }
    }

    /// From now on connections to the index server are refused (`true`), as when it is
    /// down or the address is wrong, or accepted again (`false`). Open sessions stay up:
    /// see [`Sim::cut_server_link`].
    pub fn refuse_server(&mut self, down: bool) {
        self.server_down = down;
    }

    /// Client `i` sends every file range with its first byte flipped (or stops doing so).
    pub fn corrupt_uploads(&mut self, i: usize, corrupt: bool) {
        self.nodes[i].corrupt_uploads = corrupt;
    }

    /// Connections accepted by client `i`'s file server from now on are reset once `after`
    /// bytes of the upload went through; `None` stops cutting.
    pub fn cut_uploads_after(&mut self, i: usize, after: Option<u64>) {
        self.nodes[i].cut_uploads_after = after;
    }

    /// From now on client `i` cannot create or write partial files (a full disk).
    pub fn fail_part_writes(&mut self, i: usize, fail: bool) {
        self.nodes[i].fail_part_writes = fail;
    }

    /// Stalls client `i`'s network (`true`) or lets it move again (`false`): while stalled,
    /// its connections stay up but nothing reaches it or leaves it, so only its timers
    /// move it. What was sent meanwhile arrives late, after the stall.
    pub fn stall(&mut self, i: usize, stalled: bool) {
        self.nodes[i].stalled = stalled;
    }

    // ---- running ----

    /// Does one thing: carries out a dial or delivers one chunk (or EOF) on one link,
    /// picked at random; when nothing is in flight, moves the clock to the earliest
    /// deadline and fires the timers due. Returns false when there was nothing at all.
    pub fn step(&mut self) -> bool {
        if self.deliver_one() {
            return true;
        }
        let Some(deadline) = self.next_deadline() else {
            return false;
        };
        self.now = self.now.max(deadline);
        self.fire_timeouts();
        true
    }

    /// Delivers everything in flight, and what that sends in turn, without moving the
    /// clock: for networks whose timers never stop (heartbeats), where
    /// [`Sim::run_until_idle`] would run forever.
    pub fn settle(&mut self) {
        while self.deliver_one() {}
    }

    /// Carries out one pending dial or delivery, picked at random; `false` when none.
    fn deliver_one(&mut self) -> bool {
        let work = self.pending_work();
        if work.is_empty() {
            return false;
        }
        match work[self.rng.usize(..work.len())] {
            Work::Dial(k) => {
                let dial = self.dials.remove(k).expect("picked from the pending dials");
                self.dial(dial);
            }
            Work::Deliver { id, side } => self.deliver(id, side),
        }
        true
    }

    /// Steps until nothing is in flight and no timer is set.
    ///
    /// # Panics
    /// After [`MAX_STEPS`] steps: something keeps the network busy forever.
    pub fn run_until_idle(&mut self) {
        if let Err(e) = self.run_bounded(MAX_STEPS) {
            panic!("{e}: a livelock?");
        }
    }

    /// Steps until idle, at most `max_steps` times.
    pub fn run_bounded(&mut self, max_steps: u64) -> Result<(), NotIdle> {
        for _ in 0..max_steps {
            if !self.step() {
                return Ok(());
            }
        }
        if self.is_idle() {
            Ok(())
        } else {
            Err(NotIdle { steps: max_steps })
        }
    }

    /// Moves the clock forward by `by` and fires the timers that are due.
    pub fn advance(&mut self, by: Duration) {
        self.now += by;
        self.fire_timeouts();
    }

    /// Nothing in flight and no timer set.
    pub fn is_idle(&self) -> bool {
        self.pending_work().is_empty() && self.next_deadline().is_none()
    }

    // ---- looking at the network ----

    pub fn now(&self) -> Instant {
        self.now
    }

    pub fn server(&self) -> &Server {
        &self.server
    }

    /// Everything the server reported, oldest first.
    pub fn server_events(&self) -> &[ServerEvent] {
        &self.server_events
    }

    pub fn client(&self, i: usize) -> &Client {
        &self.nodes[i].client
    }

    /// How many clients were added (dead ones included).
    pub fn clients(&self) -> usize {
        self.nodes.len()
    }

    /// Everything client `i` told its user, oldest first.
    pub fn events(&self, i: usize) -> &[ClientEvent] {
        &self.nodes[i].events
    }

    /// Takes client `i`'s events, so a test can look only at what comes next.
    pub fn take_events(&mut self, i: usize) -> Vec<ClientEvent> {
        std::mem::take(&mut self.nodes[i].events)
    }

    pub fn fs(&self, i: usize) -> &Fs {
        &self.nodes[i].fs
    }

    /// Client `i`'s file server, as `SEARCH` results name it and `DOWNLOAD` takes it.
    pub fn peer_addr(&self, i: usize) -> PeerAddr {
        let n = &self.nodes[i];
        PeerAddr(SocketAddr::new(n.ip, n.peer_port))
    }

    /// Whether client `i` crashed or exited.
    pub fn is_dead(&self, i: usize) -> bool {
        self.nodes[i].dead
    }

    /// Connections with at least one end still open.
    pub fn open_links(&self) -> usize {
        self.links.len()
    }
}
