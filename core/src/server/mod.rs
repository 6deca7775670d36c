//! The index server state machine.
//!
//! One [`Server`] holds every client connection and the index. The driver reports sockets
//! with [`Server::handle_accept`], [`Server::handle_bytes`] and [`Server::handle_closed`] and
//! then drains [`Server::poll_transmit`], [`Server::poll_close`] and [`Server::poll_event`].
//!
//! Searches are answered from the server's own index at once, or, with
//! [`IndexAt::Driver`], asked of the driver through [`Server::poll_search`] and answered
//! with [`Server::handle_search_answer`]; a connection's requests after a search wait for
//! its answer, so that every connection's replies keep the order of its requests.
//!
//! Towards a classic client it sends exactly the seed's bytes (PROTOCOL.md) and nothing
//! unsolicited: a line it cannot parse gets no reply and the connection stays open.

mod config;
mod conn;
mod reply;
mod store;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_driver;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

use crate::cluster::Merged;
use crate::index::{Index, OwnerId};
use crate::wire::LineBuf;
use crate::{ConnId, Transmit};
use store::Store;

pub use config::{
    IndexAt, LeaveReason, ServerConfig, ServerEvent, UnknownConn, DEFAULT_IDLE_TIMEOUT,
    FROZEN_BOUND, QUIET, SOCKET_BUFFER_MAX,
};
use conn::{Asks, At, Conn, Ctx, State};
use reply::{classic_reply, ext_reply};
pub use store::ShareUpdate;

/// Names one search asked of the driver; the server never reuses one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SearchToken(pub u64);

/// How a search's answer is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyKind {
    /// A classic `SEARCH`: `FILE` lines (names with control characters left out),
    /// `NORESULT` when none, `ENDSEARCH`.
    Classic,
    /// An extension `FIND`: `FOUND` lines, `ENDFIND count`.
    Ext,
}

/// A search for the driver to answer ([`IndexAt::Driver`]), with
/// [`Server::handle_search_answer`] and the same token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchRequest {
    pub token: SearchToken,
    /// The connection that asked; it serves no further request until the answer.
    pub conn: ConnId,
    pub pattern: String,
    /// The most hits the reply carries ([`ServerConfig::max_results`]); more are cut.
    pub limit: usize,
    pub kind: ReplyKind,
}

/// The index server.
#[derive(Debug)]
pub struct Server {
    config: ServerConfig,
    store: Store,
    conns: BTreeMap<ConnId, Conn>,
    /// Connections with bytes in `tx`, in the order they got them.
    ready: VecDeque<ConnId>,
    closes: VecDeque<ConnId>,
    events: VecDeque<ServerEvent>,
    next_owner: u64,
    /// Connections with a deadline (an unterminated line, or a silence limit), by when.
    timers: BTreeSet<(Instant, ConnId)>,
    /// Emptied reply buffers the driver gave back ([`Server::recycle`]), for the next
    /// connection that has something to say: no allocation per reply.
    spare: Vec<Vec<u8>>,
    asks: Asks,
}

/// The server split into its connections and what serving one of them touches, so that
/// one connection is served while the rest of the server is borrowed.
struct Parts<'a> {
    conns: &'a mut BTreeMap<ConnId, Conn>,
    ctx: Ctx<'a>,
    ready: &'a mut VecDeque<ConnId>,
    timers: &'a mut BTreeSet<(Instant, ConnId)>,
    spare: &'a mut Vec<Vec<u8>>,
}

/// Most buffers [`Server::recycle`] keeps.
const SPARE_BUFFERS: usize = 64;
/// A buffer bigger than this (a long search reply) is freed rather than kept.
const SPARE_CAPACITY: usize = 64 * 1024;

impl Server {
    pub fn new(_now: Instant, config: ServerConfig) -> Self {
        Self {
            store: Store::new((config.index == IndexAt::Driver).then_some(config.share_batch)),
            config,
            conns: BTreeMap::new(),
            ready: VecDeque::new(),
            closes: VecDeque::new(),
            events: VecDeque::new(),
            next_owner: 0,
            timers: BTreeSet::new(),
            spare: Vec::new(),
            asks: Asks::default(),
        }
    }

    /// A client connected from `peer`; returns the id its bytes go by.
    pub fn handle_accept(&mut self, now: Instant, peer: SocketAddr) -> ConnId {
        let conn = ConnId(self.next_owner);
        let owner = OwnerId(self.next_owner);
        self.next_owner += 1;
        let fresh = Conn {
            ip: peer.ip().to_canonical(),
            owner,
            state: State::AwaitingJoin,
            rx: LineBuf::new(self.config.max_line),
            tx: Vec::new(),
            partial_due: None,
            silent_due: Some(now + self.config.join_timeout),
            due: None,
            waiting: None,
        };
        let c = self.conns.entry(conn).or_insert(fresh);
        c.reschedule(conn, &mut self.timers);
        conn
    }

