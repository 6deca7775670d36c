//! The index server on one mio event loop.
//!
//! One thread, on purpose, although DESIGN.md would let a runtime add threads. Measured
//! with `loadgen` on the 2-core build machine (BENCHMARKS.md, "The index server under
//! load"), a request costs this server about 16 us of CPU in lockstep and 8 us pipelined,
//! and the load generator about 13 us and 6 us. So the two processes
//! together could never pass about 2 cores / 29 us = 69,000 requests/s in lockstep (this
//! loop alone does about 61,000) or 2 / 14 us = 145,000 pipelined (this loop: 122,000),
//! however the server's work were spread. Moving socket I/O to a second thread would put
//! it on the core the load generator needs (in lockstep, sending is a quarter of the
//! server's time, much of it the loopback delivery) and add a hand-off per batch;
//! searching on workers would need the index shared between threads and the core's
//! request handling split in two. Index search is about three quarters of the loop's time
//! when pipelined: cheaper search and less work per request are what raise the figure,
//! not more threads.

use std::collections::HashMap;
use std::io;
use std::time::Instant;

use mio::{Events, Interest, Poll, Token};
use napshare_core::server::{Server, ServerConfig};
use napshare_core::ConnId;
use napshare_host::{log_no_room, log_opened, log_server_event};

use crate::conn::{Conn, ReadEnd};
use crate::{poll_until, token, READ_BUF};

const LISTENER: Token = Token(usize::MAX);

/// Serves clients on `listener` until the process ends (or an unrecoverable poll error).
pub fn run(listener: mio::net::TcpListener, config: ServerConfig) -> io::Result<()> {
    let mut listener = listener;
    let mut poll = Poll::new()?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0; READ_BUF];
    let mut server = Server::new(Instant::now(), config);
    let mut conns: HashMap<ConnId, Conn> = HashMap::new();

    loop {
        poll_until(&mut poll, &mut events, server.poll_timeout())?;
        let now = Instant::now();
        for event in &events {
            if event.token() == LISTENER {
                accept_all(&listener, &mut poll, &mut server, &mut conns, now);
                continue;
            }
            let id = ConnId(event.token().0 as u64);
            let Some(conn) = conns.get_mut(&id) else {
                continue; // closed earlier in this batch
            };
            let mut eof = false;
            let closed = event.is_read_closed() || event.is_error();
            if event.is_readable() || closed {
                let end = conn.read_ready(&mut buf, closed, |data| {
                    // The id came from this server, so it is known.
                    let _ = server.handle_bytes(now, id, data);
                });
                eof = end == ReadEnd::Closed;
            }
            drain(&mut server, &mut conns, &poll, now);
            if eof {
                // Files go at once; replies already computed are still written (a peer
                // may have only shut down its sending side).
                server.handle_closed(now, id);
                if let Some(conn) = conns.get_mut(&id) {
                    conn.closing = true;
                }
            }
            settle(&mut server, &mut conns, &poll, id, now);
        }
        let now = Instant::now();
        if server.poll_timeout().is_some_and(|t| t <= now) {
            server.handle_timeout(now);
            drain(&mut server, &mut conns, &poll, now);
        }
    }
}

fn accept_all(
    listener: &mio::net::TcpListener,
    poll: &mut Poll,
    server: &mut Server,
    conns: &mut HashMap<ConnId, Conn>,
    now: Instant,
) {
    loop {
        match listener.accept() {
            Ok((stream, peer)) => {
                if !server.has_room() {
                    log_no_room(peer);
                    continue; // dropping the stream closes it
                }
                let id = server.handle_accept(now, peer);
                log_opened(id, peer);
                let mut conn = Conn::new(stream, false);
                if conn.register(poll.registry(), token(id)).is_err() {
                    server.handle_closed(now, id);
                    continue;
                }
                conns.insert(id, conn);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // Out of descriptors or a connection reset before accept: try again on the
            // next readiness event rather than spinning.
            Err(_) => return,
        }
    }
}

/// Carries out everything the server has queued (the drain contract).
fn drain(server: &mut Server, conns: &mut HashMap<ConnId, Conn>, poll: &Poll, now: Instant) {
    while let Some(t) = server.poll_transmit() {
        if let Some(conn) = conns.get_mut(&t.conn) {
            conn.send(&t.data);
            settle(server, conns, poll, t.conn, now);
        }
        // Written or copied: the server builds a later reply in it.
        server.recycle(t.data);
    }
    while let Some(id) = server.poll_close() {
        if let Some(conn) = conns.get_mut(&id) {
            conn.closing = true;
            settle(server, conns, poll, id, now);
        }
    }
    while let Some(event) = server.poll_event() {
        log_server_event(&event);
    }
}

/// Writes what it can of one connection, closes it when it is done or broken, and keeps its
/// interest up to date otherwise.
fn settle(
    server: &mut Server,
    conns: &mut HashMap<ConnId, Conn>,
    poll: &Poll,
    id: ConnId,
    now: Instant,
) {
    let Some(conn) = conns.get_mut(&id) else {
        return;
    };
    let ok = match conn.flush() {
        Ok(done) => !(done && conn.closing),
        Err(_) => false,
    };
    if ok && server.handle_backlog(now, id, conn.queued()) {
        // Too far behind: dropped without writing the rest; the server forgot it already.
        conns.remove(&id);
        return;
    }
    if ok && conn.update_interest(poll.registry(), token(id)).is_ok() {
        return;
    }
    conns.remove(&id);
    server.handle_closed(now, id);
}
