//! A stand-in for the seed's Python index server, to test napshare's client against it.
//!
//! It does what PROTOCOL-classic.md records of the seed, weaknesses included: one `recv()`
//! of up to 1024 bytes is one message (two requests in one segment lose the second, a
//! request split across segments is garbage); the message is decoded as UTF-8 (else the
//! connection dies), stripped of surrounding whitespace and split on whitespace; the first
//! message must be `JOIN` (else the connection is closed); an empty message (a blank line)
//! closes the connection, and so does a malformed one (a name with a space, a size that is
//! not a number: the Python thread dies on the exception). Files are kept per IP address:
//! every client on one host shares one list, `LEAVE` wipes it for all of them, and a client
//! that disconnects without `LEAVE` stays listed. `FILE` lines show that IP only, never a
//! port. Unknown commands get no reply.
//!
//! [`Knobs`] vary what other classic servers do differently: no `ENDSEARCH`, no `NORESULT`
//! (with neither, a search that matches nothing gets no reply at all), no `\n` after the
//! last line of a reply, and a reply in one write rather than one write per line.
//!
//! Plain threads and blocking std sockets: this is test code.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How a reply goes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Knobs {
    /// End every search reply with `ENDSEARCH` (the seed does).
    pub end_search: bool,
    /// Answer a search that matches nothing with `NORESULT` (the seed does). Without it and
    /// without `end_search`, such a search gets no reply at all.
    pub no_result: bool,
    /// End the last line of every reply with `\n` (the seed does); without it a reply such
    /// as `CONFIRMJOIN` arrives with no line ending at all.
    pub final_newline: bool,
    /// Send a whole reply in one write; otherwise (the seed) one write per line, with
    /// `TCP_NODELAY`, so the lines of a search reply tend to arrive in separate segments.
    pub one_segment: bool,
}

impl Knobs {
    /// Exactly the seed.
    pub const SEED: Self = Self {
        end_search: true,
        no_result: true,
        final_newline: true,
        one_segment: false,
    };

    /// A server that never ends a search: the matching `FILE` lines, and nothing at all
    /// when nothing matches.
    pub const NEVER_ENDS: Self = Self {
        end_search: false,
        no_result: false,
        ..Self::SEED
    };
}

impl Default for Knobs {
    fn default() -> Self {
        Self::SEED
    }
}

/// One `recv()` the server made: the bytes that were one message to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// Which connection, numbered from 0 in accept order.
    pub conn: usize,
    pub bytes: Vec<u8>,
}

/// A shared file as the server lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub name: String,
    pub size: u64,
}

#[derive(Debug, Default)]
struct Shared {
    state: Mutex<State>,
    /// Signalled on every message received.
    received: Condvar,
}

#[derive(Debug, Default)]
struct State {
    /// Files per IP, in the order IPs first joined (a Python dict keeps insertion order).
    files: Vec<(IpAddr, Vec<Listed>)>,
    received: Vec<Received>,
    /// A handle on every connection, to close them all when the server stops.
    streams: Vec<TcpStream>,
}

impl State {
    fn files_of(&mut self, ip: IpAddr) -> &mut Vec<Listed> {
        let at = match self.files.iter().position(|(i, _)| *i == ip) {
            Some(at) => at,
            None => {
                self.files.push((ip, Vec::new()));
                self.files.len() - 1
            }
        };
        &mut self.files[at].1
    }
}

