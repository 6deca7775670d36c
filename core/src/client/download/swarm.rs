//! The swarm strategy: napshare peers with piece hashes, several at once; each piece is
//! asked of one fetcher, checked before it is written, and a resumed partial file is
//! re-checked first.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::State;
use crate::client::{Client, Command, DownloadFailure, DownloadId, PeerProblem, Role};
use crate::hash::{piece_count, piece_span, ContentHash, PieceHashes, PIECE};
use crate::wire::{PeerAddr, PeerReply, PeerRequest};
use crate::ConnId;

/// Peers fetched from at once for one download.
pub const MAX_SOURCES: usize = 4;
/// Requests a piece fetcher keeps outstanding on one connection, so the next piece is
/// already coming while one is checked.
const PIPELINE: usize = 2;
/// Longest reply header a peer may send before its line ends.
const MAX_HEADER: usize = 512;

#[derive(Debug)]
pub(super) struct Swarm {
    hash: ContentHash,
    pub(super) size: u64,
    pieces: Option<PieceHashes>,
    have: Vec<bool>,
    /// Bytes the partial file had when opened, to re-check once the piece hashes are known.
    existing: u64,
    /// A re-check of the partial file is under way.
    checking: bool,
    /// Peers not tried yet.
    waiting: VecDeque<PeerAddr>,
    pub(super) fetchers: BTreeMap<ConnId, Fetcher>,
    /// Pieces asked of some fetcher.
    asked: BTreeSet<u64>,
    /// The last peer dropped and why, for the failure message.
    last_problem: Option<(PeerAddr, PeerProblem)>,
}

#[derive(Debug)]
pub(super) struct Fetcher {
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
    /// The partial file is open and holds `existing` bytes from an earlier try, to re-check
    /// once the piece hashes are known.
    pub(super) fn swarm_start(
        &mut self,
        id: DownloadId,
        hash: ContentHash,
        peers: Vec<PeerAddr>,
        existing: u64,
    ) {
        let Some(d) = self.downloads.get_mut(&id) else {
            return;
        };
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

    /// The re-check of the partial file found these pieces good.
    pub(crate) fn part_checked(&mut self, id: DownloadId, good: &[bool]) {
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

    /// A connection to a peer is up: it may be asked for pieces.
    pub(super) fn swarm_connected(&mut self, id: DownloadId, conn: ConnId) {
        let Some(d) = self.downloads.get_mut(&id) else {
            return;
        };
        let State::Pieces(s) = &mut d.state else {
            return;
        };
        if let Some(f) = s.fetchers.get_mut(&conn) {
            f.connected = true;
        }
        self.swarm_progress(id);
    }

    /// Bytes from a peer: replies to what its fetcher asked.
    pub(super) fn swarm_bytes(&mut self, id: DownloadId, conn: ConnId, data: &[u8]) {
        if let Step::Drop(why) = self.fetcher_bytes(id, conn, data) {
            self.drop_fetcher(id, conn, why);
        }
        self.swarm_progress(id);
    }

    /// A peer's connection closed: its pieces go back to the others.
    pub(super) fn swarm_closed(&mut self, id: DownloadId, conn: ConnId, why: Option<PeerProblem>) {
        let why = why.unwrap_or(PeerProblem::Closed);
        self.drop_fetcher(id, conn, why);
        self.swarm_progress(id);
    }

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
