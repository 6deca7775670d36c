//! The one mio event loop, for the index server and for a client alike (a host [`Node`]),
//! with [`Conns`] carrying out its outputs. Every turn follows the core's drain contract:
//! feed one input, drain the node's outputs onto the sockets, then hand the node what
//! happened to them meanwhile ([`Happened`]), draining again after each, and only then wait.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::sync::{mpsc, Arc};
use std::time::Instant;

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use napshare_core::{ConnId, Transmit};
use napshare_host::{Happened, Input, Node, Sockets, Upload};

use crate::conn::Conn;

const LISTENER: Token = Token(usize::MAX);
const WAKER: Token = Token(usize::MAX - 1);

/// Size of the one read buffer the loop reuses for every socket.
const READ_BUF: usize = 64 * 1024;

/// How other threads feed a node: wakes the loop; `false` once the loop is gone.
pub type Feed = Arc<dyn Fn(Input) -> bool + Send + Sync>;

/// The loop's connections: what carries out a node's outputs.
pub struct Conns {
    poll: Poll,
    map: HashMap<ConnId, Conn>,
    happened: VecDeque<Happened>,
    max_queued: usize,
}

/// The mio token of a connection: its core id (ids never reach `usize::MAX - 1`, which the
/// loop keeps for its listener and waker).
fn token(id: ConnId) -> Token {
    Token(id.0 as usize)
}

impl Sockets for Conns {
    fn transmit(&mut self, t: Transmit) -> Option<Vec<u8>> {
        if let Some(conn) = self.map.get_mut(&t.conn) {
            conn.send(&t.data);
            self.settle(t.conn);
        }
        Some(t.data)
    }

    fn close(&mut self, id: ConnId) {
        if let Some(conn) = self.map.get_mut(&id) {
            conn.closing = true;
            self.settle(id);
        }
    }

    fn abort(&mut self, id: ConnId) {
        if let Some(mut conn) = self.map.remove(&id) {
            let _ = self.poll.registry().deregister(&mut conn.stream);
        }
    }

    fn connect(&mut self, id: ConnId, addr: SocketAddr) {
        let registry = self.poll.registry();
        match TcpStream::connect(addr).and_then(|s| Conn::new(s, true, registry, token(id))) {
            Ok(conn) => drop(self.map.insert(id, conn)),
            Err(e) => self
                .happened
                .push_back(Happened::ConnectFailed(id, e.to_string())),
        }
    }

    fn send_file(&mut self, id: ConnId, upload: Upload, close: bool) {
        if let Some(conn) = self.map.get_mut(&id) {
            conn.send_file(upload, close);
            self.settle(id);
        }
    }
}

impl Conns {
    /// Writes what it can of `id`, closes it when it is done or broken, and keeps its
    /// interest up to date otherwise.
    fn settle(&mut self, id: ConnId) {
        let Some(conn) = self.map.get_mut(&id) else {
            return;
        };
        if conn.connecting {
            return;
        }
        let keep = match conn.flush(self.max_queued) {
            Ok(done) => {
                if done && conn.report_sent {
                    conn.report_sent = false;
                    self.happened.push_back(Happened::Sent(id));
                }
                !(done && conn.closing)
            }
            Err(_) => false,
        };
        let registry = self.poll.registry();
        if keep
            && conn
                .update_interest(registry, token(id), self.max_queued)
                .is_ok()
        {
            if conn.queued() > self.max_queued {
                self.happened
                    .push_back(Happened::Backlog(id, conn.queued()));
            }
            return;
        }
        self.abort(id);
        self.happened.push_back(Happened::Closed(id));
    }

    /// Tries to write what is left everywhere, once, before the process ends.
    fn flush_all(&mut self) {
        for conn in self.map.values_mut() {
            let _ = conn.flush(self.max_queued);
        }
    }
}

