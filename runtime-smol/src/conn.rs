//! Connection tasks: one task per connection reads bytes for the core's task and writes
//! what the core queued for the connection, waiting on whichever of the two can go on.
//!
//! This departs on purpose from DESIGN.md's "per connection a reader task and a writer fed
//! from the core's queue", for memory: two tasks per connection with an unbounded channel
//! from the core's task to the writer cost about 5.7 KB of server memory per idle client
//! (two task allocations each sized for its largest await, the channel with its first
//! 31-slot block, a waker slab), over the goal of 4 KiB; this costs about 1.2 KB (mio:
//! 0.66 KB).
//! The task polls read and write readiness itself (`poll_readable`/`poll_writable`: one
//! waker slot per direction) and is fed from a plain queue it shares with the core's task
//! through an `Rc` (every task runs on the executor's one thread). Behaviour is the same:
//! reading and writing still go on independently (reads continue while writes are
//! blocked), so a peer that does not read its replies still has its requests read and its
//! backlog counted, and the core still decides everything (`Server::handle_backlog`,
//! closes). See BENCHMARKS.md, "The index server under load".

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::poll_fn;
use std::io::{self, Read, Write as _};
use std::net::{Shutdown, SocketAddr};
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Poll, Waker};

use napshare_core::ConnId;
use napshare_host::{Happened, Upload};
use smol::channel::Sender;
use smol::net::TcpStream;
use smol::{Async, LocalExecutor};

/// Something for the task that owns the node.
#[derive(Debug)]
pub enum Event {
    Accepted(TcpStream, SocketAddr),
    Connected(ConnId, io::Result<TcpStream>),
    Bytes(ConnId, Vec<u8>),
    /// A connection's fate: `Closed` (once per connection: EOF, error, or closed after its
    /// last write) or `Sent` (a file range of a framed reply is written).
    Happened(Happened),
    /// From a client's other threads (standard input, signals, folder watch, hashing).
    Input(napshare_host::Input),
}

/// Work for a connection's task, in order.
#[derive(Debug)]
pub enum Write {
    Data(Vec<u8>),
    /// A file range; with `notify`, the core hears when it is written.
    File {
        upload: Upload,
        notify: bool,
    },
    /// Shut the connection down once everything before this is written.
    Close,
}

type Socket = Arc<Async<std::net::TcpStream>>;

/// The core task's handle on one connection. Dropping it lets the connection's task write
/// what is queued, then end the connection.
#[derive(Debug)]
pub struct Link {
    shared: Rc<Shared>,
    socket: Socket,
}

/// What the core's task and a connection's task share (both run on the executor's thread).
#[derive(Debug, Default)]
struct Shared {
    /// Work not yet done; the front one may be partly written.
    work: RefCell<VecDeque<Write>>,
    /// Bytes of the front `Write::Data` already written.
    sent: Cell<usize>,
    /// Bytes of `Write::Data` queued and not yet written.
    queued: Cell<usize>,
    /// The connection's task while it waits for work.
    waker: RefCell<Option<Waker>>,
    /// The `Link` is gone: no more work comes.
    dropped: Cell<bool>,
}

impl Shared {
    fn wake(&self) {
        if let Some(waker) = self.waker.borrow_mut().take() {
            waker.wake();
        }
    }
}

impl Link {
    /// Starts the task of `stream`.
    pub fn spawn(
        ex: &LocalExecutor<'_>,
        id: ConnId,
        stream: TcpStream,
        inputs: Sender<Event>,
    ) -> Self {
        let socket = Socket::from(stream);
        let shared = Rc::new(Shared::default());
        ex.spawn(run(id, Arc::clone(&socket), Rc::clone(&shared), inputs))
            .detach();
        Self { shared, socket }
    }

    /// Queues work for the connection's task; after a close or a failure it is dropped.
    pub fn send(&self, w: Write) {
        let mut work = self.shared.work.borrow_mut();
        match w {
            Write::Data(data) => {
                self.shared
                    .queued
                    .set(self.shared.queued.get() + data.len());
                // Replies queued back to back go out in one write.
                match work.back_mut() {
                    Some(Write::Data(last)) => {
                        last.extend_from_slice(&data);
                        spend(data);
                    }
                    _ => work.push_back(Write::Data(data)),
                }
            }
            other => work.push_back(other),
        }
        drop(work);
        self.shared.wake();
    }

    /// Bytes queued and not yet written.
    pub fn queued(&self) -> usize {
        self.shared.queued.get()
    }

    /// Ends the connection now, dropping whatever was still to be written.
    pub fn abort(&self) {
        let _ = self.socket.get_ref().shutdown(Shutdown::Both);
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.shared.dropped.set(true);
        self.shared.wake();
    }
}

/// Size of one read.
const READ_BUF: usize = 64 * 1024;

thread_local! {
    /// The one read buffer of all connection tasks: they all run on the executor's thread,
    /// and a task waits for readiness without holding a buffer, so an idle connection
    /// costs no buffer at all.
    static READ: RefCell<Vec<u8>> = RefCell::new(vec![0; READ_BUF]);
}

/// Most buffers `SPENT` holds between two turns of the core's task; the core keeps no
/// more than a few of them anyway.
const SPENT_MAX: usize = 64;