/// A running classic server on an ephemeral loopback port; stops when dropped.
#[derive(Debug)]
pub struct ClassicServer {
    addr: SocketAddr,
    knobs: Knobs,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl ClassicServer {
    /// Starts a server on `127.0.0.1:0` that behaves as `knobs` say.
    pub fn start(knobs: Knobs) -> io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::default());
        let stop = Arc::new(AtomicBool::new(false));
        let acceptor = {
            let (shared, stop) = (Arc::clone(&shared), Arc::clone(&stop));
            thread::spawn(move || accept_loop(&listener, &shared, &stop, knobs))
        };
        Ok(Self {
            addr,
            knobs,
            shared,
            stop,
            acceptor: Some(acceptor),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn knobs(&self) -> Knobs {
        self.knobs
    }

    /// Every message received so far, in the order they were received.
    pub fn received(&self) -> Vec<Received> {
        lock(&self.shared.state).received.clone()
    }

    /// Waits until at least `n` messages have been received in all (the way to know a
    /// request that gets no reply has been read); panics after `timeout`.
    pub fn wait_received(&self, n: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let mut state = lock(&self.shared.state);
        while state.received.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "the classic server received {} messages, not {n}, within {timeout:?}: {:?}",
                state.received.len(),
                state.received
            );
            state = self
                .shared
                .received
                .wait_timeout(state, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// The files listed for each IP.
    pub fn files(&self) -> Vec<(IpAddr, Vec<Listed>)> {
        lock(&self.shared.state).files.clone()
    }
}

impl Drop for ClassicServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the acceptor blocked in accept().
        let _ = TcpStream::connect(self.addr);
        for s in lock(&self.shared.state).streams.drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
        if let Some(t) = self.acceptor.take() {
            let _ = t.join();
        }
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // A panicking connection thread must not hide what the others recorded.
    state.lock().unwrap_or_else(|e| e.into_inner())
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>, stop: &AtomicBool, knobs: Knobs) {
    for (conn, stream) in listener.incoming().enumerate() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        let Ok(handle) = stream.try_clone() else {
            continue;
        };
        lock(&shared.state).streams.push(handle);
        let shared = Arc::clone(shared);
        thread::spawn(move || serve(stream, conn, &shared, knobs));
    }
}

/// A connection ends: the peer closed, a socket call failed, or the request was one the
/// seed's thread would die of. Either way the socket is closed.
struct End;

impl From<io::Error> for End {
    fn from(_: io::Error) -> Self {
        Self
    }
}

fn serve(mut stream: TcpStream, conn: usize, shared: &Shared, knobs: Knobs) {
    if stream.set_nodelay(true).is_err() {
        return;
    }
    if let Ok(peer) = stream.peer_addr() {
        let _ = session(&mut stream, conn, peer.ip(), shared, knobs);
    }
    let _ = stream.shutdown(Shutdown::Both);
}

/// One `recv(1024)`, decoded and stripped like the seed's
/// `conn.recv(1024).decode().strip()`.
fn recv_message(stream: &mut TcpStream, conn: usize, shared: &Shared) -> Result<String, End> {
    let mut buf = [0; 1024];
    let n = stream.read(&mut buf)?;
    lock(&shared.state).received.push(Received {
        conn,
        bytes: buf[..n].to_vec(),
    });
    shared.received.notify_all();
    let text = std::str::from_utf8(&buf[..n]).map_err(|_| End)?;
    Ok(text.trim().to_owned())
}

fn session(
    stream: &mut TcpStream,
    conn: usize,
    ip: IpAddr,
    shared: &Shared,
    knobs: Knobs,
) -> Result<(), End> {
    let state = &shared.state;
    let first = recv_message(stream, conn, shared)?;
    if first.split_whitespace().next() != Some("JOIN") {
        return Err(End);
    }
    lock(state).files_of(ip);
    reply(stream, knobs, &["CONFIRMJOIN".to_owned()])?;
    loop {
        let msg = recv_message(stream, conn, shared)?;
        if msg.is_empty() {
            // recv() returned nothing (the peer closed) or a blank line: the seed stops
            // serving, and the files stay listed.
            return Err(End);
        }
        let parts: Vec<&str> = msg.split_whitespace().collect();
        match parts[..] {
            ["CREATEFILE", name, size] => {
                let size: u64 = size.parse().map_err(|_| End)?;
                lock(state).files_of(ip).push(Listed {
                    name: name.to_owned(),
                    size,
                });
                reply(stream, knobs, &[format!("CONFIRMCREATEFILE {name}")])?;
            }
            ["DELETEFILE", name] => {
                lock(state).files_of(ip).retain(|f| f.name != name);
                reply(stream, knobs, &[format!("CONFIRMDELETEFILE {name}")])?;
            }
            ["SEARCH", pattern] => {
                let mut lines: Vec<String> = lock(state)
                    .files
                    .iter()
                    .flat_map(|(owner, files)| {
                        files
                            .iter()
                            .filter(|f| f.name.contains(pattern))
                            .map(move |f| format!("FILE {} {owner} {}", f.name, f.size))
                    })
                    .collect();
                if lines.is_empty() && knobs.no_result {
                    lines.push("NORESULT".to_owned());
                }
                if knobs.end_search {
                    lines.push("ENDSEARCH".to_owned());
                }
                if !lines.is_empty() {
                    reply(stream, knobs, &lines)?;
                }
            }
            ["LEAVE"] => {
                lock(state).files.retain(|(owner, _)| *owner != ip);
                reply(stream, knobs, &["CONFIRMLEAVE".to_owned()])?;
                return Ok(());
            }
            // The commands it knows, with the wrong number of fields: the unpacking
            // raises and the thread dies.
            ["CREATEFILE" | "DELETEFILE" | "SEARCH" | "LEAVE", ..] => return Err(End),
            // Anything else: no reply, and the connection stays open.
            _ => {}
        }
    }
}

/// Sends the lines of one reply as the knobs say.
fn reply(stream: &mut TcpStream, knobs: Knobs, lines: &[String]) -> io::Result<()> {
    let last = lines.len().saturating_sub(1);
    let chunks: Vec<String> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            if i < last || knobs.final_newline {
                format!("{l}\n")
            } else {
                l.clone()
            }
        })
        .collect();
    if knobs.one_segment {
        stream.write_all(chunks.concat().as_bytes())
    } else {
        chunks
            .iter()
            .try_for_each(|c| stream.write_all(c.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    //! The stand-in must itself behave like the seed, or tests against it prove nothing.

    use super::*;
    use crate::node::Wire;

    fn start(knobs: Knobs) -> (ClassicServer, Wire) {
        let server = ClassicServer::start(knobs).unwrap();
        let wire = Wire::connect(server.addr());
        (server, wire)
    }

    /// One request per write, each answered before the next is sent (as the seed client
    /// does), so that every request is one `recv()`.
    fn ask(w: &mut Wire, request: &str, reply: &str) {
        w.send(request);
        w.expect(reply);
    }

    #[test]
    fn the_seed_transcript() {
        let (server, mut w) = start(Knobs::SEED);
        w.play_seed_transcript();
        assert!(server.files().is_empty());
        assert_eq!(server.received().len(), 6);
    }

    #[test]
    fn knobs_change_only_the_framing() {
        let knobs = Knobs {
            end_search: false,
            no_result: true,
            final_newline: false,
            one_segment: true,
        };
        let (_server, mut w) = start(knobs);
        ask(&mut w, "JOIN x\n", "CONFIRMJOIN");
        ask(&mut w, "CREATEFILE a.txt 1\n", "CONFIRMCREATEFILE a.txt");
        ask(&mut w, "CREATEFILE b.txt 2\n", "CONFIRMCREATEFILE b.txt");
        ask(
            &mut w,
            "SEARCH .txt\n",
            "FILE a.txt 127.0.0.1 1\nFILE b.txt 127.0.0.1 2",
        );
        ask(&mut w, "SEARCH zzz\n", "NORESULT");
        ask(&mut w, "LEAVE\n", "CONFIRMLEAVE");
        w.expect_eof();
    }

    #[test]
    fn a_server_that_never_ends_a_search_sends_nothing_for_no_match() {
        let (server, mut w) = start(Knobs::NEVER_ENDS);
        ask(&mut w, "JOIN x\n", "CONFIRMJOIN\n");
        ask(&mut w, "CREATEFILE a.txt 1\n", "CONFIRMCREATEFILE a.txt\n");
        ask(&mut w, "SEARCH .txt\n", "FILE a.txt 127.0.0.1 1\n");
        w.send("SEARCH zzz\n");
        // No reply: wait until it was read, or the next request would be read with it.
        server.wait_received(4, crate::node::TIMEOUT);
        ask(&mut w, "LEAVE\n", "CONFIRMLEAVE\n");
        w.expect_eof();
    }

    #[test]
    fn no_join_first_closes() {
        let (_server, mut w) = start(Knobs::SEED);
        w.send("SEARCH alpha\n");
        w.expect_eof();
    }

    #[test]
    fn a_malformed_request_or_a_blank_line_closes_but_an_unknown_one_is_ignored() {
        for (bad, closes) in [
            ("CREATEFILE my file.txt 3\n", true),
            ("CREATEFILE a.txt big\n", true),
            ("\n", true),
            ("HELLO there\n", false),
        ] {
            let (server, mut w) = start(Knobs::SEED);
            ask(&mut w, "JOIN x\n", "CONFIRMJOIN\n");
            w.send(bad);
            if closes {
                w.expect_eof();
            } else {
                // No reply to wait for: wait until it was read, or the next request
                // would be read with it, as one message.
                server.wait_received(2, crate::node::TIMEOUT);
                ask(&mut w, "SEARCH a\n", "NORESULT\nENDSEARCH\n");
            }
        }
    }

    #[test]
    fn files_are_per_ip_and_outlive_a_disconnect() {
        let (server, mut a) = start(Knobs::SEED);
        ask(&mut a, "JOIN a\n", "CONFIRMJOIN\n");
        ask(&mut a, "CREATEFILE a.txt 1\n", "CONFIRMCREATEFILE a.txt\n");
        drop(a);
        let mut b = Wire::connect(server.addr());
        ask(&mut b, "JOIN b\n", "CONFIRMJOIN\n");
        ask(&mut b, "CREATEFILE b.txt 2\n", "CONFIRMCREATEFILE b.txt\n");
        ask(
            &mut b,
            "SEARCH .txt\n",
            "FILE a.txt 127.0.0.1 1\nFILE b.txt 127.0.0.1 2\nENDSEARCH\n",
        );
        // One LEAVE wipes the IP's list, whoever shared the files.
        ask(&mut b, "LEAVE\n", "CONFIRMLEAVE\n");
        let mut c = Wire::connect(server.addr());
        ask(&mut c, "JOIN c\n", "CONFIRMJOIN\n");
        ask(&mut c, "SEARCH .txt\n", "NORESULT\nENDSEARCH\n");
    }
}
