//! Downloads: fetch a file into a partial file (`NAME.part`), check it, then keep it.
//!
//! Two ways to fetch, chosen from what the search results say:
//!
//! - **pieces**, when napshare peers list the file with a content hash: the file is fetched
//!   one [`PIECE`] at a time with `XGET`, from up to [`MAX_SOURCES`] peers at once; every
//!   piece is checked against the piece hashes (themselves checked against the file's hash)
//!   before it is written, so a corrupt piece is fetched again from another peer and a peer
//!   that goes away leaves its pieces to the others. A partial file left by an earlier try
//!   is re-checked piece by piece and only what is missing or wrong is fetched.
//! - **classic**, from peers that only speak `GET name start`: the bytes come in order until
//!   the peer closes, and only the length the server listed tells a whole file from a cut
//!   one. A cut transfer resumes from where it stopped, from the next peer that lists the
//!   same name and size.
//!
//! Either way the final name only ever holds a complete file: the partial file is flushed
//! and renamed when (and only when) it is whole.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Instant;

use super::session::Pending;
use super::{
    Client, ClientError, ClientEvent, Command, DownloadFailure, DownloadId, PeerProblem, Role,
    SearchHit,
};
use crate::hash::{piece_count, piece_span, ContentHash, PieceHashes, PIECE};
use crate::names::check_file_name;
use crate::wire::{ByteRange, Get, PeerAddr, PeerReply, PeerRequest};
use crate::ConnId;

/// Peers fetched from at once for one download.
pub const MAX_SOURCES: usize = 4;
/// Requests a piece fetcher keeps outstanding on one connection, so the next piece is
/// already coming while one is checked.
const PIPELINE: usize = 2;
/// Longest reply header a peer may send before its line ends.
const MAX_HEADER: usize = 512;

#[derive(Debug)]
pub(super) struct Download {
    name: String,
    /// The size the server lists, when known.
    size: Option<u64>,
    started: Instant,
    state: State,
    /// Bytes known good so far, for progress reports.
    done: u64,
    /// `done` when progress was last reported.
    reported: u64,
}

impl Download {
    /// Its peers are picked: it is past the search that finds them.
    pub(super) fn planned(&self) -> bool {
        !matches!(self.state, State::Lookup { .. })
    }
}

#[derive(Debug)]
enum State {
    /// Waiting for the search that says who has the file.
    Lookup {
        peer: Option<PeerAddr>,
        /// For `DOWNLOAD N` taken as a name (N is past the latest search's results): how
        /// many results that search listed, for the message if no file is named so.
        listed: Option<usize>,
    },
    /// Waiting for the partial file to open.
    Opening(Plan),
    Classic(Classic),
    Pieces(Swarm),
    /// Waiting for the partial file to be flushed and renamed.
    Committing,
}

/// Where to fetch from, decided from the search results.
#[derive(Debug)]
enum Plan {
    Classic(VecDeque<PeerAddr>),
    Pieces {
        hash: ContentHash,
        peers: Vec<PeerAddr>,
    },
}

#[derive(Debug)]
struct Classic {
    /// Peers still to try, in order.
    peers: VecDeque<PeerAddr>,
    /// The connection of the current try, with its peer.
    conn: Option<(ConnId, PeerAddr)>,
    /// Bytes in the partial file.
    len: u64,
}

#[derive(Debug)]
struct Swarm {
    hash: ContentHash,
    size: u64,
    pieces: Option<PieceHashes>,
    have: Vec<bool>,
    /// Bytes the partial file had when opened, to re-check once the piece hashes are known.
    existing: u64,
    /// A re-check of the partial file is under way.
    checking: bool,
    /// Peers not tried yet.
    waiting: VecDeque<PeerAddr>,
    fetchers: BTreeMap<ConnId, Fetcher>,
    /// Pieces asked of some fetcher.
    asked: BTreeSet<u64>,
    /// The last peer dropped and why, for the failure message.
    last_problem: Option<(PeerAddr, PeerProblem)>,
}

