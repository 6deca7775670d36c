//! One connection's state and deadlines, and how its lines are served.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::IpAddr;
use std::time::Instant;

use super::reply::Outcome;
use super::store::Store;
use super::{
    LeaveReason, ReplyKind, SearchRequest, SearchToken, Server, ServerConfig, ServerEvent,
};
use crate::index::OwnerId;
use crate::wire::{ExtRequest, LineBuf, LineError, ParseError, PeerAddr, Request};
use crate::ConnId;

#[derive(Debug)]
pub(super) enum State {
    AwaitingJoin,
    /// `ext`: the client asked for the napshare extension and got it.
    Joined {
        peer: PeerAddr,
        ext: bool,
    },
    /// Replied to `LEAVE` (or refused the connection); waiting for the driver to close it.
    Closing,
}

#[derive(Debug)]
pub(super) struct Conn {
    pub(super) ip: IpAddr,
    pub(super) owner: OwnerId,
    pub(super) state: State,
    pub(super) rx: LineBuf,
    pub(super) tx: Vec<u8>,
    /// When an unterminated line in `rx` is taken as whole (see [`QUIET`](super::QUIET)).
    pub(super) partial_due: Option<Instant>,
    /// When the connection is closed for silence: before `JOIN`, the join timeout; on an
    /// extension connection, the idle timeout after its last byte.
    pub(super) silent_due: Option<Instant>,
    /// The earlier of the two: this connection's key in [`Server`]'s timer set.
    pub(super) due: Option<Instant>,
    /// The search the driver is answering for it: until then its further lines wait in
    /// `rx`, so that its replies keep the order of its requests.
    pub(super) waiting: Option<(SearchToken, ReplyKind)>,
}

impl Conn {
    /// Restarts the silence clock after bytes arrived at `now`: an extension client may
    /// stay silent for the idle timeout; a joined classic client is never timed out.
    pub(super) fn heard_from(&mut self, now: Instant, config: &ServerConfig) {
        match self.state {
            State::Joined { ext: true, .. } => {
                self.silent_due = config.idle_timeout.map(|idle| now + idle);
            }
            State::Joined { ext: false, .. } => self.silent_due = None,
            State::AwaitingJoin | State::Closing => {}
        }
    }

    /// Files `timers` under the connection's next deadline.
    pub(super) fn reschedule(&mut self, conn: ConnId, timers: &mut BTreeSet<(Instant, ConnId)>) {
        if let Some(old) = self.due.take() {
            timers.remove(&(old, conn));
        }
        if matches!(self.state, State::Closing) {
            return;
        }
        self.due = self.partial_due.into_iter().chain(self.silent_due).min();
        if let Some(due) = self.due {
            timers.insert((due, conn));
        }
    }
}

/// The parts of the server a request line may change, borrowed apart from the connections.
pub(super) struct Ctx<'a> {
    pub(super) store: &'a mut Store,
    pub(super) config: &'a ServerConfig,
    pub(super) events: &'a mut VecDeque<ServerEvent>,
    pub(super) closes: &'a mut VecDeque<ConnId>,
    pub(super) asks: &'a mut Asks,
}

/// The searches asked of the driver ([`IndexAt::Driver`](super::IndexAt::Driver)).
#[derive(Debug, Default)]
pub(super) struct Asks {
    /// Not yet taken by [`Server::poll_search`].
    pub(super) queue: VecDeque<SearchRequest>,
    /// The next token; tokens are never reused.
    next: u64,
    /// Asked and not yet answered, with the connection waiting for each.
    pub(super) waiting: BTreeMap<SearchToken, ConnId>,
}

impl Ctx<'_> {
    /// Serves one line of `conn`; returns `false` once the connection is closing.
    pub(super) fn serve(
        &mut self,
        conn: ConnId,
        at: &mut At<'_>,
        line: Result<&[u8], LineError>,
    ) -> bool {
        let ext = matches!(at.state, State::Joined { ext: true, .. });
        let request = match line {
            Err(LineError::TooLong) => Err(ParseError::TooLong),
            Ok(l) if l.iter().all(u8::is_ascii_whitespace) => return true,
            Ok(l) => std::str::from_utf8(l)
                .map_err(|_| ParseError::NotUtf8)
                .and_then(|text| parse_line(text, ext)),
        };
        match Server::apply(self.store, self.config, at, request) {
            Outcome::Ok => {}
            Outcome::Joined(peer) => self.events.push_back(ServerEvent::Joined { conn, peer }),
            Outcome::Bad(error) => self.events.push_back(ServerEvent::BadLine { conn, error }),
            Outcome::Refused(limit) => self.events.push_back(ServerEvent::Refused { conn, limit }),
            Outcome::Close(reason) => {
                self.close(conn, at.owner, at.state, reason);
                return false;
            }
            Outcome::Ask(pattern, kind) => {
                let token = SearchToken(self.asks.next);
                self.asks.next += 1;
                self.asks.waiting.insert(token, conn);
                self.asks.queue.push_back(SearchRequest {
                    token,
                    conn,
                    pattern,
                    limit: self.config.max_results,
                    kind,
                });
                *at.waiting = Some((token, kind));
                return false;
            }
        }
        true
    }

    /// Serves one line as [`Ctx::serve`] does, then drops the connection as too slow once
    /// its replies pass `burst` bytes; returns `false` when no further line may be served
    /// now (closing, or waiting for the driver).
    pub(super) fn serve_within(
        &mut self,
        conn: ConnId,
        mut at: At<'_>,
        line: Result<&[u8], LineError>,
        burst: usize,
    ) -> bool {
        if !self.serve(conn, &mut at, line) {
            return false;
        }
        if at.tx.len() > burst {
            // It would be dropped for this backlog anyway, once it was built.
            *at.tx = Vec::new();
            self.close(conn, at.owner, at.state, LeaveReason::TooSlow);
            return false;
        }
        true
    }

    /// Ends a connection on the server's side: its files leave at once, and the driver
    /// closes it after the bytes already queued.
    pub(super) fn close(
        &mut self,
        conn: ConnId,
        owner: OwnerId,
        state: &mut State,
        reason: LeaveReason,
    ) {
        let files = self.store.remove_owner(owner);
        *state = State::Closing;
        self.closes.push_back(conn);
        self.events.push_back(ServerEvent::Left {
            conn,
            files,
            reason,
        });
    }
}

/// A request line: classic, or (on a connection that agreed to it) the extension.
pub(super) enum Parsed<'a> {
    Classic(Request<'a>),
    Ext(ExtRequest<'a>),
}

/// Parses a line as a classic request, or as an extension request where the extension is on.
fn parse_line(text: &str, ext: bool) -> Result<Parsed<'_>, ParseError> {
    match Request::parse(text) {
        Err(ParseError::UnknownCommand) if ext => ExtRequest::parse(text).map(Parsed::Ext),
        other => other.map(Parsed::Classic),
    }
}

/// The parts of a connection a request may change, borrowed apart from its receive buffer.
pub(super) struct At<'a> {
    pub(super) ip: IpAddr,
    pub(super) owner: OwnerId,
    pub(super) state: &'a mut State,
    pub(super) tx: &'a mut Vec<u8>,
    pub(super) waiting: &'a mut Option<(SearchToken, ReplyKind)>,
}