/// Runs the node `make` builds on `listener` until it exits; returns its status. `make`
/// gets what other threads feed the node through: it wakes the loop, and returns `false`
/// once the loop is gone.
pub fn run<N: Node>(
    mut listener: TcpListener,
    make: impl FnOnce(Feed) -> io::Result<N>,
) -> io::Result<i32> {
    let poll = Poll::new()?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
    let (tx, inputs) = mpsc::channel();
    let mut node = make(Arc::new(move |input| {
        tx.send(input).is_ok() && waker.wake().is_ok()
    }))?;
    let max_queued = node.max_queued();
    let mut conns = Conns {
        poll,
        map: HashMap::new(),
        happened: VecDeque::new(),
        max_queued,
    };
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0; READ_BUF];
    turn(&mut node, &mut conns, Instant::now());
    while node.exit().is_none() {
        let timeout = node
            .poll_timeout()
            .map(|d| d.saturating_duration_since(Instant::now()));
        match conns.poll.poll(&mut events, timeout) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => events.clear(),
            other => other?,
        }
        let now = Instant::now();
        for event in &events {
            match event.token() {
                LISTENER => accept_all(&listener, &mut node, &mut conns, now),
                WAKER => {
                    while let Ok(input) = inputs.try_recv() {
                        node.input(now, input, &mut conns);
                    }
                }
                t => ready(
                    &mut node,
                    &mut conns,
                    ConnId(t.0 as u64),
                    event,
                    &mut buf,
                    now,
                ),
            }
            turn(&mut node, &mut conns, now);
        }
        let now = Instant::now();
        if node.poll_timeout().is_some_and(|t| t <= now) {
            node.timeout(now);
            turn(&mut node, &mut conns, now);
        }
    }
    // Best effort: let the server see a LEAVE's connection close cleanly.
    conns.flush_all();
    Ok(node.exit().unwrap_or(1))
}

/// Drains the node, then hands it what happened to its connections meanwhile.
fn turn(node: &mut impl Node, conns: &mut Conns, now: Instant) {
    loop {
        node.drain(now, conns);
        match conns.happened.pop_front() {
            Some(what) => node.happen(now, what, conns),
            None => return,
        }
    }
}

fn accept_all(listener: &TcpListener, node: &mut impl Node, conns: &mut Conns, now: Instant) {
    loop {
        match listener.accept() {
            Ok((stream, peer)) => {
                // A stream turned away is closed as it drops.
                let Some(id) = node.accept(now, peer) else {
                    continue;
                };
                match Conn::new(stream, false, conns.poll.registry(), token(id)) {
                    Ok(conn) => drop(conns.map.insert(id, conn)),
                    Err(_) => conns.happened.push_back(Happened::Closed(id)),
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // `WouldBlock`, or out of descriptors or a connection reset before accept: try
            // again on the next readiness event rather than spinning.
            Err(_) => return,
        }
    }
}

/// A connection is ready: a connect finished, bytes or the peer's close arrived, or the
/// socket takes more.
fn ready(
    node: &mut impl Node,
    conns: &mut Conns,
    id: ConnId,
    event: &mio::event::Event,
    buf: &mut [u8],
    now: Instant,
) {
    let Some(conn) = conns.map.get_mut(&id) else {
        return; // closed earlier in this batch
    };
    if conn.connecting {
        let local = match conn.connect_result() {
            None => return,
            Some(result) => result.and_then(|()| conn.stream.local_addr()),
        };
        conn.connecting = false;
        match local {
            Ok(local) => node.happen(now, Happened::Connected(id, local), conns),
            Err(e) => {
                conns.abort(id);
                node.happen(now, Happened::ConnectFailed(id, e.to_string()), conns);
            }
        }
        turn(node, conns, now);
    }
    let Some(conn) = conns.map.get_mut(&id) else {
        return;
    };
    let closed = event.is_read_closed() || event.is_error();
    if (event.is_readable() || closed) && !conn.read(buf, closed, |data| node.bytes(now, id, data))
    {
        // The peer is done sending: replies and files it asked for before are still
        // written, then the connection closes.
        turn(node, conns, now);
        node.happen(now, Happened::Closed(id), conns);
        if let Some(conn) = conns.map.get_mut(&id) {
            conn.closing = true;
        }
    }
    conns.settle(id);
}
