//! A connection's I/O: connecting, reading and writing until `WouldBlock`, splitting what
//! arrives into lines, and closing on an error.

use std::io::{self, Read, Write};
use std::net::IpAddr;

use mio::net::TcpStream;
use mio::{Interest, Token};

use super::line::{canonical, push_num};
use super::{Engine, Fault, Kind, Stage, State, SECOND};

impl Engine<'_> {
    pub(super) fn error(&mut self, kind: Fault, msg: Option<String>) {
        let counter = match kind {
            Fault::Connect => &mut self.errors.connect,
            Fault::Closed => &mut self.errors.closed,
            Fault::Timeout => &mut self.errors.timeout,
            Fault::WrongReply => &mut self.errors.wrong_reply,
            Fault::BadResult => &mut self.errors.bad_result,
            Fault::Missing => &mut self.errors.missing,
            Fault::OverCap => &mut self.errors.over_cap,
            Fault::Leave => &mut self.errors.leave,
        };
        *counter += 1;
        if let Some(msg) = msg.filter(|_| self.examples.len() < self.cfg.examples) {
            self.examples.push(format!(
                "[{:.3} s] {kind:?}: {msg}",
                self.now as f64 / SECOND as f64
            ));
        }
    }

    /// Counts an error and closes connection `c`; its files are no longer checked.
    pub(super) fn kill(&mut self, c: usize, kind: Fault, msg: Option<String>) {
        self.error(kind, msg);
        self.close(c, State::Dead);
    }

    fn close(&mut self, c: usize, state: State) {
        let conn = &mut self.conns[c];
        let was = conn.state;
        if let Some(mut stream) = conn.stream.take() {
            let _ = self.poll.registry().deregister(&mut stream);
        }
        conn.state = state;
        self.inflight -= conn.inflight.len();
        conn.inflight.clear();
        conn.out = Vec::new();
        conn.out_pos = 0;
        conn.inbuf = Vec::new();
        self.unissued -= conn.tasks.len();
        conn.tasks = Vec::new();
        if was == State::Connecting || (was == State::Open && !conn.joined) {
            self.connecting -= 1;
        }
        if !conn.reg_done {
            conn.reg_done = true;
            self.reg_left -= 1;
        }
        if matches!(was, State::Leaving | State::Left) {
            self.leave_left -= 1;
        }
    }

    pub(super) fn launch_connects(&mut self) {
        while self.stage == Stage::Register
            && self.connecting < self.cfg.connect_batch
            && self.next_connect < self.conns.len()
        {
            let c = self.next_connect;
            self.next_connect += 1;
            match TcpStream::connect(self.addr) {
                Ok(mut stream) => {
                    if let Err(e) = self.poll.registry().register(
                        &mut stream,
                        Token(c),
                        Interest::READABLE | Interest::WRITABLE,
                    ) {
                        self.conns[c].state = State::Dead;
                        self.conns[c].reg_done = true;
                        self.reg_left -= 1;
                        err!(self, Fault::Connect, "client {c}: register: {e}");
                        continue;
                    }
                    let conn = &mut self.conns[c];
                    conn.stream = Some(stream);
                    conn.state = State::Connecting;
                    conn.since = self.now;
                    self.connecting += 1;
                }
                Err(e) => {
                    self.conns[c].state = State::Dead;
                    self.conns[c].reg_done = true;
                    self.reg_left -= 1;
                    err!(self, Fault::Connect, "client {c}: connect: {e}");
                }
            }
        }
    }

    pub(super) fn on_event(&mut self, c: usize, readable: bool, read_closed: bool, writable: bool) {
        if c >= self.conns.len() {
            return;
        }
        if self.conns[c].state == State::Connecting {
            let stream = self.conns[c]
                .stream
                .as_ref()
                .expect("connecting has a stream");
            match stream.take_error() {
                Ok(Some(e)) | Err(e) => {
                    return kill!(self, c, Fault::Connect, "client {c}: connect: {e}");
                }
                Ok(None) => {}
            }
            match stream.peer_addr() {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return,
                Err(e) => return kill!(self, c, Fault::Connect, "client {c}: connect: {e}"),
            }
            let _ = stream.set_nodelay(true);
            let ip = stream.local_addr().map(|a| canonical(a.ip())).ok();
            let conn = &mut self.conns[c];
            conn.ip = ip;
            conn.state = State::Open;
            let port = u64::from(self.cfg.port_base) + c as u64;
            let mut line = b"JOIN ".to_vec();
            match ip {
                Some(IpAddr::V6(v6)) => line.extend_from_slice(format!("[{v6}]:").as_bytes()),
                Some(ip) => line.extend_from_slice(format!("{ip}:").as_bytes()),
                None => line.extend_from_slice(b"127.0.0.1:"),
            }
            push_num(&mut line, port);
            self.conns[c].peer = line[b"JOIN ".len()..].to_vec();
            line.push(b'\n');
            self.send(c, Kind::Join, 0, &line, None);
        }
        if readable && self.conns[c].stream.is_some() {
            self.on_readable(c, read_closed);
        }
        if self.conns[c].stream.is_none() {
            return;
        }
        self.pump(c);
        if writable || !self.conns[c].out.is_empty() {
            self.flush(c);
        }
    }

    pub(super) fn flush(&mut self, c: usize) {
        let conn = &mut self.conns[c];
        let Some(stream) = conn.stream.as_mut() else {
            return;
        };
        while conn.out_pos < conn.out.len() {
            match stream.write(&conn.out[conn.out_pos..]) {
                Ok(0) => return kill!(self, c, Fault::Closed, "client {c}: write returned 0"),
                Ok(n) => conn.out_pos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let leaving = matches!(conn.state, State::Leaving | State::Left);
                    return kill!(
                        self,
                        c,
                        if leaving { Fault::Leave } else { Fault::Closed },
                        "client {c}: write: {e}"
                    );
                }
            }
        }
        conn.out.clear();
        conn.out_pos = 0;
    }

    /// Reads what connection `c` has; `read_closed`: the peer's close has arrived too.
    fn on_readable(&mut self, c: usize, read_closed: bool) {
        let mut scratch = std::mem::take(&mut self.scratch);
        while let Some(stream) = self.conns[c].stream.as_mut() {
            match stream.read(&mut scratch) {
                Ok(0) => {
                    self.on_eof(c, None);
                    break;
                }
                Ok(n) => {
                    self.on_bytes(c, &scratch[..n]);
                    // A short read took everything there was: any byte (or close) that
                    // comes later is a new edge and a new event, so the read that would
                    // only say WouldBlock can be saved, as tokio does. Not when the close
                    // came with the data: that edge is spent, and only reading on sees it.
                    if n < scratch.len() && !read_closed {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.on_eof(c, Some(e));
                    break;
                }
            }
        }
        self.scratch = scratch;
    }

    fn on_eof(&mut self, c: usize, err: Option<io::Error>) {
        match self.conns[c].state {
            State::Left => {
                self.left += 1;
                self.close(c, State::Closed);
            }
            State::Leaving => kill!(
                self,
                c,
                Fault::Leave,
                "client {c}: closed before CONFIRMLEAVE ({err:?})"
            ),
            _ => kill!(
                self,
                c,
                Fault::Closed,
                "client {c}: the server closed the connection ({})",
                err.map_or("end of stream".to_owned(), |e| e.to_string())
            ),
        }
    }

    fn on_bytes(&mut self, c: usize, mut data: &[u8]) {
        if !self.conns[c].inbuf.is_empty() {
            match data.iter().position(|&b| b == b'\n') {
                None => {
                    self.conns[c].inbuf.extend_from_slice(data);
                    if self.conns[c].inbuf.len() > 1 << 20 {
                        kill!(
                            self,
                            c,
                            Fault::WrongReply,
                            "client {c}: a reply line over 1 MiB"
                        );
                    }
                    return;
                }
                Some(i) => {
                    let mut line = std::mem::take(&mut self.conns[c].inbuf);
                    line.extend_from_slice(&data[..i]);
                    self.on_line(c, &line);
                    line.clear();
                    if let Some(conn) = self.conns.get_mut(c).filter(|c| c.stream.is_some()) {
                        conn.inbuf = line;
                    } else {
                        return;
                    }
                    data = &data[i + 1..];
                }
            }
        }
        while let Some(i) = data.iter().position(|&b| b == b'\n') {
            self.on_line(c, &data[..i]);
            if self.conns[c].stream.is_none() {
                return;
            }
            data = &data[i + 1..];
        }
        self.conns[c].inbuf.extend_from_slice(data);
    }
}
