//! The client node: its session with the index server, its file server and its downloads.
//!
//! A [`Client`] owns every connection of one client process. Inputs are socket events
//! (`handle_connected`, `handle_accept`, `handle_bytes`, `handle_closed`), results of the
//! file-system commands it asked for (`handle_stat`, `handle_download_io`,
//! `handle_committed`), timer wake-ups, user commands ([`Client::command`]) and changes in
//! the shared folder ([`Client::handle_folder_change`]). Outputs are
//! [`Client::poll_transmit`], [`Client::poll_command`] (sockets to open or close, file
//! operations), [`Client::poll_event`] (what to tell the user) and [`Client::poll_timeout`].
//!
//! Requests to the index server go one at a time: the seed's server reads one message per
//! `recv()`, so two requests in one segment would lose the second.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::command::UserCommand;
use crate::hash::{ContentHash, PieceHashes};
use crate::names::check_file_name;
use crate::wire::{ByteRange, LineBuf, PeerAddr, MAX_LINE};
use crate::{ConnId, Transmit};

/// How long a search reply may pause before the client takes it as complete, for servers
/// that never send `ENDSEARCH`; also how long an unterminated line may sit before it is
/// taken as a whole line, for servers that end replies without `\n`.
pub const QUIET: Duration = Duration::from_millis(500);
/// How long a search may go unanswered before the client takes it as having found
/// nothing, on a classic server that has not yet shown that it answers a search that
/// matches nothing (with `NORESULT`, or an `ENDSEARCH` after no `FILE` line). Some classic
/// servers send the matching `FILE` lines and, when nothing matches, nothing at all: against
/// them a search (and a `DOWNLOAD` looking its file up) would otherwise wait
/// [`REPLY_TIMEOUT`] and then give the session up. Two seconds is many round trips even
/// across continents and more than a classic server takes to scan its list, yet short
/// enough that the commands queued behind the search, and a `LEAVE`, do not feel stuck.
/// Once the server has shown a terminator it is waited for (up to [`REPLY_TIMEOUT`]).
pub const NO_ANSWER_QUIET: Duration = Duration::from_secs(2);
/// How long the client waits for a reply from the index server. Replies carry no request
/// id, so a reply that comes later could be taken for the answer to the next request: past
/// this time the session is given up instead.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// How the client is set up.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The index server.
    pub server: SocketAddr,
    /// Where shared files live.
    pub shared_dir: PathBuf,
    /// Where downloads go.
    pub downloads_dir: PathBuf,
    /// The port this client's file server listens on.
    pub peer_port: u16,
    /// A one-shot client's goal ([`Goal`]); `None` for a client driven by its user.
    pub goal: Option<Goal>,
}

/// A file this client shares, found by the driver in the shared folder and hashed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedFile {
    pub name: String,
    /// Its piece hashes, which also give its size and content hash.
    pub pieces: PieceHashes,
}

/// One search result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchHit {
    pub name: String,
    /// As the server wrote it: `ip` or `ip:port`.
    pub peer: String,
    pub size: u64,
    /// The content hash, when the server and the sharing peer speak the extension.
    pub hash: Option<ContentHash>,
}

/// Identifies one download for the file commands that serve it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DownloadId(pub u64);

/// Something the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Open a TCP connection; report [`Client::handle_connected`] or
    /// [`Client::handle_connect_failed`].
    Connect { conn: ConnId, addr: SocketAddr },
    /// Close after writing the bytes already handed out; no `handle_closed` is needed.
    Close { conn: ConnId },
    /// Send `range` of the regular file at `path` on `conn`, after the bytes already handed
    /// out. With `close`, the range is clamped to the file (nothing if it starts past the
    /// end) and the connection is closed afterwards ([`Client::handle_closed`] follows).
    /// Without it the whole range must be there (else the connection is closed), and
    /// [`Client::handle_sent`] is reported when it is written.
    SendFile {
        conn: ConnId,
        path: PathBuf,
        range: ByteRange,
        close: bool,
    },
    /// Look at the file at `path` (not following symlinks) and hash it; report
    /// [`Client::handle_stat`] with `name`. With `later`, the answer may come after
    /// other input (a look at a changed file of the live folder: hashing a big one must
    /// not hold the client up); without it, before anything else (a user's `CREATEFILE`,
    /// which the commands typed after it may count on).
    Stat {
        name: String,
        path: PathBuf,
        later: bool,
    },
    /// Open (creating it if needed, keeping what it holds) the partial file of a download;
    /// report [`Client::handle_part_opened`].
    OpenPart { download: DownloadId, path: PathBuf },
    /// Check the first `len` bytes of the partial file piece by piece against `pieces`;
    /// report [`Client::handle_part_checked`], which may come after other input (reading
    /// gigabytes of a resumed download must not hold the client up; the download asks for
    /// no piece until then).
    CheckPart {
        download: DownloadId,
        pieces: PieceHashes,
        len: u64,
    },
    /// Write `data` at `offset` of the partial file; report failures likewise.
    WritePart {
        download: DownloadId,
        offset: u64,
        data: Vec<u8>,
    },
    /// Cut the partial file to `len` bytes, flush it to disk and rename it to `dest` (which
    /// must not be anything but a regular file); report [`Client::handle_committed`].
    CommitPart {
        download: DownloadId,
        dest: PathBuf,
        len: u64,
    },
    /// Close the partial file, keeping it; removing it too when `remove` is set (it holds
    /// nothing worth keeping).
    DropPart { download: DownloadId, remove: bool },
}

