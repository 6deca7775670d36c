//! Connection tasks: one per connection, reading bytes for the node's task and writing what
//! the node queued for it, polling read and write readiness itself. DESIGN.md's reader
//! task plus writer task fed by a channel cost about 5.7 KB of server memory per idle
//! client, this about 1.2 KB (BENCHMARKS.md, "The index server under load"). Reading goes
//! on while writes are blocked, so a peer that does not read its replies still has its
//! requests read and its backlog counted; the core still decides (`handle_backlog`, closes).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::poll_fn;
use std::io::{self, ErrorKind, Read, Write as _};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::rc::Rc;
use std::sync::Arc;
use std::task::{ready, Poll, Waker};

use napshare_core::ConnId;
use napshare_host::{Happened, Input, Upload};
use smol::channel::Sender;
use smol::{Async, LocalExecutor};

/// Something for the task that owns the node.
#[derive(Debug)]
pub enum Event {
    Accepted(Async<TcpStream>, SocketAddr),
    Connected(ConnId, Async<TcpStream>, SocketAddr),
    Bytes(ConnId, Vec<u8>),
    /// What happened to a connection; `Closed` comes once (EOF, error, or after a close).
    Happened(Happened),
    /// From a client's other threads (standard input, signals, folder watch, hashing).
    Input(Input),
}

/// Work for a connection's task, in order.
#[derive(Debug)]
enum Write {
    Data(Vec<u8>),
    /// A file range; with `true`, the node hears when it is written.
    File(Upload, bool),
}

type Socket = Arc<Async<TcpStream>>;

/// The node task's handle on one connection. Dropping it lets the connection's task write
/// what is queued, then end the connection.
#[derive(Debug)]
pub struct Link {
    shared: Rc<RefCell<Shared>>,
    socket: Socket,
}

/// What the node's task and a connection's task share (both on the executor's thread).
#[derive(Debug, Default)]
struct Shared {
    /// Work not yet done; of the front `Write::Data`, `sent` bytes are written.
    work: VecDeque<Write>,
    sent: usize,
    /// Bytes of `Write::Data` queued and not yet written.
    queued: usize,
    /// The connection's task while it waits for work.
    waker: Option<Waker>,
    /// The `Link` is gone: no more work comes.
    dropped: bool,
}

impl Shared {
    fn push(&mut self, w: Write) {
        self.work.push_back(w);
        self.wake();
    }

    fn wake(&mut self) {
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }
}

impl Link {
    /// Starts the task of `socket`.
    pub fn spawn(ex: &LocalExecutor<'_>, id: ConnId, socket: Socket, to: Sender<Event>) -> Self {
        let shared = Rc::default();
        ex.spawn(run(id, Arc::clone(&socket), Rc::clone(&shared), to))
            .detach();
        Self { shared, socket }
    }

    /// Queues `data`; returns the bytes queued and not yet written.
    pub fn send(&self, data: Vec<u8>) -> usize {
        let mut shared = self.shared.borrow_mut();
        shared.queued += data.len();
        // Replies queued back to back go out in one write.
        if let Some(Write::Data(last)) = shared.work.back_mut() {
            last.extend_from_slice(&data);
            spend(data);
        } else {
            shared.push(Write::Data(data));
        }
        shared.queued
    }

    /// Queues a file range; with `notify`, the node hears when it is written.
    pub fn send_file(&self, upload: Upload, notify: bool) {
        self.shared.borrow_mut().push(Write::File(upload, notify));
    }

    /// Ends the connection now, dropping whatever was still to be written.
    pub fn abort(&self) {
        let _ = self.socket.get_ref().shutdown(Shutdown::Both);
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        let mut shared = self.shared.borrow_mut();
        shared.dropped = true;
        shared.wake();
    }
}

/// Most buffers `SPENT` keeps between two turns of the node's task (which keeps a few).
const SPENT_MAX: usize = 64;