#[derive(Debug)]
struct Fetcher {
    peer: PeerAddr,
    connected: bool,
    /// Requests sent and not yet answered, in order.
    asks: VecDeque<Ask>,
    /// Header bytes of the next reply.
    header: Vec<u8>,
    /// The body being received: what it answers and the bytes so far.
    body: Option<(Ask, Vec<u8>, usize)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ask {
    Pieces,
    Piece(u64),
}

/// What a fetcher's bytes led to.
enum Step {
    Continue,
    Drop(PeerProblem),
}

impl Client {
    /// The result `DOWNLOAD name` means, if `name` is a number from 1 to the count of the
    /// latest search's results (see [`Client::command`]).
    pub(super) fn result_number(&self, name: &str) -> Option<usize> {
        if !super::is_number(name) {
            return None;
        }
        let n: usize = name.parse().ok()?;
        (1..=self.last_hits.len()).contains(&n).then_some(n)
    }

    /// Checks a name to download into; tells the user and returns `false` when it cannot.
    fn can_download(&mut self, name: &str) -> bool {
        if let Err(why) = check_file_name(name) {
            let name = name.to_owned();
            self.error(ClientError::BadName { name, why });
            return false;
        }
        if self.downloads.values().any(|d| d.name == name) {
            let name = name.to_owned();
            self.error(ClientError::AlreadyDownloading { name });
            return false;
        }
        true
    }

    fn new_download(
        &mut self,
        now: Instant,
        name: String,
        size: Option<u64>,
        state: State,
    ) -> DownloadId {
        let id = DownloadId(self.next_download);
        self.next_download += 1;
        let download = Download {
            name,
            size,
            started: now,
            state,
            done: 0,
            reported: 0,
        };
        self.downloads.insert(id, download);
        id
    }

    /// `DOWNLOAD N`: result `n` (from 1) of the latest search, from every peer of that
    /// search holding the same content, result `n`'s peer first.
    pub(super) fn download_result(&mut self, now: Instant, n: usize) {
        let Some(hit) = self.last_hits.get(n - 1).cloned() else {
            return;
        };
        if !self.can_download(&hit.name) {
            return;
        }
        // The same content: by hash where there is one (whatever name another peer gives
        // it), else the same name and size.
        let same = |h: &SearchHit| match hit.hash {
            Some(hash) => h.hash == Some(hash),
            None => h.name == hit.name && h.size == hit.size,
        };
        let mut seen = BTreeSet::new();
        let peers: VecDeque<PeerAddr> = std::iter::once(&hit)
            .chain(self.last_hits.iter().filter(|h| same(h)))
            .filter_map(|h| h.peer.parse().ok())
            .filter(|p: &PeerAddr| seen.insert(p.0))
            .collect();
        let plan = match hit.hash {
            Some(hash) => Plan::Pieces {
                hash,
                peers: peers.into(),
            },
            None => Plan::Classic(peers),
        };
        let id = self.new_download(now, hit.name, Some(hit.size), State::Committing);
        self.open_with(id, plan);
    }

    /// `DOWNLOAD [peer] name`: from `peer` only, or from every peer that has it.
    pub(super) fn start_download(&mut self, now: Instant, peer: Option<PeerAddr>, name: String) {
        if !self.can_download(&name) {
            return;
        }
        let numeric = !name.is_empty() && name.bytes().all(|b| b.is_ascii_digit());
        let listed = (numeric && peer.is_none()).then_some(self.last_hits.len());
        let known = self.last_hits.iter().any(|h| h.name == name);
        let id = self.new_download(now, name.clone(), None, State::Lookup { peer, listed });
        if known || self.session_is_down() {
            let hits = std::mem::take(&mut self.last_hits);
            self.plan_download(id, &hits);
            self.last_hits = hits;
        } else {
            // Ask the server who has it, and how big it is: only the listed size tells a
            // whole classic transfer from a cut one.
            self.session.queue.push_back(Pending::Search {
                pattern: name,
                hits: Vec::new(),
                answered: false,
                lookup: Some(id),
            });
        }
    }