mod download;
mod event;
mod folder;
mod goal;
mod session;
#[cfg(test)]
mod tests;
mod upload;

use download::Download;
pub use event::{
    copies, ClientError, ClientEvent, DownloadFailure, FileError, LostReason, PeerProblem,
};
use goal::GoalRun;
pub use goal::{exit, Goal};
use session::{Link, Pending, Session};

#[derive(Debug)]
enum Role {
    Server,
    /// A peer connected to our file server.
    Upload(upload::Upload),
    Download(DownloadId),
}

/// A client node.
#[derive(Debug)]
pub struct Client {
    config: ClientConfig,
    session: Session,
    roles: BTreeMap<ConnId, Role>,
    shared: BTreeMap<String, PieceHashes>,
    /// The name each shared content hash is served from.
    by_hash: BTreeMap<ContentHash, String>,
    /// Names waiting for [`Client::handle_stat`], with the size the user gave.
    stats: BTreeMap<String, Option<u64>>,
    /// Names of the shared folder that changed, with how many looks at them are on the way.
    folder_stats: BTreeMap<String, u32>,
    downloads: BTreeMap<DownloadId, Download>,
    last_hits: Vec<SearchHit>,
    /// `DOWNLOAD N`s typed while a search of the user's was on its way: they name a result
    /// of that search, so they run once it is done.
    after_search: VecDeque<UserCommand>,
    /// `LEAVE` waits for the downloads in progress (see [`Client::command`]).
    leave_waiting: bool,
    next_conn: u64,
    next_download: u64,
    transmits: BTreeMap<ConnId, Vec<u8>>,
    tx_order: VecDeque<ConnId>,
    commands: VecDeque<Command>,
    events: VecDeque<ClientEvent>,
    exit: Option<i32>,
    goal: Option<GoalRun>,
}

/// See [`Client::max_queued`].
const MAX_QUEUED: usize = 1 << 20;

impl Client {
    /// Starts a client that will join `config.server` and share `files` (the regular files
    /// found in the shared folder).
    pub fn new(now: Instant, config: ClientConfig, files: Vec<SharedFile>) -> Self {
        let server_conn = ConnId(0);
        let mut c = Self {
            session: Session {
                conn: server_conn,
                link: Link::Connecting,
                rx: LineBuf::new(MAX_LINE),
                last_rx: None,
                queue: VecDeque::new(),
                in_flight: None,
                leaving: false,
                join_text: String::new(),
                ext: false,
                answers_no_match: false,
                heartbeat: None,
                last_sent: None,
                joined_once: false,
                reconnect_at: None,
                backoff: session::FIRST_BACKOFF,
            },
            roles: BTreeMap::from([(server_conn, Role::Server)]),
            shared: BTreeMap::new(),
            by_hash: BTreeMap::new(),
            stats: BTreeMap::new(),
            folder_stats: BTreeMap::new(),
            downloads: BTreeMap::new(),
            last_hits: Vec::new(),
            after_search: VecDeque::new(),
            leave_waiting: false,
            next_conn: 1,
            next_download: 0,
            transmits: BTreeMap::new(),
            tx_order: VecDeque::new(),
            commands: VecDeque::from([Command::Connect {
                conn: server_conn,
                addr: config.server,
            }]),
            events: VecDeque::new(),
            exit: None,
            goal: config.goal.clone().map(GoalRun::new),
            config,
        };
        c.session.queue.push_back(Pending::Join);
        for f in files {
            if check_file_name(&f.name).is_ok() {
                c.share(f.name, f.pieces);
            }
        }
        c.start_goal(now);
        c
    }

    // ---- inputs: sockets ----

