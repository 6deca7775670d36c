//! One non-blocking TCP connection: reads until `WouldBlock`, queues writes, and keeps its
//! mio interest in step with what it has to write.

use std::io::{self, Read, Write};

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

use napshare_host::Upload;

use crate::send::{send_upload, METHOD};

/// Stop reading from a connection while this many bytes wait to be written to it: a peer
/// that does not read its replies gets no more of them computed.
const BACKLOG_LIMIT: usize = 1 << 20;

/// What a read pass found.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadEnd {
    /// The socket has no more bytes for now.
    Open,
    /// The peer closed (or the socket failed).
    Closed,
}

#[derive(Debug)]
pub struct Conn {
    pub stream: TcpStream,
    /// Bytes queued for writing; `out[sent..]` is still to go.
    out: Vec<u8>,
    sent: usize,
    /// A file range being served after `out`.
    pub upload: Option<Upload>,
    /// Tell the core when `upload` is written (a framed reply, the connection goes on).
    pub report_sent: bool,
    /// Close once everything queued is written.
    pub closing: bool,
    /// Still waiting for a non-blocking connect to finish.
    pub connecting: bool,
    interest: Interest,
}

impl Conn {
    pub fn new(stream: TcpStream, connecting: bool) -> Self {
        Self {
            stream,
            out: Vec::new(),
            sent: 0,
            upload: None,
            report_sent: false,
            closing: false,
            connecting,
            interest: Interest::READABLE,
        }
    }

    /// Registers a fresh connection under `token`.
    pub fn register(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        self.interest = if self.connecting {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        registry.register(&mut self.stream, token, self.interest)
    }

    /// Reads everything available, passing each chunk to `each`.
    pub fn read_all(&mut self, buf: &mut [u8], mut each: impl FnMut(&[u8])) -> ReadEnd {
        loop {
            match self.stream.read(buf) {
                Ok(0) => return ReadEnd::Closed,
                Ok(n) => each(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return ReadEnd::Open,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return ReadEnd::Closed,
            }
        }
    }

    /// Reads what is available, passing each chunk to `each`, and stops at the first read
    /// that leaves room in `buf` unless the peer closed (`closed`: the event said so).
    ///
    /// mio's readiness is edge-triggered: on Linux (epoll) a read that does not fill the
    /// buffer has drained the socket, and bytes or a FIN arriving after it raise a new
    /// event, so the `WouldBlock` read that [`Conn::read_all`] ends with is one syscall
    /// per request wasted (tokio makes the same use of a short read). Elsewhere this reads
    /// until `WouldBlock`.
    pub fn read_ready(
        &mut self,
        buf: &mut [u8],
        closed: bool,
        mut each: impl FnMut(&[u8]),
    ) -> ReadEnd {
        let short_read_drains = cfg!(any(target_os = "linux", target_os = "android")) && !closed;
        loop {
            match self.stream.read(buf) {
                Ok(0) => return ReadEnd::Closed,
                Ok(n) => {
                    each(&buf[..n]);
                    if short_read_drains && n < buf.len() {
                        return ReadEnd::Open;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return ReadEnd::Open,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return ReadEnd::Closed,
            }
        }
    }

    /// Writes `data` at once when nothing is queued before it, and queues what the socket
    /// did not take: a reply that fits in the socket's buffer is never copied. An error is
    /// left for the next [`Conn::flush`] to report.
    pub fn send(&mut self, data: &[u8]) {
        let mut data = data;
        while !self.connecting && !self.has_backlog() && !data.is_empty() {
            match self.stream.write(data) {
                Ok(0) => break,
                Ok(n) => data = &data[n..],
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        if !data.is_empty() {
            self.queue(data);
        }
    }

    pub fn queue(&mut self, data: &[u8]) {
        if self.sent == self.out.len() {
            self.out.clear();
            self.sent = 0;
        }
        self.out.extend_from_slice(data);
    }

    /// Writes queued bytes (then the upload) until done or `WouldBlock`. Returns whether
    /// everything is written.
    pub fn flush(&mut self) -> io::Result<bool> {
        while self.sent < self.out.len() {
            match self.stream.write(&self.out[self.sent..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.out.clear();
        self.sent = 0;
        if self.out.capacity() > BACKLOG_LIMIT {
            self.out = Vec::new();
        }
        if let Some(up) = self.upload.as_mut() {
            if !send_upload(&mut self.stream, up, METHOD)? {
                return Ok(false);
            }
            self.upload = None;
        }
        Ok(true)
    }

    /// Bytes queued and not yet written.
    pub fn queued(&self) -> usize {
        self.out.len() - self.sent
    }

    /// Whether bytes are waiting to be written.
    pub fn has_backlog(&self) -> bool {
        self.sent < self.out.len() || self.upload.is_some()
    }

    /// Re-registers for WRITABLE only while bytes wait, and stops reading while too many do.
    pub fn update_interest(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        let wanted = if self.connecting {
            Interest::READABLE | Interest::WRITABLE
        } else if self.out.len() - self.sent > BACKLOG_LIMIT {
            Interest::WRITABLE
        } else if self.has_backlog() {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        if wanted != self.interest {
            self.interest = wanted;
            registry.reregister(&mut self.stream, token, wanted)?;
        }
        Ok(())
    }

    /// Whether a pending connect finished: `Some(Ok)` when connected, `Some(Err)` when it
    /// failed, `None` when it is still under way (a spurious wake-up).
    pub fn connect_result(&mut self) -> Option<io::Result<()>> {
        if let Ok(Some(e)) | Err(e) = self.stream.take_error() {
            return Some(Err(e));
        }
        match self.stream.peer_addr() {
            Ok(_) => Some(Ok(())),
            Err(e) if e.kind() == io::ErrorKind::NotConnected => None,
            Err(e) => Some(Err(e)),
        }
    }
}
