//! A client on one mio event loop: its session with the index server, its file server,
//! its downloads and standard input (through a `Waker`) all share one `Poll`.

use std::collections::HashMap;
use std::io;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Instant;

use mio::{Events, Interest, Poll, Token, Waker};
use napshare_core::client::{Client, Command};
use napshare_core::{ConnId, Transmit};
use napshare_host::{drain, feed, ClientIo, ClientSetup, Disk, Ui, Upload};

use crate::conn::{Conn, ReadEnd};
use crate::{poll_until, token, READ_BUF};

const LISTENER: Token = Token(usize::MAX);
const WAKER: Token = Token(usize::MAX - 1);

/// Everything the loop owns besides the core.
struct Io {
    poll: Poll,
    conns: HashMap<ConnId, Conn>,
    disk: Disk,
    ui: Ui,
}

/// Runs a client until it leaves (status 0) or loses the server (status 1).
pub fn run(listener: mio::net::TcpListener, setup: ClientSetup) -> io::Result<i32> {
    let mut listener = listener;
    let poll = Poll::new()?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    // The loop keeps a handle on the waker: were an input thread's the last one, the
    // waker would close when that thread ends, and its last wake-up could be lost.
    let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
    let _keep_waker = Arc::clone(&waker);
    let (inputs_tx, inputs) = mpsc::channel();
    let (mut client, ui, disk) = setup.start(Instant::now(), move |input| {
        // The loop may be gone already when input ends; nothing to do then.
        inputs_tx.send(input).is_ok() && waker.wake().is_ok()
    })?;
    let mut io = Io {
        poll,
        conns: HashMap::new(),
        disk,
        ui,
    };
    let mut events = Events::with_capacity(256);
    let mut buf = vec![0; READ_BUF];
    io.drain(&mut client, Instant::now());

    while client.exit_status().is_none() {
        poll_until(&mut io.poll, &mut events, client.poll_timeout())?;
        let now = Instant::now();
        for event in &events {
            match event.token() {
                LISTENER => io.accept_all(&listener, &mut client, now),
                WAKER => {
                    while let Ok(input) = inputs.try_recv() {
                        feed(&mut client, &mut io, now, input);
                    }
                }
                t => io.on_ready(&mut client, ConnId(t.0 as u64), event, &mut buf, now),
            }
            io.drain(&mut client, now);
        }
        let now = Instant::now();
        if client.poll_timeout().is_some_and(|t| t <= now) {
            client.handle_timeout(now);
            io.drain(&mut client, now);
        }
    }
    // Best effort: let the server see our LEAVE's connection close cleanly.
    for (_, mut conn) in io.conns.drain() {
        let _ = conn.flush();
    }
    Ok(client.exit_status().unwrap_or(1))
}

impl Io {
    fn accept_all(&mut self, listener: &mio::net::TcpListener, client: &mut Client, now: Instant) {
        loop {
            match listener.accept() {
                Ok((stream, peer)) => {
                    let id = client.handle_accept(now, peer);
                    let mut conn = Conn::new(stream, false);
                    if conn.register(self.poll.registry(), token(id)).is_err() {
                        client.handle_closed(now, id);
                        continue;
                    }
                    self.conns.insert(id, conn);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    }

    fn on_ready(
        &mut self,
        client: &mut Client,
        id: ConnId,
        event: &mio::event::Event,
        buf: &mut [u8],
        now: Instant,
    ) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        if conn.connecting {
            match conn.connect_result() {
                None => return,
                Some(Ok(())) => {
                    conn.connecting = false;
                    let local = conn.stream.local_addr();
                    match local {
                        Ok(local) => client.handle_connected(now, id, local),
                        Err(e) => self.fail_connect(client, id, &e, now),
                    }
                    self.drain(client, now);
                }
                Some(Err(e)) => return self.fail_connect(client, id, &e, now),
            }
        }
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        if event.is_readable() || event.is_read_closed() || event.is_error() {
            let end = conn.read_all(buf, |data| client.handle_bytes(now, id, data));
            if end == ReadEnd::Closed {
                // The peer is done sending; what we still owe it (a file it asked for
                // before shutting down its side) is written before the close.
                self.drain(client, now);
                client.handle_closed(now, id);
                match self.conns.get_mut(&id) {
                    Some(conn) if conn.has_backlog() => conn.closing = true,
                    _ => {
                        self.conns.remove(&id);
                        return;
                    }
                }
            }
        }
        self.settle(client, id, now);
    }

    fn fail_connect(&mut self, client: &mut Client, id: ConnId, e: &io::Error, now: Instant) {
        self.conns.remove(&id);
        client.handle_connect_failed(now, id, &e.to_string());
    }

    fn drain(&mut self, client: &mut Client, now: Instant) {
        drain(client, self, now);
    }

    /// Writes what it can of one connection, closes it when it is done or broken, and keeps
    /// its interest up to date otherwise.
    fn settle(&mut self, client: &mut Client, id: ConnId, now: Instant) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        if conn.connecting {
            return;
        }
        let keep = match conn.flush() {
            Ok(done) => {
                if done && conn.report_sent {
                    conn.report_sent = false;
                    client.handle_sent(now, id);
                }
                !(done && conn.closing)
            }
            Err(_) => false,
        };
        // `handle_sent` may have queued more for this connection: the drain loop hands it
        // over and flushes it.
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        if keep
            && conn
                .update_interest(self.poll.registry(), token(id))
                .is_ok()
        {
            return;
        }
        self.conns.remove(&id);
        client.handle_closed(now, id);
    }
}

impl ClientIo for Io {
    fn disk(&mut self) -> &mut Disk {
        &mut self.disk
    }

    fn ui(&mut self) -> &mut Ui {
        &mut self.ui
    }

    fn transmit(&mut self, client: &mut Client, t: Transmit, now: Instant) {
        if let Some(conn) = self.conns.get_mut(&t.conn) {
            conn.queue(&t.data);
            self.settle(client, t.conn, now);
        }
    }

    fn socket(&mut self, client: &mut Client, cmd: Command, now: Instant) {
        match cmd {
            Command::Connect { conn: id, addr } => {
                let mut conn = match mio::net::TcpStream::connect(addr) {
                    Ok(stream) => Conn::new(stream, true),
                    Err(e) => return client.handle_connect_failed(now, id, &e.to_string()),
                };
                if let Err(e) = conn.register(self.poll.registry(), token(id)) {
                    return client.handle_connect_failed(now, id, &e.to_string());
                }
                self.conns.insert(id, conn);
            }
            Command::Close { conn: id } => {
                if let Some(conn) = self.conns.get_mut(&id) {
                    conn.closing = true;
                    self.settle(client, id, now);
                }
            }
            Command::SendFile {
                conn: id,
                path,
                range,
                close,
            } => {
                let Some(conn) = self.conns.get_mut(&id) else {
                    return;
                };
                // A file that cannot be opened is sent as nothing: the classic error; a
                // framed reply that cannot be honoured ends the connection.
                conn.upload = Upload::open(&path, range, !close).ok();
                conn.report_sent = !close && conn.upload.is_some();
                conn.closing = close || conn.upload.is_none();
                self.settle(client, id, now);
            }
            // `Disk` performs every file command.
            other => unreachable!("not a socket command: {other:?}"),
        }
    }
}