    /// Chooses the peers and the way to fetch from search results, then opens the part.
    pub(super) fn plan_download(&mut self, id: DownloadId, hits: &[SearchHit]) {
        let Some(d) = self.downloads.get_mut(&id) else {
            return;
        };
        let State::Lookup { peer, listed } = d.state else {
            return;
        };
        let matches = |h: &&SearchHit| {
            h.name == d.name && peer.is_none_or(|p| h.peer.parse::<PeerAddr>() == Ok(p))
        };
        let candidates: Vec<&SearchHit> = hits.iter().filter(matches).collect();
        // The content most peers hold wins; its peers are every hit with that hash.
        let best_hash = candidates
            .iter()
            .filter_map(|h| h.hash)
            .max_by_key(|hash| hits.iter().filter(|h| h.hash == Some(*hash)).count());
        let plan = match (best_hash, candidates.first()) {
            (Some(hash), _) => {
                let holders = hits.iter().filter(|h| h.hash == Some(hash));
                let holders = holders.filter(|h| peer.is_none() || matches(h));
                d.size = holders.clone().map(|h| h.size).next();
                Plan::Pieces {
                    hash,
                    peers: holders.filter_map(|h| h.peer.parse().ok()).collect(),
                }
            }
            (None, Some(first)) => {
                d.size = Some(first.size);
                let same = candidates.iter().filter(|h| h.size == first.size);
                Plan::Classic(same.filter_map(|h| h.peer.parse().ok()).collect())
            }
            (None, None) => match peer {
                // Not listed at that peer. If the network knows the content by its hash,
                // ask the peer for it by hash (checked piece by piece); otherwise try the
                // classic way, unchecked.
                Some(p) => match hits.iter().find(|h| h.name == d.name && h.hash.is_some()) {
                    Some(listed) => {
                        d.size = Some(listed.size);
                        Plan::Pieces {
                            hash: listed.hash.expect("found with a hash"),
                            peers: vec![p],
                        }
                    }
                    None => Plan::Classic(VecDeque::from([p])),
                },
                None => {
                    let reason = match listed {
                        Some(results) => DownloadFailure::NoResultOrFile { results },
                        None => DownloadFailure::NobodyHasIt,
                    };
                    return self.fail_download(id, reason);
                }
            },
        };
        self.open_with(id, plan);
    }

    /// Tells the user where a download comes from and opens its partial file.
    fn open_with(&mut self, id: DownloadId, plan: Plan) {
        let Some(d) = self.downloads.get_mut(&id) else {
            return;
        };
        let sources = match &plan {
            Plan::Classic(peers) => peers.len(),
            Plan::Pieces { peers, .. } => peers.len(),
        };
        let (name, size) = (d.name.clone(), d.size);
        d.state = State::Opening(plan);
        let path = self.part_path(&name);
        self.events.push_back(ClientEvent::DownloadStarted {
            name,
            sources,
            size,
        });
        self.commands
            .push_back(Command::OpenPart { download: id, path });
    }

    /// The partial file is open and holds `existing` bytes from an earlier try.
    pub(super) fn part_opened(&mut self, id: DownloadId, existing: u64) {
        let Some(d) = self.downloads.get_mut(&id) else {
            return;
        };
        let State::Opening(plan) = std::mem::replace(&mut d.state, State::Committing) else {
            return;
        };
        match plan {
            Plan::Classic(peers) => {
                // More than the whole file cannot be a start of it: begin again.
                let len = match d.size {
                    Some(size) if existing > size => 0,
                    _ => existing,
                };
                d.done = len;
                d.state = State::Classic(Classic {
                    peers,
                    conn: None,
                    len,
                });
                self.classic_next(id);
            }
            Plan::Pieces { hash, peers } => {
                let size = d.size.unwrap_or_default();
                let n = piece_count(size) as usize;
                // A one-piece file's piece hash is the file's hash: nothing to ask for.
                let pieces = (n == 1).then(|| {
                    PieceHashes::checked(size, vec![hash.0], hash).expect("one piece is the root")
                });
                d.state = State::Pieces(Swarm {
                    hash,
                    size,
                    pieces,
                    have: vec![false; n],
                    existing: existing.min(size),
                    checking: false,
                    waiting: peers.into(),
                    fetchers: BTreeMap::new(),
                    asked: BTreeSet::new(),
                    last_problem: None,
                });
                self.swarm_progress(id);
            }
        }
    }