    /// The connection asked for with [`Command::Connect`] is up; `local` is our end of it.
    pub fn handle_connected(&mut self, now: Instant, conn: ConnId, local: SocketAddr) {
        match self.roles.get(&conn) {
            Some(Role::Server) => {
                self.session.link = Link::Up;
                self.session.ext = false;
                let me = PeerAddr(SocketAddr::new(local.ip(), self.config.peer_port));
                if self.session.joined_once {
                    self.requeue_session();
                }
                self.session.join_text = me.to_string();
                self.pump(now);
            }
            Some(Role::Download(id)) => {
                let id = *id;
                self.download_connected(id, conn);
            }
            _ => {}
        }
    }

    /// A [`Command::Connect`] failed.
    pub fn handle_connect_failed(&mut self, now: Instant, conn: ConnId, reason: &str) {
        match self.roles.remove(&conn) {
            Some(Role::Server) => {
                let server = self.config.server;
                let why = reason.to_owned();
                self.lose_server(now, LostReason::Unreachable { server, why });
            }
            Some(Role::Download(id)) => {
                let why = PeerProblem::CannotConnect(reason.to_owned());
                self.download_closed(id, conn, Some(why));
                self.pump(now);
            }
            _ => {}
        }
    }

    /// A peer connected to our file server; returns the id for its bytes.
    pub fn handle_accept(&mut self, _now: Instant, _peer: SocketAddr) -> ConnId {
        let conn = self.new_conn();
        self.roles.insert(conn, Role::Upload(upload::Upload::new()));
        conn
    }

    /// Bytes arrived on `conn`.
    pub fn handle_bytes(&mut self, now: Instant, conn: ConnId, data: &[u8]) {
        match self.roles.get_mut(&conn) {
            Some(Role::Server) => {
                self.session.rx.extend(data);
                self.session.last_rx = Some(now);
                while let Some(line) = self.session.rx.next_line() {
                    let Ok(line) = line else { continue };
                    let line = String::from_utf8_lossy(line).into_owned();
                    self.on_reply_line(now, &line);
                }
                self.pump(now);
            }
            Some(Role::Upload(_)) => self.upload_bytes(now, conn, data),
            Some(Role::Download(id)) => {
                let id = *id;
                self.download_bytes(id, conn, data);
                self.pump(now);
            }
            None => {}
        }
    }

    /// A [`Command::SendFile`] without `close` is written; the next request may go on.
    pub fn handle_sent(&mut self, _now: Instant, conn: ConnId) {
        if let Some(Role::Upload(up)) = self.roles.get_mut(&conn) {
            up.sending = false;
            self.serve_requests(conn);
        }
    }

    /// `conn` was closed by the peer, failed, or finished a [`Command::SendFile`].
    pub fn handle_closed(&mut self, now: Instant, conn: ConnId) {
        match self.roles.remove(&conn) {
            Some(Role::Server) => {
                if let Some(line) = self.session.rx.take_partial() {
                    self.on_reply_line(now, &String::from_utf8_lossy(&line));
                }
                self.session.link = Link::Down;
                self.lose_server(now, LostReason::Closed);
            }
            Some(Role::Download(id)) => {
                self.download_closed(id, conn, None);
                self.pump(now);
            }
            _ => {}
        }
        self.transmits.remove(&conn);
    }

    // ---- inputs: results of file commands ----

    /// The result of a [`Command::Stat`]: the file's piece hashes if it is a regular file,
    /// else why not (an [`std::io::Error`], a [`FileError`] or the reason as text).
    pub fn handle_stat<E: Into<FileError>>(
        &mut self,
        now: Instant,
        name: &str,
        result: Result<PieceHashes, E>,
    ) {
        let Some(wanted) = self.stats.remove(name) else {
            return self.folder_looked_at(now, name, result);
        };
        let name = name.to_owned();
        match (result, wanted) {
            (Err(why), _) => self.error(ClientError::CannotShare {
                name,
                why: why.into(),
            }),
            (Ok(p), Some(given)) if given != p.size() => self.error(ClientError::WrongSize {
                name,
                size: p.size(),
                given,
            }),
            (Ok(pieces), _) => {
                self.share(name, pieces);
                self.pump(now);
            }
        }
    }

    /// The result of a [`Command::OpenPart`]: how many bytes the partial file holds.
    pub fn handle_part_opened(
        &mut self,
        now: Instant,
        download: DownloadId,
        result: Result<u64, String>,
    ) {
        match result {
            Ok(existing) => self.part_opened(download, existing),
            Err(e) => self.fail_download(download, DownloadFailure::OpenPart(e)),
        }
        self.pump(now);
    }