thread_local! {
    /// `Write::Data` buffers written (or copied into the one before), for the core's task
    /// to take back ([`take_spent`]) so that later replies need no allocation. One pool
    /// for all connection tasks, on the executor's thread like `READ`, so that it costs
    /// an idle connection nothing.
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

/// What one read found.
enum Got {
    Bytes(Vec<u8>),
    Again,
    End,
}

fn read(socket: &std::net::TcpStream) -> Got {
    READ.with(|buf| {
        let mut buf = buf.borrow_mut();
        match (&*socket).read(&mut buf) {
            Ok(0) => Got::End,
            Ok(n) => Got::Bytes(buf[..n].to_vec()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Got::Again,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Got::Again,
            Err(_) => Got::End,
        }
    })
}

/// Where writing stopped.
enum Flushed {
    /// Everything queued is written.
    Idle,
    /// The socket takes no more for now.
    Blocked,
    /// A file range the core wants to hear about is written.
    Sent,
    /// The connection is to end: closed after its last write, failed, or dropped.
    Done,
}

/// Writes queued work until it is all written or the socket would block.
fn flush(socket: &std::net::TcpStream, shared: &Shared) -> Flushed {
    let mut work = shared.work.borrow_mut();
    loop {
        let Some(front) = work.front_mut() else {
            // Keep no queue's memory while idle.
            *work = VecDeque::new();
            return if shared.dropped.get() {
                Flushed::Done
            } else {
                Flushed::Idle
            };
        };
        let step = match front {
            Write::Data(data) => {
                let sent = shared.sent.get();
                if sent == data.len() {
                    Ok(true)
                } else {
                    write(socket, &data[sent..]).map(|n| {
                        shared.sent.set(sent + n);
                        shared.queued.set(shared.queued.get() - n);
                        false
                    })
                }
            }
            Write::File { upload, .. } => match upload.chunk() {
                Ok([]) => Ok(true),
                Ok(chunk) => write(socket, chunk).map(|n| {
                    upload.consume(n);
                    false
                }),
                Err(e) => Err(e),
            },
            Write::Close => return Flushed::Done,
        };
        match step {
            Ok(false) => {}
            Ok(true) => {
                shared.sent.set(0);
                match work.pop_front() {
                    Some(Write::Data(data)) => spend(data),
                    Some(Write::File { notify: true, .. }) => return Flushed::Sent,
                    _ => {}
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Flushed::Blocked,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Flushed::Done,
        }
    }
}

fn write(mut socket: &std::net::TcpStream, bytes: &[u8]) -> io::Result<usize> {
    match socket.write(bytes)? {
        0 => Err(io::ErrorKind::WriteZero.into()),
        n => Ok(n),
    }
}

/// What the connection's task waits for.
enum Wake {
    Readable,
    /// The socket may take more, or there is new work.
    Write,
    Failed,
}

async fn run(id: ConnId, socket: Socket, shared: Rc<Shared>, inputs: Sender<Event>) {
    let mut reading = true;
    let mut closed = false;
    loop {
        let blocked = match flush(socket.get_ref(), &shared) {
            Flushed::Idle => false,
            Flushed::Blocked => true,
            Flushed::Sent => {
                if inputs
                    .send(Event::Happened(Happened::Sent(id)))
                    .await
                    .is_err()
                {
                    break;
                }
                continue;
            }
            Flushed::Done => break,
        };
        let wake = poll_fn(|cx| {
            if blocked {
                // New work can wait until the socket takes more.
                shared.waker.borrow_mut().take();
                match socket.poll_writable(cx) {
                    Poll::Ready(Ok(())) => return Poll::Ready(Wake::Write),
                    Poll::Ready(Err(_)) => return Poll::Ready(Wake::Failed),
                    Poll::Pending => {}
                }
            } else {
                let idle = shared.work.borrow().is_empty() && !shared.dropped.get();
                if !idle {
                    return Poll::Ready(Wake::Write);
                }
                let mut waker = shared.waker.borrow_mut();
                if !waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    *waker = Some(cx.waker().clone());
                }
            }
            if reading {
                match socket.poll_readable(cx) {
                    Poll::Ready(Ok(())) => return Poll::Ready(Wake::Readable),
                    Poll::Ready(Err(_)) => return Poll::Ready(Wake::Failed),
                    Poll::Pending => {}
                }
            }
            Poll::Pending
        })
        .await;
        let got = match wake {
            Wake::Readable => read(socket.get_ref()),
            Wake::Write => continue,
            // The reactor could not watch the socket: it cannot go on.
            Wake::Failed => break,
        };
        match got {
            Got::Again => {}
            Got::Bytes(data) => {
                if inputs.send(Event::Bytes(id, data)).await.is_err() {
                    return;
                }
            }
            Got::End => {
                // The peer may have shut down only its sending side: what the core still
                // queues is written until it closes the connection.
                reading = false;
                closed = true;
                if inputs
                    .send(Event::Happened(Happened::Closed(id)))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
    }
    // Closing, failed, or the core dropped the connection: either way it ends here.
    shared.waker.borrow_mut().take();
    let _ = socket.get_ref().shutdown(Shutdown::Both);
    if !closed {
        let _ = inputs.send(Event::Happened(Happened::Closed(id))).await;
    }
}