    /// The re-check of the partial file found these pieces good.
    pub(super) fn part_checked(&mut self, id: DownloadId, good: &[bool]) {
        let Some(d) = self.downloads.get_mut(&id) else {
            return;
        };
        let State::Pieces(s) = &mut d.state else {
            return;
        };
        s.checking = false;
        s.existing = 0;
        for (have, ok) in s.have.iter_mut().zip(good) {
            *have |= ok;
        }
        d.done = good_bytes(s);
        self.swarm_progress(id);
    }

    /// Where a download is written until it is complete.
    pub fn part_path(&self, name: &str) -> std::path::PathBuf {
        self.config.downloads_dir.join(format!("{name}.part"))
    }

    /// A download connection is up.
    pub(super) fn download_connected(&mut self, id: DownloadId, conn: ConnId) {
        let Some(d) = self.downloads.get_mut(&id) else {
            return;
        };
        match &mut d.state {
            State::Classic(c) => {
                let mut out = Vec::new();
                let start = c.len;
                Get {
                    name: &d.name,
                    range: ByteRange { start, end: None },
                }
                .encode(&mut out);
                self.send(conn, out);
            }
            State::Pieces(s) => {
                if let Some(f) = s.fetchers.get_mut(&conn) {
                    f.connected = true;
                }
                self.swarm_progress(id);
            }
            _ => {}
        }
    }

    /// Bytes from a peer we download from.
    pub(super) fn download_bytes(&mut self, id: DownloadId, conn: ConnId, data: &[u8]) {
        let Some(d) = self.downloads.get_mut(&id) else {
            return;
        };
        match &mut d.state {
            State::Classic(c) => {
                let offset = c.len;
                if d.size.is_some_and(|size| offset + data.len() as u64 > size) {
                    // More than the listed size: this peer's file is not the one listed.
                    c.conn = None;
                    self.drop_conn(conn);
                    return self.classic_next(id);
                }
                c.len += data.len() as u64;
                d.done = c.len;
                self.commands.push_back(Command::WritePart {
                    download: id,
                    offset,
                    data: data.to_vec(),
                });
                self.report_progress(id);
            }
            State::Pieces(_) => {
                if let Step::Drop(why) = self.fetcher_bytes(id, conn, data) {
                    self.drop_fetcher(id, conn, why);
                }
                self.swarm_progress(id);
            }
            _ => {}
        }
    }

    /// A download connection closed or could not be made.
    pub(super) fn download_closed(
        &mut self,
        id: DownloadId,
        conn: ConnId,
        why: Option<PeerProblem>,
    ) {
        let Some(d) = self.downloads.get_mut(&id) else {
            return;
        };
        match &mut d.state {
            State::Classic(c) if c.conn.is_some_and(|(k, _)| k == conn) => {
                let (_, peer) = c.conn.take().expect("checked just above");
                let complete = d.size.map_or(c.len > 0, |size| c.len == size);
                if complete && why.is_none() {
                    return self.commit(id);
                }
                let problem = match (why, d.size) {
                    (Some(why), _) => why,
                    (None, Some(size)) => PeerProblem::StoppedAfter { got: c.len, size },
                    (None, None) => PeerProblem::SentNothing {
                        name: d.name.clone(),
                    },
                };
                if c.peers.is_empty() {
                    return self.fail_download(id, DownloadFailure::Peer { peer, problem });
                }
                self.classic_next(id);
            }
            State::Pieces(_) => {
                let why = why.unwrap_or(PeerProblem::Closed);
                self.drop_fetcher(id, conn, why);
                self.swarm_progress(id);
            }
            _ => {}
        }
    }

