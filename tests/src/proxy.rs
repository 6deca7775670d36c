//! A TCP proxy that misbehaves on purpose, for fault-injection tests: it forwards bytes
//! between a client and an upstream address, and on the way back it can split them into
//! small pieces, delay each piece, and cut the connection after a given number of bytes.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// What the proxy does to the bytes coming back from upstream on one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Faults {
    /// The most bytes written at once (1 splits every byte apart).
    pub chunk: usize,
    /// A pause before each write.
    pub delay: Duration,
    /// Close both sides after this many bytes came back (a cut mid-transfer).
    pub cut_after: Option<u64>,
}

impl Faults {
    /// Forwards everything as it comes.
    pub const NONE: Self = Self {
        chunk: usize::MAX,
        delay: Duration::ZERO,
        cut_after: None,
    };
}

/// A running proxy; it stops accepting when dropped.
pub struct Proxy {
    addr: SocketAddr,
    faults: Arc<Mutex<Faults>>,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    /// Listens on a loopback port and forwards every connection to `upstream`.
    pub fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let addr = listener.local_addr().expect("the proxy's address");
        let faults = Arc::new(Mutex::new(Faults::NONE));
        let stop = Arc::new(AtomicBool::new(false));
        let (f, s) = (Arc::clone(&faults), Arc::clone(&stop));
        thread::spawn(move || {
            for client in listener.incoming() {
                if s.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(client) = client else { continue };
                let faults = *f.lock().expect("faults lock");
                thread::spawn(move || relay(client, upstream, faults));
            }
        });
        Self { addr, faults, stop }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The faults of connections accepted from now on.
    pub fn set_faults(&self, faults: Faults) {
        *self.faults.lock().expect("faults lock") = faults;
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

fn relay(client: TcpStream, upstream: SocketAddr, faults: Faults) {
    let Ok(server) = TcpStream::connect(upstream) else {
        return;
    };
    let (Ok(mut client_r), Ok(mut server_w)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    // Requests go up unchanged.
    let up = thread::spawn(move || {
        let mut buf = [0; 16 * 1024];
        while let Ok(n) = client_r.read(&mut buf) {
            if n == 0 || server_w.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = server_w.shutdown(Shutdown::Write);
    });
    down(&server, &client, faults);
    let _ = client.shutdown(Shutdown::Both);
    let _ = server.shutdown(Shutdown::Both);
    let _ = up.join();
}

/// Replies come back split, delayed, and possibly cut.
fn down(mut server: &TcpStream, mut client: &TcpStream, faults: Faults) {
    let mut buf = vec![0; 64 * 1024];
    let mut sent = 0u64;
    loop {
        let n = match server.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        for piece in buf[..n].chunks(faults.chunk.max(1)) {
            let piece = match faults.cut_after {
                Some(cut) if sent + piece.len() as u64 >= cut => {
                    let keep = (cut - sent) as usize;
                    let _ = client.write_all(&piece[..keep]);
                    return;
                }
                _ => piece,
            };
            if !faults.delay.is_zero() {
                thread::sleep(faults.delay);
            }
            if client.write_all(piece).is_err() {
                return;
            }
            sent += piece.len() as u64;
        }
    }
}
