//! Raw connections for speaking a protocol by hand.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::Instant;

use super::TIMEOUT;

/// A raw TCP connection for speaking a protocol by hand, with deadlines on every read.
#[derive(Debug)]
pub struct Wire {
    stream: TcpStream,
    who: String,
    /// Every byte received so far, for failure messages.
    received: Vec<u8>,
}

/// The seed's observed transcript (PROTOCOL-classic.md), one request per write, each
/// answered before the next is sent, ending with the server's close.
pub const SEED_TRANSCRIPT: &[(&str, &str)] = &[
    ("JOIN 127.0.0.1\n", "CONFIRMJOIN\n"),
    (
        "CREATEFILE alpha.txt 100\n",
        "CONFIRMCREATEFILE alpha.txt\n",
    ),
    (
        "SEARCH alpha\n",
        "FILE alpha.txt 127.0.0.1 100\nENDSEARCH\n",
    ),
    ("SEARCH nomatch\n", "NORESULT\nENDSEARCH\n"),
    ("DELETEFILE never.txt\n", "CONFIRMDELETEFILE never.txt\n"),
    ("LEAVE\n", "CONFIRMLEAVE\n"),
];

impl Wire {
    /// Plays [`SEED_TRANSCRIPT`] and expects the close after it.
    pub fn play_seed_transcript(&mut self) {
        for (request, reply) in SEED_TRANSCRIPT {
            self.send(request);
            self.expect(reply);
        }
        self.expect_eof();
    }

    pub fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
        stream.set_nodelay(true).expect("TCP_NODELAY");
        let who = format!("connection {} -> {addr}", stream.local_addr().unwrap());
        Self {
            stream,
            who,
            received: Vec::new(),
        }
    }

    pub fn stream(&mut self) -> &mut TcpStream {
        &mut self.stream
    }

    /// Writes all of `bytes` in one write call.
    pub fn send(&mut self, bytes: impl AsRef<[u8]>) {
        let bytes = bytes.as_ref();
        if let Err(e) = self.stream.write_all(bytes) {
            panic!("{}: cannot send {}: {e}", self.who, show(bytes));
        }
    }

    /// Writes `bytes` one byte per write call.
    pub fn send_bytewise(&mut self, bytes: impl AsRef<[u8]>) {
        for b in bytes.as_ref() {
            self.send([*b]);
        }
    }

    /// Reads exactly `expected.len()` bytes and checks they are `expected`.
    pub fn expect(&mut self, expected: impl AsRef<[u8]>) {
        let expected = expected.as_ref();
        let from = self.received.len();
        let deadline = Instant::now() + TIMEOUT;
        let mut buf = vec![0; expected.len()];
        let mut got = 0;
        while got < expected.len() {
            match self.read_some(&mut buf[got..], deadline) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) => panic!(
                    "{}: expected {}, got {} then {e}",
                    self.who,
                    show(expected),
                    show(&self.received[from..])
                ),
            }
        }
        assert!(
            &buf[..got] == expected,
            "{}: expected {}, got {}{}",
            self.who,
            show(expected),
            show(&buf[..got]),
            if got < expected.len() {
                " and then end of stream"
            } else {
                ""
            }
        );
    }

    /// Reads until what was read ends with `end` (bytes after it in the same read are an
    /// error: nothing may follow unasked).
    pub fn read_until(&mut self, end: &[u8]) -> Vec<u8> {
        let from = self.received.len();
        let deadline = Instant::now() + TIMEOUT;
        let mut buf = [0; 4096];
        while !self.received[from..].ends_with(end) {
            match self.read_some(&mut buf, deadline) {
                Ok(0) => panic!(
                    "{}: expected {} to end what came, got {} then end of stream",
                    self.who,
                    show(end),
                    show(&self.received[from..])
                ),
                Ok(_) => {}
                Err(e) => panic!(
                    "{}: expected {} to end what came, got {} then {e}",
                    self.who,
                    show(end),
                    show(&self.received[from..])
                ),
            }
        }
        self.received[from..].to_vec()
    }

    /// Reads everything until the peer closes.
    pub fn read_to_end(&mut self) -> Vec<u8> {
        let from = self.received.len();
        let deadline = Instant::now() + TIMEOUT;
        let mut buf = [0; 64 * 1024];
        loop {
            match self.read_some(&mut buf, deadline) {
                Ok(0) => return self.received[from..].to_vec(),
                Ok(_) => {}
                // A reset after the data is a close too.
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {
                    return self.received[from..].to_vec()
                }
                Err(e) => panic!(
                    "{}: expected the peer to close, got {} then {e}",
                    self.who,
                    show(&self.received[from..])
                ),
            }
        }
    }

    /// Checks that the peer closes without sending another byte.
    pub fn expect_eof(&mut self) {
        let rest = self.read_to_end();
        assert!(
            rest.is_empty(),
            "{}: expected the peer to close, got {}",
            self.who,
            show(&rest)
        );
    }

    /// Closes our sending side (the peer reads end of stream).
    pub fn shutdown_write(&mut self) {
        let _ = self.stream.shutdown(Shutdown::Write);
    }

    fn read_some(&mut self, buf: &mut [u8], deadline: Instant) -> io::Result<usize> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("nothing more within {TIMEOUT:?}"),
                ));
            }
            self.stream.set_read_timeout(Some(left))?;
            match self.stream.read(buf) {
                Ok(n) => {
                    self.received.extend_from_slice(&buf[..n]);
                    return Ok(n);
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// Bytes as an escaped string literal, for messages.
pub fn show(bytes: &[u8]) -> String {
    const MAX: usize = 600;
    let cut = bytes.len() > MAX;
    let shown: String = bytes[..bytes.len().min(MAX)].escape_ascii().to_string();
    if cut {
        format!("b\"{shown}\"... ({} bytes)", bytes.len())
    } else {
        format!("b\"{shown}\"")
    }
}