    /// The partial file is flushed and renamed, or that failed.
    pub(super) fn download_committed(
        &mut self,
        now: Instant,
        id: DownloadId,
        result: Result<(), String>,
    ) {
        let Some(d) = self.downloads.remove(&id) else {
            return;
        };
        let status = match result {
            Ok(()) => super::exit::OK,
            Err(_) => super::exit::FAILED,
        };
        self.events.push_back(match result {
            Ok(()) => ClientEvent::DownloadDone {
                path: self.config.downloads_dir.join(&d.name),
                name: d.name,
                bytes: d.done,
                elapsed: now.saturating_duration_since(d.started),
            },
            Err(reason) => ClientEvent::DownloadFailed {
                name: d.name,
                reason: DownloadFailure::Save(reason),
            },
        });
        self.download_ended(id, status);
    }

    /// Gives up a download, closing its connections and keeping what it has in the partial
    /// file (removing it only when empty).
    pub(super) fn fail_download(&mut self, id: DownloadId, reason: DownloadFailure) {
        let Some(d) = self.downloads.remove(&id) else {
            return;
        };
        let conns: Vec<ConnId> = match &d.state {
            State::Classic(c) => c.conn.iter().map(|(k, _)| *k).collect(),
            State::Pieces(s) => s.fetchers.keys().copied().collect(),
            _ => Vec::new(),
        };
        for conn in conns {
            self.drop_conn(conn);
        }
        if !matches!(d.state, State::Lookup { .. }) {
            self.commands.push_back(Command::DropPart {
                download: id,
                remove: d.done == 0,
            });
        }
        self.events.push_back(ClientEvent::DownloadFailed {
            name: d.name,
            reason,
        });
        // Given up before any peer was picked: no peer lists it.
        let status = match d.state {
            State::Lookup { .. } => super::exit::NOT_FOUND,
            _ => super::exit::FAILED,
        };
        self.download_ended(id, status);
    }

    // ---- classic ----

    /// Connects to the next classic peer, resuming where the partial file ends.
    fn classic_next(&mut self, id: DownloadId) {
        let Some(d) = self.downloads.get_mut(&id) else {
            return;
        };
        let State::Classic(c) = &mut d.state else {
            return;
        };
        if d.size == Some(c.len) && c.len > 0 {
            // An earlier try already got it all.
            return self.commit(id);
        }
        let Some(peer) = c.peers.pop_front() else {
            return self.fail_download(id, DownloadFailure::NoPeerSentAll);
        };
        let conn = ConnId(self.next_conn);
        self.next_conn += 1;
        c.conn = Some((conn, peer));
        self.roles.insert(conn, Role::Download(id));
        self.commands
            .push_back(Command::Connect { conn, addr: peer.0 });
    }

    // ---- pieces ----

