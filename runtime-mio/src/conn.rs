//! One non-blocking TCP connection: reads until the socket is drained, queues writes (then
//! a file range), and keeps its mio interest in step with what it has to write.

use std::io::{self, Read, Write};

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use napshare_host::Upload;

#[derive(Debug)]
pub struct Conn {
    pub stream: TcpStream,
    /// Bytes queued for writing; `out[sent..]` is still to go.
    out: Vec<u8>,
    sent: usize,
    /// A file range being served after `out`.
    upload: Option<Upload>,
    /// Tell the core when `upload` is written (a framed reply, the connection goes on).
    pub report_sent: bool,
    /// Close once everything queued is written.
    pub closing: bool,
    /// Still waiting for a non-blocking connect to finish.
    pub connecting: bool,
    interest: Interest,
}

impl Conn {
    /// Registers `stream` under `token`.
    pub fn new(
        mut stream: TcpStream,
        connecting: bool,
        registry: &Registry,
        token: Token,
    ) -> io::Result<Self> {
        let interest = if connecting {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        registry.register(&mut stream, token, interest)?;
        Ok(Self {
            stream,
            out: Vec::new(),
            sent: 0,
            upload: None,
            report_sent: false,
            closing: false,
            connecting,
            interest,
        })
    }

    /// Reads what is available into `each`; `false` once the peer closed or the socket
    /// failed. On Linux (epoll, edge-triggered) a short read has drained the socket and
    /// later bytes raise a new event, so it stops there unless the peer closed (`closed`),
    /// saving a `WouldBlock` read a request, as tokio does.
    pub fn read(&mut self, buf: &mut [u8], closed: bool, mut each: impl FnMut(&[u8])) -> bool {
        let short_read_drains = cfg!(any(target_os = "linux", target_os = "android")) && !closed;
        loop {
            match self.stream.read(buf) {
                Ok(0) => return false,
                Ok(n) => {
                    each(&buf[..n]);
                    if short_read_drains && n < buf.len() {
                        return true;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return false,
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
            self.out.extend_from_slice(data);
        }
    }

    /// Serves `upload` after what is queued; then closes with `close`, else reports.
    pub fn send_file(&mut self, upload: Upload, close: bool) {
        (self.upload, self.report_sent) = (Some(upload), !close);
        self.closing |= close;
    }

    /// Writes queued bytes, then the upload, until done or `WouldBlock`. Returns whether
    /// everything is written.
    pub fn flush(&mut self, max_queued: usize) -> io::Result<bool> {
        while self.sent < self.out.len() {
            let n = write(&mut self.stream, &self.out[self.sent..])?;
            if n == 0 {
                return Ok(false);
            }
            self.sent += n;
        }
        self.out.clear();
        self.sent = 0;
        if self.out.capacity() > max_queued {
            self.out = Vec::new();
        }
        while let Some(up) = self.upload.as_mut() {
            let chunk = up.chunk()?;
            if chunk.is_empty() {
                self.upload = None;
                break;
            }
            let n = write(&mut self.stream, chunk)?;
            if n == 0 {
                return Ok(false);
            }
            up.consume(n);
        }
        Ok(true)
    }

    /// Bytes queued and not yet written.
    pub fn queued(&self) -> usize {
        self.out.len() - self.sent
    }

    fn has_backlog(&self) -> bool {
        self.queued() > 0 || self.upload.is_some()
    }

    /// Wants WRITABLE only while bytes wait, and stops reading while more than
    /// `max_queued` do (a peer that does not read its replies gets no more computed).
    pub fn update_interest(&mut self, reg: &Registry, token: Token, max: usize) -> io::Result<()> {
        let wanted = match (self.queued() > max, self.has_backlog()) {
            (true, _) => Interest::WRITABLE,
            (false, true) => Interest::READABLE | Interest::WRITABLE,
            (false, false) => Interest::READABLE,
        };
        if wanted != self.interest {
            self.interest = wanted;
            reg.reregister(&mut self.stream, token, wanted)?;
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

/// One write: the bytes taken, `0` when the socket takes no more for now.
fn write(stream: &mut TcpStream, bytes: &[u8]) -> io::Result<usize> {
    loop {
        return match stream.write(bytes) {
            Ok(0) => Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => Ok(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => Err(e),
        };
    }
}