thread_local! {
    /// The one 64 KiB read buffer of all connection tasks (all on the executor's thread): a
    /// task waits for readiness holding no buffer, so an idle connection costs none.
    static READ: RefCell<Vec<u8>> = RefCell::new(vec![0; 64 * 1024]);
    /// `Write::Data` buffers written (or copied into the one before), for the node's task
    /// to take back ([`take_spent`]) so that later replies need no allocation; one pool for
    /// all connection tasks, like `READ`, so that it costs an idle connection nothing.
    static SPENT: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

fn spend(buf: Vec<u8>) {
    SPENT.with_borrow_mut(|spent| {
        if spent.len() < SPENT_MAX {
            spent.push(buf);
        }
    });
}

/// Hands every written `Write::Data` buffer to `give` (`Server::recycle`, or `drop`).
pub fn take_spent(give: impl FnMut(Vec<u8>)) {
    // Taken out first: `give` may not touch the pool while it is borrowed.
    let mut spent = SPENT.take();
    spent.drain(..).for_each(give);
    SPENT.set(spent);
}

/// Writes queued work until it is all written or the socket would block (`Pending`), the
/// node is to hear of it (`Ready(Some)`), or the connection is to end (`Ready(None)`).
fn flush(id: ConnId, socket: &TcpStream, shared: &mut Shared) -> Poll<Option<Happened>> {
    while let Some(front) = shared.work.front_mut() {
        let bytes = match front {
            Write::Data(data) => Ok(&data[shared.sent..]),
            Write::File(upload, _) => upload.chunk(),
        };
        match bytes.and_then(|bytes| write(socket, bytes)) {
            Ok(0) => {
                shared.sent = 0;
                match shared.work.pop_front() {
                    Some(Write::Data(data)) => spend(data),
                    Some(Write::File(_, true)) => return Poll::Ready(Some(Happened::Sent(id))),
                    _ => {}
                }
            }
            Ok(n) => match front {
                Write::Data(_) => {
                    shared.sent += n;
                    shared.queued -= n;
                }
                Write::File(upload, _) => upload.consume(n),
            },
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Poll::Pending,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return Poll::Ready(None),
        }
    }
    // Keep no queue's memory while idle.
    shared.work = VecDeque::new();
    match shared.dropped {
        true => Poll::Ready(None),
        false => Poll::Pending,
    }
}

/// Writes some of `bytes`: `Ok(0)` when there are none.
fn write(mut socket: &TcpStream, bytes: &[u8]) -> io::Result<usize> {
    match bytes {
        [] => Ok(0),
        _ => match socket.write(bytes)? {
            0 => Err(ErrorKind::WriteZero.into()),
            n => Ok(n),
        },
    }
}

/// Writes what it can, then reads once, until the connection ends.
async fn run(id: ConnId, socket: Socket, shared: Rc<RefCell<Shared>>, to: Sender<Event>) {
    let mut reading = true;
    loop {
        let mut blocked = false;
        // Something for the node, or `None` to end the connection.
        let event = poll_fn(|cx| loop {
            if blocked {
                match socket.poll_writable(cx) {
                    Poll::Ready(Ok(())) => blocked = false,
                    Poll::Ready(Err(_)) => return Poll::Ready(None),
                    Poll::Pending => {}
                }
            }
            if !blocked {
                let mut shared = shared.borrow_mut();
                if let Poll::Ready(what) = flush(id, socket.get_ref(), &mut shared) {
                    return Poll::Ready(what.map(Event::Happened));
                }
                blocked = !shared.work.is_empty();
                if blocked {
                    // New work can wait until the socket takes more.
                    shared.waker = None;
                    continue;
                }
                shared.waker.get_or_insert_with(|| cx.waker().clone());
            }
            if !reading {
                return Poll::Pending;
            }
            // The reactor failing to watch the socket ends it too.
            if ready!(socket.poll_readable(cx)).is_err() {
                return Poll::Ready(None);
            }
            let mut stream = socket.get_ref();
            match READ.with_borrow_mut(|buf| stream.read(buf).map(|n| buf[..n].to_vec())) {
                Ok(data) if !data.is_empty() => return Poll::Ready(Some(Event::Bytes(id, data))),
                Err(e) if e.kind() == ErrorKind::WouldBlock => blocked = false,
                Err(e) if e.kind() == ErrorKind::Interrupted => blocked = false,
                // The peer may have shut down only its sending side: what the node still
                // queues is written until it closes the connection.
                _ => {
                    reading = false;
                    return Poll::Ready(Some(Event::Happened(Happened::Closed(id))));
                }
            }
        })
        .await;
        let Some(event) = event else { break };
        if to.send(event).await.is_err() {
            break;
        }
    }
    // Closing, failed, or the node dropped the connection: either way it ends here.
    shared.borrow_mut().waker = None;
    let _ = socket.get_ref().shutdown(Shutdown::Both);
    if reading {
        let _ = to.send(Event::Happened(Happened::Closed(id))).await;
    }
}
