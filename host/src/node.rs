//! The state machines as both runtimes drive them: a [`Node`] is the index server or a
//! client seen the same way, and [`Sockets`] is what a runtime does for it. Each runtime's
//! loop is then only sockets, readiness and a clock.
//!
//! The drain contract, for both: after an input, carry out every output until there is
//! none; what is learned meanwhile is not handed to the state machine there and then but
//! kept, and given to it once the outputs are drained, draining again after each. The
//! runtime keeps what happened to its sockets ([`Happened`]: a connect that failed, a
//! connection that closed while being written, a file range written, a backlog) and hands
//! each to [`Node::happen`]; a client's [`ClientNode`] keeps what its disk found. For the
//! client every such fact, like every line the user types, becomes an [`Input`] and
//! reaches the core by one road, `ClientNode::give`.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use napshare_core::client::{Client, Command};
use napshare_core::{ConnId, Transmit};

use crate::{Disk, Input, Ui, Upload};

/// What a runtime does with a node's connections.
pub trait Sockets {
    /// Queues `t.data` on `t.conn` (a connection that is gone drops it); gives the buffer
    /// back when its bytes were written or copied, for the server to build a reply in.
    fn transmit(&mut self, t: Transmit) -> Option<Vec<u8>>;
    /// Starts connecting `conn` to `addr` ([`Happened::Connected`] or
    /// [`Happened::ConnectFailed`] follows).
    fn connect(&mut self, conn: ConnId, addr: SocketAddr);
    /// Closes `conn` once what is queued on it is written.
    fn close(&mut self, conn: ConnId);
    /// Ends `conn` at once, dropping what was still to be written.
    fn abort(&mut self, conn: ConnId);
    /// Writes `upload` on `conn` after what is queued; then closes the connection with
    /// `close`, or reports [`Happened::Sent`] without.
    fn send_file(&mut self, conn: ConnId, upload: Upload, close: bool);
    /// The oldest thing that happened to a connection and that the node has not heard.
    fn happened(&mut self) -> Option<Happened>;
}

/// One turn of the drain contract, after an input: drains the node, then hands it what
/// happened to its connections meanwhile, draining again after each.
pub fn turn(node: &mut impl Node, io: &mut impl Sockets, now: Instant) {
    loop {
        node.drain(now, io);
        match io.happened() {
            Some(what) => node.happen(now, what, io),
            None => return,
        }
    }
}

/// What happened to a connection, for the node once its outputs are drained.
#[derive(Debug)]
pub enum Happened {
    Connected(ConnId, SocketAddr),
    ConnectFailed(ConnId, String),
    /// A file range sent without `close` is written.
    Sent(ConnId),
    /// The peer closed, the socket failed, or it closed after its last write.
    Closed(ConnId),
    /// This many bytes wait to be written, more than [`Node::max_queued`].
    Backlog(ConnId, usize),
}

/// A state machine as a runtime's loop drives it.
pub trait Node {
    fn poll_timeout(&self) -> Option<Instant>;
    fn timeout(&mut self, now: Instant);
    /// A connection from `peer`: its id, or `None` to turn it away.
    fn accept(&mut self, now: Instant, peer: SocketAddr) -> Option<ConnId>;
    fn bytes(&mut self, now: Instant, conn: ConnId, data: &[u8]);
    fn happen(&mut self, now: Instant, what: Happened, io: &mut impl Sockets);
    /// Something from another thread (the user, the folder watch, the hashing thread).
    fn input(&mut self, now: Instant, input: Input, io: &mut impl Sockets);
    /// Carries out every output (the drain contract).
    fn drain(&mut self, now: Instant, io: &mut impl Sockets);
    /// The most bytes one connection may have waiting before it is read no more (core
    /// configuration).
    fn max_queued(&self) -> usize;
    /// The exit status once the node is done; the server runs until the process ends.
    fn exit(&self) -> Option<i32>;
    /// A buffer of a [`Transmit`] the runtime has written, to build a later one in.
    fn recycle(&mut self, buf: Vec<u8>) {
        drop(buf);
    }
}