    /// Moves a piece download on: re-check the partial file, start fetchers, ask for
    /// pieces, finish or give up.
    fn swarm_progress(&mut self, id: DownloadId) {
        let Some(d) = self.downloads.get_mut(&id) else {
            return;
        };
        let State::Pieces(s) = &mut d.state else {
            return;
        };
        if let (Some(pieces), true, false) = (&s.pieces, s.existing > 0, s.checking) {
            s.checking = true;
            self.commands.push_back(Command::CheckPart {
                download: id,
                pieces: pieces.clone(),
                len: s.existing,
            });
        }
        if s.have.iter().all(|h| *h) && !s.checking {
            return self.commit(id);
        }
        while s.fetchers.len() < MAX_SOURCES {
            let Some(peer) = s.waiting.pop_front() else {
                break;
            };
            let conn = ConnId(self.next_conn);
            self.next_conn += 1;
            s.fetchers.insert(
                conn,
                Fetcher {
                    peer,
                    connected: false,
                    asks: VecDeque::new(),
                    header: Vec::new(),
                    body: None,
                },
            );
            self.roles.insert(conn, Role::Download(id));
            self.commands
                .push_back(Command::Connect { conn, addr: peer.0 });
        }
        if s.fetchers.is_empty() {
            let last = s.last_problem.take();
            return self.fail_download(id, DownloadFailure::NoPeerForRest(last));
        }
        let mut out: Vec<(ConnId, Vec<u8>)> = Vec::new();
        let pieces_asked = s.fetchers.values().any(|f| f.asks.contains(&Ask::Pieces));
        for (conn, f) in s.fetchers.iter_mut().filter(|(_, f)| f.connected) {
            let mut bytes = Vec::new();
            if s.pieces.is_none() {
                if !pieces_asked && f.asks.is_empty() {
                    f.asks.push_back(Ask::Pieces);
                    PeerRequest::Pieces { hash: s.hash }.encode(&mut bytes);
                }
            } else if !s.checking {
                while f.asks.len() < PIPELINE {
                    let next = (0..s.have.len() as u64)
                        .find(|i| !s.have[*i as usize] && !s.asked.contains(i));
                    let Some(i) = next else { break };
                    let (start, end) = piece_span(i, s.size);
                    s.asked.insert(i);
                    f.asks.push_back(Ask::Piece(i));
                    let (hash, len) = (s.hash, end - start);
                    PeerRequest::Get { hash, start, len }.encode(&mut bytes);
                }
            }
            if !bytes.is_empty() {
                out.push((*conn, bytes));
            }
        }
        for (conn, bytes) in out {
            self.send(conn, bytes);
        }
    }

    /// Feeds a fetcher's bytes through its reply parser.
    fn fetcher_bytes(&mut self, id: DownloadId, conn: ConnId, mut data: &[u8]) -> Step {
        while !data.is_empty() {
            let Some(d) = self.downloads.get_mut(&id) else {
                return Step::Continue;
            };
            let State::Pieces(s) = &mut d.state else {
                return Step::Continue;
            };
            let Some(f) = s.fetchers.get_mut(&conn) else {
                return Step::Continue;
            };
            if let Some((_, buf, want)) = &mut f.body {
                let take = (*want - buf.len()).min(data.len());
                buf.extend_from_slice(&data[..take]);
                data = &data[take..];
                if buf.len() == *want {
                    let (ask, body, _) = f.body.take().expect("matched above");
                    if let Step::Drop(why) = self.body_done(id, conn, ask, body) {
                        return Step::Drop(why);
                    }
                }
                continue;
            }
            let Some(end) = data.iter().position(|&b| b == b'\n') else {
                f.header.extend_from_slice(data);
                if f.header.len() > MAX_HEADER {
                    return Step::Drop(PeerProblem::OverlongReply);
                }
                return Step::Continue;
            };
            f.header.extend_from_slice(&data[..end]);
            data = &data[end + 1..];
            let header = std::mem::take(&mut f.header);
            let Some(ask) = f.asks.front().copied() else {
                return Step::Drop(PeerProblem::UnaskedReply);
            };
            let text = String::from_utf8_lossy(&header);
            let text = text.strip_suffix('\r').unwrap_or(&text);
            let want = match (ask, PeerReply::parse(text)) {
                (Ask::Piece(i), Ok(PeerReply::Data { hash, start, len })) => {
                    let (s0, e0) = piece_span(i, s.size);
                    if (hash, start, len) != (s.hash, s0, e0 - s0) {
                        return Step::Drop(PeerProblem::WrongRange);
                    }
                    len as usize
                }
                (Ask::Pieces, Ok(PeerReply::Pieces { size, count })) => {
                    if size != s.size || count != piece_count(s.size) {
                        return Step::Drop(PeerProblem::OtherSize);
                    }
                    count as usize * 32
                }
                (_, Ok(PeerReply::Error { code, message })) => {
                    let message = message.into_owned();
                    return Step::Drop(PeerProblem::Refused { code, message });
                }
                _ => return Step::Drop(PeerProblem::BadReply(text.to_owned())),
            };
            f.body = Some((ask, Vec::with_capacity(want), want));
            if want == 0 {
                let (ask, body, _) = f.body.take().expect("just set");
                if let Step::Drop(why) = self.body_done(id, conn, ask, body) {
                    return Step::Drop(why);
                }
            }
        }
        Step::Continue
    }

