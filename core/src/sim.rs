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
//! contract in the crate docs asks of a real driver.

use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::client::{
    Client, ClientConfig, ClientEvent, Command, DownloadId, FileError, Goal, SearchHit, SharedFile,
};
use crate::command::{CommandError, UserCommand};
use crate::hash::{piece_span, FileHasher, PieceHashes};
use crate::server::{Server, ServerConfig, ServerEvent};
use crate::wire::{ByteRange, PeerAddr, CLASSIC_PEER_PORT, CLASSIC_SERVER_PORT};
use crate::{ConnId, Transmit};

/// Where the simulated index server listens.
pub const SERVER_ADDR: SocketAddr =
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), CLASSIC_SERVER_PORT);

/// How many steps [`Sim::run_until_idle`] allows before it calls the run a livelock. A step
/// may move a single byte, so this is generous.
pub const MAX_STEPS: u64 = 50_000_000;

/// SplitMix64: a tiny seedable generator, enough to pick split points and interleavings.
/// Not for anything that needs real randomness.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (slightly biased for huge `n`, which does not matter here).
    ///
    /// # Panics
    /// If `n` is 0: there is nothing to pick from.
    pub fn below(&mut self, n: usize) -> usize {
        assert!(n > 0, "Rng::below(0): empty range");
        // The remainder is below `n`, so it fits in a usize.
        (self.next_u64() % n as u64) as usize
    }

    /// True with probability `num / den`.
    pub fn chance(&mut self, num: u64, den: u64) -> bool {
        self.next_u64() % den < num
    }

    /// `len` pseudo-random bytes, for file contents.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next_u64() as u8).collect()
    }
}

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