    fn parts(&mut self) -> Parts<'_> {
        let Self {
            conns,
            store,
            config,
            events,
            closes,
            ready,
            timers,
            spare,
            asks,
            ..
        } = self;
        let ctx = Ctx {
            store,
            config,
            events,
            closes,
            asks,
        };
        Parts {
            conns,
            ctx,
            ready,
            timers,
            spare,
        }
    }

    /// Bytes arrived on `conn`.
    pub fn handle_bytes(
        &mut self,
        now: Instant,
        conn: ConnId,
        data: &[u8],
    ) -> Result<(), UnknownConn> {
        let Parts {
            conns,
            mut ctx,
            ready,
            timers,
            spare,
        } = self.parts();
        let c = conns.get_mut(&conn).ok_or(UnknownConn(conn))?;
        if matches!(c.state, State::Closing) {
            return Ok(());
        }
        if c.tx.capacity() == 0 {
            if let Some(buf) = spare.pop() {
                c.tx = buf;
            }
        }
        let had_output = !c.tx.is_empty();
        let (ip, owner) = (c.ip, c.owner);
        let burst = ctx.config.max_queued.saturating_add(SOCKET_BUFFER_MAX);
        if c.waiting.is_none() {
            c.rx.feed(data, |line| {
                let at = At {
                    ip,
                    owner,
                    state: &mut c.state,
                    tx: &mut c.tx,
                    waiting: &mut c.waiting,
                };
                ctx.serve_within(conn, at, line, burst)
            });
        } else {
            // Held until the driver answers; a client that piles up more requests than
            // their replies could ever wait for is dropped as too slow.
            c.rx.extend(data);
            if c.rx.buffered() > burst {
                ctx.close(conn, owner, &mut c.state, LeaveReason::TooSlow);
            }
        }
        // An unterminated line is due after a quiet time, counted from its last byte; an
        // extension client's silence is counted from it too. A waiting connection's lines
        // are all held.
        c.partial_due = (c.waiting.is_none() && !c.rx.partial().is_empty()).then_some(now + QUIET);
        c.heard_from(now, ctx.config);
        c.reschedule(conn, timers);
        if !had_output && !c.tx.is_empty() {
            ready.push_back(conn);
        }
        self.store.schedule(now);
        Ok(())
    }

    /// Acts on the deadlines that have passed: takes unterminated lines that waited
    /// [`QUIET`] as whole lines, closes connections silent past their limit, and hands out
    /// the batched share lists. Safe to call at any time.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.serve_due_lines(now);
        self.store.schedule(now);
        self.store.handle_timeout(now);
    }

    fn serve_due_lines(&mut self, now: Instant) {
        while let Some(&(due, conn)) = self.timers.first() {
            if due > now {
                return;
            }
            self.timers.pop_first();
            let Parts {
                conns,
                mut ctx,
                ready,
                timers,
                ..
            } = self.parts();
            let Some(c) = conns.get_mut(&conn) else {
                continue;
            };
            c.due = None;
            let had_output = !c.tx.is_empty();
            if c.silent_due.is_some_and(|d| d <= now) {
                let reason = match c.state {
                    State::AwaitingJoin => LeaveReason::JoinTimeout,
                    _ => LeaveReason::Silent,
                };
                ctx.close(conn, c.owner, &mut c.state, reason);
                continue;
            }
            if c.partial_due.is_some_and(|d| d <= now) {
                c.partial_due = None;
                if let Some(line) = c.rx.take_partial() {
                    let mut at = At {
                        ip: c.ip,
                        owner: c.owner,
                        state: &mut c.state,
                        tx: &mut c.tx,
                        waiting: &mut c.waiting,
                    };
                    ctx.serve(conn, &mut at, Ok(&line));
                    c.heard_from(now, ctx.config);
                }
            }
            if !had_output && !c.tx.is_empty() {
                ready.push_back(conn);
            }
            c.reschedule(conn, timers);
        }
    }

    /// `conn` closed (EOF, error, or the driver closed it after [`Server::poll_close`]).
    /// Its files leave the index at once. Closing an unknown connection does nothing.
    pub fn handle_closed(&mut self, _now: Instant, conn: ConnId) {
        self.forget(conn, LeaveReason::Closed);
    }

    /// Forgets `conn`: its timer, and its files unless it already left; says why.
    fn forget(&mut self, conn: ConnId, reason: LeaveReason) {
        let Some(c) = self.conns.remove(&conn) else {
            return;
        };
        if let Some(due) = c.due {
            self.timers.remove(&(due, conn));
        }
        if let Some((token, _)) = c.waiting {
            self.asks.waiting.remove(&token);
        }
        if !matches!(c.state, State::Closing) {
            let files = self.store.remove_owner(c.owner);
            self.events.push_back(ServerEvent::Left {
                conn,
                files,
                reason,
            });
        }
    }

    /// The driver's answer to the search [`Server::poll_search`] gave with `token`: writes
    /// the reply as a local search would (at most [`SearchRequest::limit`] hits, in
    /// `merged`'s order), then serves the connection's requests that waited for it (one
    /// of which may ask another search). An unknown token (its connection closed
    /// meanwhile, or answered already) is ignored.
    pub fn handle_search_answer(&mut self, now: Instant, token: SearchToken, merged: &Merged) {
        let Some(conn) = self.asks.waiting.remove(&token) else {
            return;
        };
        let Parts {
            conns,
            mut ctx,
            ready,
            timers,
            ..
        } = self.parts();
        let Some(c) = conns.get_mut(&conn) else {
            return;
        };
        let Some((_, kind)) = c.waiting.take_if(|(t, _)| *t == token) else {
            return;
        };
        if matches!(c.state, State::Closing) {
            return;
        }
        let had_output = !c.tx.is_empty();
        match kind {
            ReplyKind::Classic => {
                classic_reply(&mut c.tx, ctx.config.max_results, &merged.hits[..])
            }
            ReplyKind::Ext => ext_reply(&mut c.tx, ctx.config.max_results, &merged.hits[..]),
        }
        let burst = ctx.config.max_queued.saturating_add(SOCKET_BUFFER_MAX);
        while let Some(line) = c.rx.next_line() {
            let at = At {
                ip: c.ip,
                owner: c.owner,
                state: &mut c.state,
                tx: &mut c.tx,
                waiting: &mut c.waiting,
            };
            if !ctx.serve_within(conn, at, line, burst) {
                break;
            }
        }
        let serving = c.waiting.is_none() && !matches!(c.state, State::Closing);
        c.partial_due = (serving && !c.rx.partial().is_empty()).then_some(now + QUIET);
        c.reschedule(conn, timers);
        if !had_output && !c.tx.is_empty() {
            ready.push_back(conn);
        }
        self.store.schedule(now);
    }

    /// The next search for the driver to answer ([`IndexAt::Driver`] only).
    #[must_use]
    pub fn poll_search(&mut self) -> Option<SearchRequest> {
        self.asks.queue.pop_front()
    }

    /// The next share-list change for the driver to publish ([`IndexAt::Driver`] only):
    /// a session's whole list after a short batch ([`ServerConfig::share_batch`]), or its
    /// end at once. Drained like every other output.
    #[must_use]
    pub fn poll_share(&mut self) -> Option<ShareUpdate> {
        self.store.poll_share()
    }

    /// Hands every session's whole list to the driver again at once, through
    /// [`Server::poll_share`] (the cluster lost them: it was unreachable, or expired this
    /// gateway's lease meanwhile). Nothing with [`IndexAt::Local`].
    pub fn republish(&mut self, _now: Instant) {
        self.store.republish();
    }

    /// The most reply bytes a driver holds for one connection (`--max-queued`): past it,
    /// it stops reading from the connection and tells [`Server::handle_backlog`].
    pub fn max_queued(&self) -> usize {
        self.config.max_queued
    }

    /// Whether another connection may be accepted; the driver closes one that comes when
    /// not.
    pub fn has_room(&self) -> bool {
        self.conns.len() < self.config.max_connections
    }

    /// The driver holds `queued` bytes not yet written to `conn`. Past the limit the
    /// connection is dropped (its files leave at once) and this returns `true`: the driver
    /// closes the socket without writing the rest.
    pub fn handle_backlog(&mut self, _now: Instant, conn: ConnId, queued: usize) -> bool {
        if queued <= self.config.max_queued {
            return false;
        }
        self.forget(conn, LeaveReason::TooSlow);
        true
    }

    /// The next bytes to write; all of one connection's pending bytes come at once.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        while let Some(conn) = self.ready.pop_front() {
            let Some(c) = self.conns.get_mut(&conn) else {
                continue;
            };
            if !c.tx.is_empty() {
                let data = std::mem::take(&mut c.tx);
                return Some(Transmit { conn, data });
            }
        }
        None
    }

    /// Gives back the buffer of a [`Transmit`] once its bytes are written (or copied), so
    /// that a later reply is built in it instead of a new allocation. Optional: a driver
    /// that keeps its buffers loses only that.
    pub fn recycle(&mut self, mut buf: Vec<u8>) {
        if buf.capacity() <= SPARE_CAPACITY && self.spare.len() < SPARE_BUFFERS {
            buf.clear();
            self.spare.push(buf);
        }
    }

    /// A connection to close once the bytes already handed out for it are written.
    #[must_use]
    pub fn poll_close(&mut self) -> Option<ConnId> {
        self.closes.pop_front()
    }

    #[must_use]
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        self.events.pop_front()
    }

    /// When to call [`Server::handle_timeout`] next: the earliest deadline of any
    /// connection, or of the batched share lists.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let first = self.timers.first().map(|(due, _)| *due);
        first.into_iter().chain(self.store.due()).min()
    }

    /// The server's own index (empty with [`IndexAt::Driver`]).
    pub fn index(&self) -> &Index {
        &self.store.index
    }

    /// Connections currently open.
    pub fn connections(&self) -> usize {
        self.conns.len()
    }
}