/// A client with its host side: the disk that carries out its file commands, the screen
/// its events go to, and the facts learned while draining.
pub struct ClientNode {
    pub client: Client,
    pub(crate) disk: Disk,
    pub(crate) ui: Ui,
    pub(crate) facts: VecDeque<Input>,
}

impl Node for ClientNode {
    fn poll_timeout(&self) -> Option<Instant> {
        self.client.poll_timeout()
    }

    fn timeout(&mut self, now: Instant) {
        self.client.handle_timeout(now);
    }

    fn accept(&mut self, now: Instant, peer: SocketAddr) -> Option<ConnId> {
        Some(self.client.handle_accept(now, peer))
    }

    fn bytes(&mut self, now: Instant, conn: ConnId, data: &[u8]) {
        self.client.handle_bytes(now, conn, data);
    }

    fn happen(&mut self, now: Instant, what: Happened, io: &mut impl Sockets) {
        let input = match what {
            Happened::Connected(conn, local) => Input::Connected { conn, local },
            Happened::ConnectFailed(conn, why) => Input::ConnectFailed { conn, why },
            Happened::Sent(conn) => Input::Sent(conn),
            Happened::Closed(conn) => Input::Closed(conn),
            // Its reading stops until the peer takes what waits.
            Happened::Backlog(..) => return,
        };
        self.input(now, input, io);
    }

    fn input(&mut self, now: Instant, input: Input, io: &mut impl Sockets) {
        self.give(now, input);
        self.drain(now, io);
    }

    /// Bytes first, and again after every command: a command may have queued bytes that
    /// must go out before what the next command sends (a reply header before its file).
    /// Then events, shown to the user; then each fact the disk found meanwhile.
    fn drain(&mut self, now: Instant, io: &mut impl Sockets) {
        loop {
            while let Some(t) = self.client.poll_transmit() {
                io.transmit(t);
            }
            if let Some(cmd) = self.client.poll_command() {
                self.perform(cmd, io);
                continue;
            }
            if let Some(event) = self.client.poll_event() {
                self.ui.show(&event);
                continue;
            }
            match self.facts.pop_front() {
                Some(fact) => self.give(now, fact),
                None => return,
            }
        }
    }

    fn max_queued(&self) -> usize {
        self.client.max_queued()
    }

    fn exit(&self) -> Option<i32> {
        self.client.exit_status()
    }
}

impl ClientNode {
    /// Carries out one command: file commands on the disk, socket commands by the runtime.
    fn perform(&mut self, cmd: Command, io: &mut impl Sockets) {
        match cmd {
            Command::Connect { conn, addr } => io.connect(conn, addr),
            Command::Close { conn } => io.close(conn),
            Command::SendFile {
                conn,
                path,
                range,
                close,
            } => match Upload::open(&path, range, !close) {
                Ok(upload) => io.send_file(conn, upload, close),
                Err(e) => self.facts.push_back(Input::UploadFailed {
                    conn,
                    why: e.to_string(),
                }),
            },
            file => self.disk.perform(file, &mut self.facts),
        }
    }

    /// The one place an [`Input`] becomes a call into the client.
    fn give(&mut self, now: Instant, input: Input) {
        let client = &mut self.client;
        match input {
            Input::Line(line) => client.handle_input(now, Some(&line)),
            Input::End => client.handle_input(now, None),
            Input::Stop => client.stop(now),
            Input::Folder(name) => client.handle_folder_change(now, &name),
            Input::Looked { name, result } => client.handle_stat(now, &name, result),
            Input::PartOpened { download, result } => {
                client.handle_part_opened(now, download, result);
            }
            Input::PartChecked { download, good } => {
                client.handle_part_checked(now, download, &good);
            }
            Input::Written { download, why } => client.handle_download_io(now, download, &why),
            Input::Committed { download, result } => {
                client.handle_committed(now, download, result);
            }
            Input::Connected { conn, local } => client.handle_connected(now, conn, local),
            Input::ConnectFailed { conn, why } => client.handle_connect_failed(now, conn, &why),
            Input::Sent(conn) => client.handle_sent(now, conn),
            Input::Closed(conn) => client.handle_closed(now, conn),
            Input::UploadFailed { conn, why } => client.handle_upload_failed(now, conn, &why),
            // A gateway's.
            Input::Answered(..) | Input::Republish => {}
        }
    }
}