/// The name of `path` if it is a file directly inside `dir`. Paths elsewhere do not exist
/// in the simulation, like a path the driver cannot open.
/// The piece hashes of `data`, as the host computes them for a shared file.
pub fn pieces_of(data: &[u8]) -> PieceHashes {
    let mut h = FileHasher::new(data.len() as u64);
    h.update(data);
    h.finish().expect("fed the whole length")
}

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
            rng: Rng::new(config.seed),
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

    /// Connections accepted by client `i`'s file server from now on are reset once `after`
    /// bytes of the upload went through; `None` stops cutting.
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

    /// Steps until nothing is in flight and no timer is set.
    ///
    /// # Panics
    /// After [`MAX_STEPS`] steps: something keeps the network busy forever.
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
        match work[self.rng.below(work.len())] {
            Work::Dial(k) => {
                let dial = self.dials.remove(k).expect("picked from the pending dials");
                self.dial(dial);
            }
            Work::Deliver { id, side } => self.deliver(id, side),
        }
        true
    }

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

    // ---- draining (the drain contract) ----

    /// Carries out everything the server asked for.
    fn drain_server(&mut self) {
        loop {
            if let Some(t) = self.server.poll_transmit() {
                self.write(Host::Server, t);
            } else if let Some(conn) = self.server.poll_close() {
                // The server's replies are already queued ahead of the close.
                self.close_end(Host::Server, conn);
                self.server.handle_closed(self.now, conn);
            } else if let Some(e) = self.server.poll_event() {
                self.server_events.push(e);
            } else {
                return;
            }
        }
    }

    /// Carries out everything client `i` asked for. Transmits go first, so bytes handed out
    /// before a `Close` are queued before the close. A command may feed a result back into
    /// the client (a stat, a commit); the loop drains what that produces too.
    fn drain_client(&mut self, i: usize) {
        loop {
            let client = &mut self.nodes[i].client;
            if let Some(t) = client.poll_transmit() {
                self.write(Host::Client(i), t);
            } else if let Some(cmd) = client.poll_command() {
                self.run_command(i, cmd);
            } else if let Some(e) = client.poll_event() {
                self.nodes[i].events.push(e);
            } else {
                break;
            }
        }
        if self.nodes[i].client.exit_status().is_some() && !self.nodes[i].dead {
            self.exit(i);
        }
    }

    /// Client `i`'s process ends: its file server stops and its sockets close.
    fn exit(&mut self, i: usize) {
        self.nodes[i].dead = true;
        self.dials.retain(|d| d.from != i);
        let mine: Vec<ConnId> = self
            .ends
            .keys()
            .filter(|(host, _)| *host == Host::Client(i))
            .map(|(_, conn)| *conn)
            .collect();
        for conn in mine {
            self.close_end(Host::Client(i), conn);
        }
    }

    fn run_command(&mut self, i: usize, cmd: Command) {
        match cmd {
            Command::Connect { conn, addr } => self.dials.push_back(Dial {
                from: i,
                conn,
                addr,
            }),
            Command::Close { conn } => {
                self.dials.retain(|d| (d.from, d.conn) != (i, conn));
                self.close_end(Host::Client(i), conn);
            }
            Command::SendFile {
                conn,
                path,
                range,
                close,
            } => self.send_file(i, conn, &path, range, close),
            Command::Stat { name, path, .. } => {
                let node = &mut self.nodes[i];
                let pieces = file_in(&node.shared_dir, &path)
                    .and_then(|n| node.fs.shared.get(&n))
                    .map(|data| pieces_of(data))
                    .ok_or(FileError::NotFound);
                node.client.handle_stat(self.now, &name, pieces);
            }
            Command::OpenPart { download, path } => {
                let result = self.open_part(i, download, &path);
                self.nodes[i]
                    .client
                    .handle_part_opened(self.now, download, result);
            }
            Command::CheckPart {
                download,
                pieces,
                len,
            } => {
                let node = &mut self.nodes[i];
                let part = node.fs.parts.get(&download);
                let data = part.and_then(|p| node.fs.downloads.get(p));
                let data = data.map_or(&[][..], |d| &d[..d.len().min(len as usize)]);
                let good: Vec<bool> = (0..pieces.pieces().len() as u64)
                    .map(|k| {
                        let (start, end) = piece_span(k, pieces.size());
                        let piece = data.get(start as usize..end as usize);
                        piece.is_some_and(|p| pieces.verify(k, p))
                    })
                    .collect();
                node.client.handle_part_checked(self.now, download, &good);
            }
            Command::WritePart {
                download,
                offset,
                data,
            } => {
                let result = self.write_part(i, download, offset, &data);
                self.report_io(i, download, result);
            }
            Command::CommitPart {
                download,
                dest,
                len,
            } => {
                let result = self.commit_part(i, download, &dest, len);
                self.nodes[i]
                    .client
                    .handle_committed(self.now, download, result);
            }
            Command::DropPart { download, remove } => {
                let fs = &mut self.nodes[i].fs;
                if let Some(part) = fs.parts.remove(&download) {
                    if remove {
                        fs.downloads.remove(&part);
                    }
                }
            }
        }
    }

    // ---- file commands ----

    /// Sends a range of a shared file. With `close`, the range is clamped and the
    /// connection closed after it: the classic end of an upload, where a file that vanished
    /// is sent as nothing. Without, the whole range must be there (else the connection is
    /// closed) and the client hears `handle_sent`.
    fn send_file(&mut self, i: usize, conn: ConnId, path: &Path, range: ByteRange, close: bool) {
        let node = &self.nodes[i];
        let data = file_in(&node.shared_dir, path).and_then(|n| node.fs.shared.get(&n));
        let slice = data.and_then(|d| {
            let len = d.len() as u64;
            let (start, stop) = range.clamp(len)?;
            let whole = range.end.is_none_or(|end| end < len);
            // Both ends are within the file's length, which is a usize.
            (close || whole).then(|| d[start as usize..stop as usize].to_vec())
        });
        let corrupt = node.corrupt_uploads;
        let sent = slice.is_some();
        if let Some(mut data) = slice.filter(|s| !s.is_empty()) {
            if corrupt {
                data[0] ^= 0xff;
            }
            self.write(Host::Client(i), Transmit { conn, data });
        }
        if close || !sent {
            self.close_end(Host::Client(i), conn);
            self.nodes[i].client.handle_closed(self.now, conn);
        } else {
            self.nodes[i].client.handle_sent(self.now, conn);
        }
    }

    /// Opens (or creates) a partial file, keeping what it holds; returns its length.
    fn open_part(&mut self, i: usize, download: DownloadId, path: &Path) -> Result<u64, String> {
        let node = &mut self.nodes[i];
        if node.fail_part_writes {
            return Err("no space left on device".into());
        }
        let name = file_in(&node.downloads_dir, path).ok_or("not in the downloads folder")?;
        let len = node.fs.downloads.entry(name.clone()).or_default().len();
        node.fs.parts.insert(download, name);
        Ok(len as u64)
    }

    fn write_part(
        &mut self,
        i: usize,
        download: DownloadId,
        offset: u64,
        data: &[u8],
    ) -> Result<(), String> {
        let node = &mut self.nodes[i];
        if node.fail_part_writes {
            return Err("no space left on device".into());
        }
        let part = node.fs.parts.get(&download).ok_or("no open partial file")?;
        let file = node.fs.downloads.entry(part.clone()).or_default();
        let start = usize::try_from(offset).map_err(|_| "offset too large")?;
        let stop = start + data.len();
        if file.len() < stop {
            file.resize(stop, 0);
        }
        file[start..stop].copy_from_slice(data);
        Ok(())
    }

    fn commit_part(
        &mut self,
        i: usize,
        download: DownloadId,
        dest: &Path,
        len: u64,
    ) -> Result<(), String> {
        let node = &mut self.nodes[i];
        let part = node
            .fs
            .parts
            .remove(&download)
            .ok_or("no open partial file")?;
        let dest = file_in(&node.downloads_dir, dest).ok_or("not in the downloads folder")?;
        let mut data = node
            .fs
            .downloads
            .remove(&part)
            .ok_or("the partial file is gone")?;
        data.resize(len as usize, 0);
        node.fs.downloads.insert(dest, data);
        Ok(())
    }

    fn report_io(&mut self, i: usize, download: DownloadId, result: Result<(), String>) {
        if let Err(reason) = result {
            self.nodes[i]
                .client
                .handle_download_io(self.now, download, &reason);
        }
    }

    // ---- links ----

    /// Queues bytes written by `from`. Bytes for a connection that is gone, or whose other
    /// end closed, are lost, as on a real socket.
    fn write(&mut self, from: Host, t: Transmit) {
        let Some(&(id, side)) = self.ends.get(&(from, t.conn)) else {
            return;
        };
        let link = self.links.get_mut(&id).expect("an open end has its link");
        if link.ends[1 - side].open {
            link.pipes[side].bytes.extend(t.data);
        }
    }

    /// `host` closes its end of `conn` gracefully: what it wrote still arrives, then EOF;
    /// what was on its way to it is never read.
    fn close_end(&mut self, host: Host, conn: ConnId) {
        let Some((id, side)) = self.ends.remove(&(host, conn)) else {
            return;
        };
        let link = self.links.get_mut(&id).expect("an open end has its link");
        link.ends[side].open = false;
        link.pipes[side].fin = true;
        link.pipes[1 - side] = Pipe::default();
        if !link.ends[1 - side].open {
            self.links.remove(&id);
        }
    }

    /// The links with an end that `wanted` picks.
    fn links_where(&self, wanted: impl Fn(&End) -> bool) -> Vec<u64> {
        let picked = self
            .links
            .iter()
            .filter(|(_, l)| l.ends.iter().any(&wanted));
        picked.map(|(id, _)| *id).collect()
    }

    /// Resets link `id` at once: nothing more is delivered and every end still open sees
    /// it close.
    fn reset(&mut self, id: u64) {
        let Some(link) = self.links.remove(&id) else {
            return;
        };
        for end in link.ends.iter().filter(|e| e.open) {
            self.ends.remove(&(end.host, end.conn));
        }
        for end in link.ends.iter().filter(|e| e.open) {
            self.notify_closed(end.host, end.conn);
        }
    }

    /// Tells `host` that `conn` is closed (EOF or reset), unless the host is dead.
    fn notify_closed(&mut self, host: Host, conn: ConnId) {
        match host {
            Host::Server => {
                self.server.handle_closed(self.now, conn);
                self.drain_server();
            }
            Host::Client(i) if !self.nodes[i].dead => {
                self.nodes[i].client.handle_closed(self.now, conn);
                self.drain_client(i);
            }
            Host::Client(_) => {}
        }
    }

    /// Carries out a connection attempt: the server or a listening client accepts it, or
    /// it is refused.
    fn dial(&mut self, d: Dial) {
        let local = self.ephemeral(d.from);
        let now = self.now;
        let Some(target) = self.listener(d.addr) else {
            let client = &mut self.nodes[d.from].client;
            client.handle_connect_failed(now, d.conn, "connection refused");
            self.drain_client(d.from);
            return;
        };
        let (accepted, cut_after) = match target {
            Host::Server => (self.server.handle_accept(now, local), None),
            Host::Client(j) => {
                let node = &mut self.nodes[j];
                (
                    node.client.handle_accept(now, local),
                    node.cut_uploads_after,
                )
            }
        };
        let id = self.next_link;
        self.next_link += 1;
        let link = Link {
            ends: [
                End {
                    host: Host::Client(d.from),
                    conn: d.conn,
                    open: true,
                },
                End {
                    host: target,
                    conn: accepted,
                    open: true,
                },
            ],
            pipes: [
                Pipe::default(),
                Pipe {
                    cut_after,
                    ..Pipe::default()
                },
            ],
        };
        self.links.insert(id, link);
        self.ends.insert((Host::Client(d.from), d.conn), (id, 0));
        self.ends.insert((target, accepted), (id, 1));
        self.drain(target);
        self.nodes[d.from]
            .client
            .handle_connected(now, d.conn, local);
        self.drain_client(d.from);
    }

    /// Who accepts connections at `addr`, if anyone.
    fn listener(&self, addr: SocketAddr) -> Option<Host> {
        if addr == SERVER_ADDR {
            return (!self.server_down).then_some(Host::Server);
        }
        self.nodes
            .iter()
            .position(|n| !n.dead && SocketAddr::new(n.ip, n.peer_port) == addr)
            .map(Host::Client)
    }

    /// A fresh local address for an outgoing connection of client `i`.
    fn ephemeral(&mut self, i: usize) -> SocketAddr {
        let node = &mut self.nodes[i];
        let port = node.next_port;
        node.next_port = node.next_port.checked_add(1).unwrap_or(49152);
        SocketAddr::new(node.ip, port)
    }

    /// Hands the next chunk of `links[id].pipes[side]` to its reader, or the EOF once the
    /// bytes are gone, then resets the link if it was set to be cut here.
    fn deliver(&mut self, id: u64, side: usize) {
        let link = self.links.get_mut(&id).expect("picked from the open links");
        let (to, conn) = (link.ends[1 - side].host, link.ends[1 - side].conn);
        if link.pipes[side].bytes.is_empty() {
            // The writer closed and everything it wrote has arrived: EOF.
            link.ends[1 - side].open = false;
            self.links.remove(&id);
            self.ends.remove(&(to, conn));
            self.notify_closed(to, conn);
            return;
        }
        let available = link.pipes[side].bytes.len();
        let mut len = self.chunk_len(available);
        let pipe = &mut self.links.get_mut(&id).expect("still open").pipes[side];
        let mut cut = false;
        if let Some(limit) = pipe.cut_after {
            let room = limit.saturating_sub(pipe.delivered);
            if len as u64 >= room {
                // `room` is at most `len`, a usize.
                len = room as usize;
                cut = true;
            }
        }
        let data: Vec<u8> = pipe.bytes.drain(..len).collect();
        pipe.delivered += len as u64;
        if !data.is_empty() {
            self.feed(to, conn, &data);
        }
        if cut {
            self.reset(id);
        }
    }

    /// How many of `available` bytes the next delivery hands over: sometimes all it may,
    /// otherwise a random cut, so both merged writes and split lines happen.
    fn chunk_len(&mut self, available: usize) -> usize {
        let cap = available.min(self.max_chunk);
        if self.rng.chance(1, 3) {
            cap
        } else {
            1 + self.rng.below(cap)
        }
    }

    fn feed(&mut self, to: Host, conn: ConnId, data: &[u8]) {
        match to {
            Host::Server => {
                self.server
                    .handle_bytes(self.now, conn, data)
                    .expect("the sim delivers only to connections the server has open");
            }
            Host::Client(i) => self.nodes[i].client.handle_bytes(self.now, conn, data),
        }
        self.drain(to);
    }

    fn drain(&mut self, host: Host) {
        match host {
            Host::Server => self.drain_server(),
            Host::Client(i) => self.drain_client(i),
        }
    }

    // ---- scheduling ----

    /// Everything that can happen without the clock moving.
    fn pending_work(&self) -> Vec<Work> {
        let stalled = |host: Host| matches!(host, Host::Client(i) if self.nodes[i].stalled);
        let mut work: Vec<Work> = (0..self.dials.len())
            .filter(|&k| !stalled(Host::Client(self.dials[k].from)))
            .map(Work::Dial)
            .collect();
        for (&id, link) in &self.links {
            if link.ends.iter().any(|e| stalled(e.host)) {
                continue;
            }
            for side in 0..2 {
                let pipe = &link.pipes[side];
                let readable = !pipe.bytes.is_empty() || pipe.fin;
                if readable && link.ends[1 - side].open {
                    work.push(Work::Deliver { id, side });
                }
            }
        }
        work
    }

    /// The earliest timer of any live node.
    fn next_deadline(&self) -> Option<Instant> {
        let clients = self
            .nodes
            .iter()
            .filter(|n| !n.dead)
            .filter_map(|n| n.client.poll_timeout());
        self.server.poll_timeout().into_iter().chain(clients).min()
    }

    /// Calls `handle_timeout` on every live node whose timer is due.
    fn fire_timeouts(&mut self) {
        let now = self.now;
        if self.server.poll_timeout().is_some_and(|t| t <= now) {
            self.server.handle_timeout(now);
            self.drain_server();
        }
        for i in 0..self.nodes.len() {
            let node = &mut self.nodes[i];
            if !node.dead && node.client.poll_timeout().is_some_and(|t| t <= now) {
                node.client.handle_timeout(now);
                self.drain_client(i);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The one real clock reading: a base that virtual time is added to.
    #[allow(clippy::disallowed_methods)]
    fn epoch() -> Instant {
        Instant::now()
    }

    fn joined(sim: &Sim, i: usize) -> bool {
        sim.events(i)
            .iter()
            .any(|e| matches!(e, ClientEvent::Joined { .. }))
    }

    #[test]
    fn two_clients_join_and_one_downloads_from_the_other() {
        let song = Rng::new(7).bytes(20_000);
        let mut sim = Sim::with_seed(epoch(), 1);
        let alice = sim.add_client(&[("my song.mp3", &song)]);
        let bob = sim.add_client(&[]);
        sim.run_until_idle();
        assert!(joined(&sim, alice) && joined(&sim, bob));

        let hits = sim.search(bob, "song");
        let expected = SearchHit {
            name: "my song.mp3".into(),
            peer: "10.0.0.2".into(),
            size: song.len() as u64,
            hash: Some(pieces_of(&song).root()),
        };
        assert_eq!(hits, [expected]);

        sim.command_line(bob, "DOWNLOAD 10.0.0.2 my song.mp3")
            .unwrap();
        sim.run_until_idle();
        let done = sim.events(bob).iter().any(|e| {
            matches!(e, ClientEvent::DownloadDone { name, bytes, .. }
                if name == "my song.mp3" && *bytes == song.len() as u64)
        });
        assert!(done, "{:?}", sim.events(bob));
        let downloads = &sim.fs(bob).downloads;
        assert_eq!(downloads.get("my song.mp3"), Some(&song));
        assert_eq!(downloads.len(), 1, "no .part file is left behind");
        assert_eq!(
            sim.open_links(),
            2,
            "only the two server sessions stay open"
        );
    }

    #[test]
    fn a_client_that_vanishes_without_leave_loses_its_files() {
        let mut sim = Sim::with_seed(epoch(), 2);
        let alice = sim.add_client(&[("a.txt", b"alpha")]);
        let bob = sim.add_client(&[]);
        sim.run_until_idle();
        assert_eq!(sim.search(bob, "a.txt").len(), 1);

        sim.kill(alice);
        sim.run_until_idle();
        assert_eq!(sim.search(bob, "a.txt"), []);
        assert!(sim.server().index().is_empty());
        assert!(matches!(
            sim.server_events().last(),
            Some(ServerEvent::Left { files: 1, .. })
        ));
        let refused = sim.download(bob, alice, "a.txt");
        assert!(matches!(refused, ClientEvent::DownloadFailed { .. }));
    }

    #[test]
    fn the_same_seed_gives_the_same_run() {
        let run = |seed| {
            let mut sim = Sim::new(
                epoch(),
                SimConfig {
                    seed,
                    max_chunk: 3,
                    ..SimConfig::default()
                },
            );
            let a = sim.add_client(&[("x", b"0123456789"), ("y", b"")]);
            let b = sim.add_client(&[("z", b"zz")]);
            sim.run_until_idle();
            sim.search(b, "");
            sim.download(b, a, "x");
            (
                sim.take_events(a),
                sim.take_events(b),
                sim.server_events().to_vec(),
            )
        };
        assert_eq!(run(5), run(5));
    }

    #[test]
    fn run_bounded_reports_a_busy_network() {
        let mut sim = Sim::with_seed(epoch(), 3);
        sim.add_client(&[("f", b"data")]);
        assert_eq!(sim.run_bounded(1), Err(NotIdle { steps: 1 }));
        assert_eq!(sim.run_bounded(1000), Ok(()));
        assert!(sim.is_idle());
    }

    #[test]
    fn rng_is_deterministic_and_in_range() {
        let (mut a, mut b) = (Rng::new(3), Rng::new(3));
        for _ in 0..100 {
            let n = a.below(7);
            assert!(n < 7);
            assert_eq!(n, b.below(7));
        }
    }
}