    /// A whole reply body arrived: check it and keep it.
    fn body_done(&mut self, id: DownloadId, conn: ConnId, ask: Ask, body: Vec<u8>) -> Step {
        let Some(d) = self.downloads.get_mut(&id) else {
            return Step::Continue;
        };
        let State::Pieces(s) = &mut d.state else {
            return Step::Continue;
        };
        if let Some(f) = s.fetchers.get_mut(&conn) {
            f.asks.pop_front();
        }
        match ask {
            Ask::Pieces => {
                let list = body
                    .chunks(32)
                    .map(|c| c.try_into().expect("32 bytes"))
                    .collect();
                match PieceHashes::checked(s.size, list, s.hash) {
                    Ok(p) => s.pieces = Some(p),
                    Err(_) => return Step::Drop(PeerProblem::BadPieceHashes),
                }
            }
            Ask::Piece(i) => {
                s.asked.remove(&i);
                let pieces = s
                    .pieces
                    .as_ref()
                    .expect("pieces are asked for after the list");
                if !pieces.verify(i, &body) {
                    return Step::Drop(PeerProblem::CorruptPiece(i));
                }
                if !s.have[i as usize] {
                    s.have[i as usize] = true;
                    d.done = good_bytes(s);
                    let offset = i * PIECE;
                    self.commands.push_back(Command::WritePart {
                        download: id,
                        offset,
                        data: body,
                    });
                    self.report_progress(id);
                }
            }
        }
        Step::Continue
    }

    /// Stops fetching from one peer; its outstanding pieces go back to the others.
    fn drop_fetcher(&mut self, id: DownloadId, conn: ConnId, why: PeerProblem) {
        let Some(d) = self.downloads.get_mut(&id) else {
            return;
        };
        let State::Pieces(s) = &mut d.state else {
            return;
        };
        let Some(f) = s.fetchers.remove(&conn) else {
            return;
        };
        for ask in f.asks {
            if let Ask::Piece(i) = ask {
                s.asked.remove(&i);
            }
        }
        s.last_problem = Some((f.peer, why));
        self.drop_conn(conn);
    }

    // ---- both ----

    fn commit(&mut self, id: DownloadId) {
        let Some(d) = self.downloads.get_mut(&id) else {
            return;
        };
        let conns: Vec<ConnId> = match &d.state {
            State::Pieces(s) => s.fetchers.keys().copied().collect(),
            _ => Vec::new(),
        };
        let len = match &d.state {
            State::Classic(c) => c.len,
            State::Pieces(s) => s.size,
            _ => d.done,
        };
        d.done = len;
        d.state = State::Committing;
        let dest = self.config.downloads_dir.join(&d.name);
        for conn in conns {
            self.drop_conn(conn);
        }
        self.commands.push_back(Command::CommitPart {
            download: id,
            dest,
            len,
        });
    }

    fn report_progress(&mut self, id: DownloadId) {
        let Some(d) = self.downloads.get_mut(&id) else {
            return;
        };
        // At most one report per 1% of the file, or per piece when the size is unknown.
        let step = d.size.map_or(PIECE, |s| (s / 100).max(1));
        if d.done >= d.reported + step {
            d.reported = d.done;
            self.events.push_back(ClientEvent::DownloadProgress {
                name: d.name.clone(),
                done: d.done,
                size: d.size,
            });
        }
    }

    fn drop_conn(&mut self, conn: ConnId) {
        if self.roles.remove(&conn).is_some() {
            self.commands.push_back(Command::Close { conn });
        }
    }
}

/// Bytes of the file in verified pieces.
fn good_bytes(s: &Swarm) -> u64 {
    (0..s.have.len() as u64)
        .filter(|i| s.have[*i as usize])
        .map(|i| {
            let (start, end) = piece_span(i, s.size);
            end - start
        })
        .sum()
}