    /// The result of a [`Command::CheckPart`]: which pieces of the partial file are good.
    pub fn handle_part_checked(&mut self, now: Instant, download: DownloadId, good: &[bool]) {
        self.part_checked(download, good);
        self.pump(now);
    }

    /// A [`Command::WritePart`] failed (or another write to the partial file).
    pub fn handle_download_io(&mut self, now: Instant, download: DownloadId, reason: &str) {
        self.fail_download(download, DownloadFailure::Write(reason.to_owned()));
        self.pump(now);
    }

    /// The result of a [`Command::CommitPart`].
    pub fn handle_committed(
        &mut self,
        now: Instant,
        download: DownloadId,
        result: Result<(), String>,
    ) {
        self.download_committed(now, download, result);
        self.pump(now);
    }

    // ---- inputs: time and the user ----

    /// Wakes the client at or after [`Client::poll_timeout`]; safe to call at any time.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.exit.is_some() {
            return;
        }
        self.upload_timeouts(now);
        self.reconnect_if_due(now);
        if self.heartbeat_due().is_some_and(|due| due <= now) {
            self.session.queue.push_back(Pending::Ping);
        }
        let s = &mut self.session;
        if let Some(last) = s.last_rx {
            if now >= last + QUIET && !s.rx.partial().is_empty() {
                if let Some(line) = s.rx.take_partial() {
                    self.on_reply_line(now, &String::from_utf8_lossy(&line));
                }
            }
        }
        let Some(f) = &self.session.in_flight else {
            // A line completed by the quiet time may have answered the request in flight.
            return self.pump(now);
        };
        let answering = matches!(f.what, Pending::Search { answered: true, .. });
        let unended = self.search_may_go_unanswered();
        if answering && now >= f.since + QUIET || unended && now >= f.since + NO_ANSWER_QUIET {
            self.complete_search(now);
        } else if !answering && now >= f.since + REPLY_TIMEOUT {
            let what = self.session.in_flight.take().map(|f| f.what);
            if matches!(what, Some(Pending::Leave)) {
                self.finish_leave();
            } else {
                let secs = REPLY_TIMEOUT.as_secs();
                self.lose_server(now, LostReason::NoAnswer { secs });
            }
        }
        self.pump(now);
    }

    /// Leaves the network now (a stop signal): downloads in progress stop, keeping their
    /// partial files for the next time.
    pub fn stop(&mut self, now: Instant) {
        if self.exit.is_some() {
            return;
        }
        self.leave_waiting = false;
        if !self.session.leaving {
            self.begin_leave();
        }
        self.pump(now);
    }

    /// Leaves if a `LEAVE` waits and nothing it waits for is left.
    pub(super) fn leave_if_waiting(&mut self) {
        let idle = self.downloads.is_empty() && self.after_search.is_empty();
        if self.leave_waiting && idle && !self.session.leaving && self.exit.is_none() {
            self.leave_waiting = false;
            self.begin_leave();
        }
    }

    /// Download `id` is over, with `status`.
    pub(super) fn download_ended(&mut self, id: DownloadId, status: i32) {
        self.goal_download_ended(id, status);
        self.leave_if_waiting();
    }

    /// Carries out a line the user typed; `None` is the end of input, which leaves the
    /// network. A line that is not a command is answered with the error and the help.
    pub fn handle_input(&mut self, now: Instant, line: Option<&str>) {
        let Some(line) = line else {
            return self.command(now, UserCommand::Leave);
        };
        match UserCommand::parse(line) {
            Ok(cmd) => self.command(now, cmd),
            Err(e) => {
                self.error(ClientError::Command(e));
                self.events.push_back(ClientEvent::Help);
            }
        }
    }

    /// Carries out a user command.
    ///
    /// `DOWNLOAD N` with no peer, where `N` is a number from 1 to the count of the latest
    /// search's results, downloads result `N`: its name, from every peer of that search
    /// that holds the same content (the same hash where the server gives hashes, else the
    /// same name and size), starting with result `N`'s own peer. Any other number, when
    /// there was no search or it listed fewer results, is a file name like any other
    /// (`DOWNLOAD 3` then fetches a file named `3`); if no peer has one, the failure says
    /// how many results there were. `DOWNLOAD peer 3` is always the file named `3`.
    ///
    /// `LEAVE` (and the end of input) leaves once the downloads in progress are over, as
    /// the seed's client, which ran one command after the other, did: a script that pipes
    /// `DOWNLOAD x` in and ends gets its file. [`Client::stop`] leaves at once.
    pub fn command(&mut self, now: Instant, cmd: UserCommand) {
        if self.exit.is_some() || self.session.leaving {
            return;
        }
        // `SEARCH x` then `DOWNLOAD 2` piped in together: the number is a result of that
        // search, not of the one before it.
        let numbered =
            matches!(&cmd, UserCommand::Download { peer: None, name } if is_number(name));
        if numbered && self.user_search_pending() {
            return self.after_search.push_back(cmd);
        }
        match cmd {
            UserCommand::CreateFile { name, size } => {
                let path = self.config.shared_dir.join(&name);
                self.stats.insert(name.clone(), size);
                self.commands.push_back(Command::Stat {
                    name,
                    path,
                    later: false,
                });
            }
            UserCommand::DeleteFile { name } => {
                if !self.unshare(&name) {
                    self.error(ClientError::NotShared { name: name.clone() });
                }
                self.session.queue.push_back(Pending::Delete { name });
            }
            // Typed before the first JOIN is through (a script piping commands in), a search
            // waits for it, behind it in the queue; after a lost session it would wait for
            // an unknown time, so it is refused.
            UserCommand::Search { .. }
                if self.session.link != Link::Up && self.session.joined_once =>
            {
                self.error(ClientError::NotConnected);
            }
            UserCommand::Search { pattern } => {
                self.session.queue.push_back(Pending::Search {
                    pattern,
                    hits: Vec::new(),
                    answered: false,
                    lookup: None,
                });
            }
            UserCommand::Download { peer: None, name } if self.result_number(&name).is_some() => {
                let n = self.result_number(&name).expect("checked by the guard");
                self.download_result(now, n);
            }
            UserCommand::Download { peer, name } => self.start_download(now, peer, name),
            UserCommand::Leave => {
                let busy = self.downloads.len() + self.after_search.len();
                if busy == 0 {
                    self.begin_leave();
                } else if !self.leave_waiting {
                    self.leave_waiting = true;
                    let downloads = busy;
                    self.events
                        .push_back(ClientEvent::LeavingAfterDownloads { downloads });
                }
            }
            UserCommand::Help => self.events.push_back(ClientEvent::Help),
        }
        self.pump(now);
    }

    // ---- outputs ----

    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        while let Some(conn) = self.tx_order.pop_front() {
            if let Some(data) = self.transmits.remove(&conn) {
                return Some(Transmit { conn, data });
            }
        }
        None
    }

    #[must_use]
    pub fn poll_command(&mut self) -> Option<Command> {
        self.commands.pop_front()
    }

    #[must_use]
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// When to call [`Client::handle_timeout`] next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.exit.is_some() {
            return None;
        }
        let s = &self.session;
        let partial = s
            .last_rx
            .filter(|_| !s.rx.partial().is_empty())
            .map(|t| t + QUIET);
        let unended = self.search_may_go_unanswered();
        let reply = s.in_flight.as_ref().map(|f| match f.what {
            Pending::Search { answered: true, .. } => f.since + QUIET,
            Pending::Search { .. } if unended => f.since + NO_ANSWER_QUIET,
            _ => f.since + REPLY_TIMEOUT,
        });
        partial
            .into_iter()
            .chain(reply)
            .chain(self.upload_deadline())
            .chain(self.heartbeat_due())
            .chain(s.reconnect_at)
            .min()
    }

    /// The most bytes a driver holds for one of this client's connections: past it, it
    /// stops reading from that connection until the peer takes what waits (a peer that
    /// pipelines requests and reads no replies gets no more of them computed).
    pub fn max_queued(&self) -> usize {
        MAX_QUEUED
    }

    /// `Some(status)` once the client is done: 0 after `LEAVE`, non-zero when the server
    /// was lost, and a one-shot client's outcome (see [`exit`]). The driver then exits.
    pub fn exit_status(&self) -> Option<i32> {
        self.exit
    }

    /// The results of the latest search.
    pub fn last_hits(&self) -> &[SearchHit] {
        &self.last_hits
    }

    /// Names this client shares, with their sizes.
    pub fn shared(&self) -> impl Iterator<Item = (&str, u64)> {
        self.shared.iter().map(|(n, p)| (n.as_str(), p.size()))
    }

    // ---- helpers ----

    pub(super) fn new_conn(&mut self) -> ConnId {
        let conn = ConnId(self.next_conn);
        self.next_conn += 1;
        conn
    }

    pub(super) fn send(&mut self, conn: ConnId, data: Vec<u8>) {
        let buf = self.transmits.entry(conn).or_default();
        if buf.is_empty() {
            self.tx_order.push_back(conn);
        }
        buf.extend_from_slice(&data);
    }

    pub(super) fn error(&mut self, error: ClientError) {
        self.events.push_back(ClientEvent::Error(error));
    }
}

/// Whether `text` is a number (it may name a search result).
fn is_number(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}
