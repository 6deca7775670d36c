//! napshare on smol: one task owns the node (the index server or a client, a host
//! [`Node`]); every connection has one task that reads and writes it (see `conn`); each
//! wait has a `Timer` set from the node's `poll_timeout`. All tasks run on one thread (a
//! `LocalExecutor`): nothing crosses threads but the bounded channel a client's threads
//! (or a gateway's cluster thread) feed.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use napshare_core::{ConnId, Transmit};
use napshare_host::{turn, ClientSetup, Happened, Node, Runtime, ServerSetup, Sockets, Upload};
use smol::channel::{self, Sender};
use smol::{future, Async, LocalExecutor, Timer};

mod conn;

use conn::{take_spent, Event, Link};

/// The smol runtime.
pub struct Smol;

impl Runtime for Smol {
    type Listener = Async<TcpListener>;

    fn bind(addr: SocketAddr) -> io::Result<Self::Listener> {
        Async::<TcpListener>::bind(addr)
    }

    fn local_addr(listener: &Self::Listener) -> io::Result<SocketAddr> {
        listener.get_ref().local_addr()
    }

    fn run_server(listener: Self::Listener, setup: ServerSetup) -> io::Result<()> {
        run(listener, |events| {
            let send = move |input| events.send_blocking(Event::Input(input)).is_ok();
            setup.start(Instant::now(), send)
        })
        .map(drop)
    }

    fn run_client(listener: Self::Listener, setup: ClientSetup) -> io::Result<i32> {
        run(listener, |events| {
            // The loop may be gone already when input ends; nothing to do then.
            let send = move |input| events.send_blocking(Event::Input(input)).is_ok();
            setup.start(Instant::now(), send)
        })
    }
}

/// The `napshare-smol` command; `bin` is the name it was installed under.
pub fn main(bin: &'static str) -> ExitCode {
    napshare_host::main::<Smol>(bin)
}

/// The node's connections: what carries out its outputs.
struct Links<'a> {
    ex: &'a LocalExecutor<'static>,
    events: Sender<Event>,
    map: HashMap<ConnId, Link>,
    happened: VecDeque<Happened>,
    max_queued: usize,
}

/// Runs the node `make` builds (given the sender its other threads feed it through) on
/// `listener` until it exits; returns its status.
fn run<N: Node>(
    listener: Async<TcpListener>,
    make: impl FnOnce(Sender<Event>) -> io::Result<N>,
) -> io::Result<i32> {
    let ex = LocalExecutor::new();
    let (tx, events) = channel::bounded(1024);
    let mut node = make(tx.clone())?;
    ex.spawn(accept(listener, tx.clone())).detach();
    let mut io = Links {
        ex: &ex,
        events: tx,
        map: HashMap::new(),
        happened: VecDeque::new(),
        max_queued: node.max_queued(),
    };
    smol::block_on(ex.run(async {
        turn(&mut node, &mut io, Instant::now());
        while node.exit().is_none() {
            let timeout = async {
                node.poll_timeout()
                    .map_or_else(Timer::never, Timer::at)
                    .await;
                None
            };
            let event = future::or(async { events.recv().await.ok() }, timeout).await;
            let now = Instant::now();
            // Replies the connection tasks wrote: the server builds later ones in them.
            take_spent(|buf| node.recycle(buf));
            match event {
                // A stream turned away is closed as it drops.
                Some(Event::Accepted(stream, peer)) => match node.accept(now, peer) {
                    Some(id) => io.attach(id, stream),
                    None => continue,
                },
                Some(Event::Connected(id, stream, local)) => {
                    io.attach(id, stream);
                    node.happen(now, Happened::Connected(id, local), &mut io);
                }
                Some(Event::Bytes(id, data)) => node.bytes(now, id, &data),
                Some(Event::Happened(what)) => {
                    if let Happened::Closed(id) = what {
                        io.close(id);
                    }
                    node.happen(now, what, &mut io);
                }
                Some(Event::Input(input)) => node.input(now, input, &mut io),
                None => node.timeout(now),
            }
            turn(&mut node, &mut io, now);
        }
        Ok(node.exit().unwrap_or(1))
    }))
}

impl Links<'_> {
    fn attach(&mut self, id: ConnId, stream: Async<TcpStream>) {
        let link = Link::spawn(self.ex, id, Arc::new(stream), self.events.clone());
        self.map.insert(id, link);
    }
}

impl Sockets for Links<'_> {
    fn transmit(&mut self, t: Transmit) -> Option<Vec<u8>> {
        let queued = self.map.get(&t.conn)?.send(t.data);
        if queued > self.max_queued {
            self.happened.push_back(Happened::Backlog(t.conn, queued));
        }
        None // the link owns the buffer now; it comes back through `take_spent`
    }

    fn connect(&mut self, conn: ConnId, addr: SocketAddr) {
        let events = self.events.clone();
        let connect = async move {
            let stream = Async::<TcpStream>::connect(addr).await;
            let event = match stream.and_then(|s| Ok((s.get_ref().local_addr()?, s))) {
                Ok((local, stream)) => Event::Connected(conn, stream, local),
                Err(e) => Event::Happened(Happened::ConnectFailed(conn, e.to_string())),
            };
            let _ = events.send(event).await;
        };
        self.ex.spawn(connect).detach();
    }

    fn close(&mut self, conn: ConnId) {
        // Dropped, its link writes what is queued, then ends.
        self.map.remove(&conn);
    }

    fn abort(&mut self, conn: ConnId) {
        if let Some(link) = self.map.remove(&conn) {
            link.abort();
        }
    }

    fn send_file(&mut self, conn: ConnId, upload: Upload, close: bool) {
        if let Some(link) = self.map.get(&conn) {
            link.send_file(upload, !close);
        }
        if close {
            self.close(conn);
        }
    }

    fn happened(&mut self) -> Option<Happened> {
        self.happened.pop_front()
    }
}

async fn accept(listener: Async<TcpListener>, events: Sender<Event>) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                if events.send(Event::Accepted(stream, peer)).await.is_err() {
                    return;
                }
            }
            // Out of descriptors, or a connection reset before accept: wait rather than spin.
            Err(_) => drop(Timer::after(Duration::from_millis(50)).await),
        }
    }
}
