//! The one mio event loop, for the index server and for a client alike (a host [`Node`]),
//! with [`Conns`] carrying out its outputs; each input is followed by a [`turn`] of the
//! drain contract.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::sync::{mpsc, Arc};
use std::time::Instant;

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use napshare_core::{ConnId, Transmit};
use napshare_host::{turn, Happened, Input, Node, Sockets, Upload};

use crate::conn::Conn;

// A connection's token is its core id, which never gets this high.
const LISTENER: Token = Token(usize::MAX);
const WAKER: Token = Token(usize::MAX - 1);

/// How other threads feed a node through a bounded channel: wakes the loop; `false` once
/// the loop is gone.
pub type Feed = Arc<dyn Fn(Input) -> bool + Send + Sync>;

/// The loop's connections: what carries out a node's outputs.
pub struct Conns {
    poll: Poll,
    map: HashMap<ConnId, Conn>,
    happened: VecDeque<Happened>,
    max_queued: usize,
}

fn token(id: ConnId) -> Token {
    Token(id.0 as usize)
}

impl Sockets for Conns {
    fn transmit(&mut self, t: Transmit) -> Option<Vec<u8>> {
        if let Some(conn) = self.map.get_mut(&t.conn) {
            conn.send(&t.data);
            self.settle(t.conn);
        }
        Some(t.data) // written or copied
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

    fn send_file(&mut self, id: ConnId, upload: Upload, close: bool) {
        if let Some(conn) = self.map.get_mut(&id) {
            conn.send_file(upload, close);
            self.settle(id);
        }
    }

    fn happened(&mut self) -> Option<Happened> {
        self.happened.pop_front()
    }
}

impl Conns {
    /// Writes what it can of `id`, closes it when it is done or broken, and keeps its
    /// interest up to date otherwise.
    fn settle(&mut self, id: ConnId) {
        let Some(conn) = self.map.get_mut(&id).filter(|c| !c.connecting) else {
            return;
        };
        let done = conn.flush(self.max_queued);
        if conn.report_sent && done.as_ref().is_ok_and(|d| *d) {
            conn.report_sent = false;
            self.happened.push_back(Happened::Sent(id));
        }
        let keep = done.is_ok_and(|done| !(done && conn.closing))
            && (conn.update_interest(self.poll.registry(), token(id), self.max_queued)).is_ok();
        if !keep {
            self.abort(id);
            self.happened.push_back(Happened::Closed(id));
        } else if conn.queued() > self.max_queued {
            self.happened
                .push_back(Happened::Backlog(id, conn.queued()));
        }
    }
}

/// Runs the node `make` builds (given what other threads feed it through) on `listener`
/// until it exits; returns its status.
pub fn run<N: Node>(
    mut listener: TcpListener,
    make: impl FnOnce(Feed) -> io::Result<N>,
) -> io::Result<i32> {
    let poll = Poll::new()?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
    // Bounded: a thread that feeds faster than the loop takes waits for it.
    let (tx, inputs) = mpsc::sync_channel(1024);
    let mut node = make(Arc::new(move |input| {
        tx.send(input).is_ok() && waker.wake().is_ok()
    }))?;
    let max_queued = node.max_queued();
    let mut io = Conns {
        poll,
        map: HashMap::new(),
        happened: VecDeque::new(),
        max_queued,
    };
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0; 64 * 1024]; // one read buffer for every socket
    turn(&mut node, &mut io, Instant::now());
    while node.exit().is_none() {
        let deadline = node.poll_timeout();
        let timeout = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        match io.poll.poll(&mut events, timeout) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => events.clear(),
            other => other?,
        }
        let now = Instant::now();
        for event in &events {
            match event.token() {
                LISTENER => accept_all(&listener, &mut node, &mut io, now),
                WAKER => inputs
                    .try_iter()
                    .for_each(|input| node.input(now, input, &mut io)),
                t => ready(&mut node, &mut io, ConnId(t.0 as u64), event, &mut buf, now),
            }
            turn(&mut node, &mut io, now);
        }
        let now = Instant::now();
        if node.poll_timeout().is_some_and(|t| t <= now) {
            node.timeout(now);
            turn(&mut node, &mut io, now);
        }
    }
    // Best effort: let the server see a LEAVE's connection close cleanly.
    for conn in io.map.values_mut() {
        let _ = conn.flush(max_queued);
    }
    Ok(node.exit().unwrap_or(1))
}

fn accept_all(listener: &TcpListener, node: &mut impl Node, io: &mut Conns, now: Instant) {
    loop {
        match listener.accept() {
            // A stream turned away is closed as it drops.
            Ok((stream, peer)) => match node.accept(now, peer) {
                Some(id) => match Conn::new(stream, false, io.poll.registry(), token(id)) {
                    Ok(conn) => drop(io.map.insert(id, conn)),
                    Err(_) => io.happened.push_back(Happened::Closed(id)),
                },
                None => continue,
            },
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
    io: &mut Conns,
    id: ConnId,
    event: &mio::event::Event,
    buf: &mut [u8],
    now: Instant,
) {
    let Some(conn) = io.map.get_mut(&id) else {
        return; // closed earlier in this batch
    };
    if conn.connecting {
        let Some(result) = conn.connect_result() else {
            return; // a spurious wake-up
        };
        conn.connecting = false;
        match result.and_then(|()| conn.stream.local_addr()) {
            Ok(local) => node.happen(now, Happened::Connected(id, local), io),
            Err(e) => {
                io.abort(id);
                node.happen(now, Happened::ConnectFailed(id, e.to_string()), io);
            }
        }
        turn(node, io, now);
    }
    let Some(conn) = io.map.get_mut(&id) else {
        return;
    };
    let closed = event.is_read_closed() || event.is_error();
    if (event.is_readable() || closed) && !conn.read(buf, closed, |data| node.bytes(now, id, data))
    {
        // The peer is done sending: replies and files it asked for before are still
        // written, then the connection closes.
        turn(node, io, now);
        node.happen(now, Happened::Closed(id), io);
        if let Some(conn) = io.map.get_mut(&id) {
            conn.closing = true;
        }
    }
    io.settle(id);
}
