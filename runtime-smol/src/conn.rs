//! Connection tasks: a reader that forwards bytes to the core's task, and a writer that
//! drains what the core queued for the connection.

use std::cell::{Cell, RefCell};
use std::io::{self, Read};
use std::net::{Shutdown, SocketAddr};
use std::rc::Rc;
use std::sync::Arc;

use napshare_core::host::Upload;
use napshare_core::ConnId;
use smol::channel::{self, Receiver, Sender};
use smol::io::AsyncWriteExt;
use smol::net::TcpStream;
use smol::{Async, LocalExecutor};

/// Something that happened, for the task that owns the core.
#[derive(Debug)]
pub enum Input {
    Bytes(ConnId, Vec<u8>),
    /// The connection is gone (EOF, error, or closed after its last write).
    Closed(ConnId),
    Accepted(TcpStream, SocketAddr),
    Connected(ConnId, io::Result<TcpStream>),
    /// A file range sent as a framed reply is written.
    Sent(ConnId),
    /// From the user's side of a client (standard input, stop signals).
    Host(napshare_core::host::Input),
}

/// Work for a connection's writer, in order.
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

/// The core task's handle on one connection.
#[derive(Debug)]
pub struct Link {
    work: Sender<Write>,
    /// Bytes handed to the writer and not yet written.
    queued: Rc<Cell<usize>>,
    stream: TcpStream,
}

impl Link {
    /// Starts the reader and writer tasks of `stream`.
    pub fn spawn(
        ex: &LocalExecutor<'_>,
        id: ConnId,
        stream: TcpStream,
        inputs: Sender<Input>,
    ) -> Self {
        let (work, rx) = channel::unbounded();
        let queued = Rc::new(Cell::new(0));
        ex.spawn(read(id, stream.clone(), inputs.clone())).detach();
        ex.spawn(write(id, stream.clone(), rx, Rc::clone(&queued), inputs))
            .detach();
        Self {
            work,
            queued,
            stream,
        }
    }

    /// Queues work for the writer; a writer that is gone has closed the connection already.
    pub fn send(&self, w: Write) {
        if let Write::Data(data) = &w {
            self.queued.set(self.queued.get() + data.len());
        }
        let _ = self.work.try_send(w);
    }

    /// Bytes queued and not yet written.
    pub fn queued(&self) -> usize {
        self.queued.get()
    }

    /// Ends the connection now, dropping whatever was still to be written.
    pub fn abort(&self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }
}

/// Size of one read.
const READ_BUF: usize = 64 * 1024;

thread_local! {
    /// The one read buffer of all reader tasks: they all run on the executor's thread, and
    /// a task waits for readiness without holding a buffer, so an idle connection costs
    /// no buffer at all.
    static READ: RefCell<Vec<u8>> = RefCell::new(vec![0; READ_BUF]);
}

/// What one read found.
enum Got {
    Bytes(Vec<u8>),
    Again,
    End,
}

async fn read(id: ConnId, stream: TcpStream, inputs: Sender<Input>) {
    let stream: Arc<Async<std::net::TcpStream>> = stream.into();
    loop {
        if stream.readable().await.is_err() {
            break;
        }
        let got = READ.with(|buf| {
            let mut buf = buf.borrow_mut();
            let mut socket: &std::net::TcpStream = stream.get_ref();
            match socket.read(&mut buf) {
                Ok(0) => Got::End,
                Ok(n) => Got::Bytes(buf[..n].to_vec()),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Got::Again,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => Got::Again,
                Err(_) => Got::End,
            }
        });
        match got {
            Got::Again => {}
            Got::End => break,
            Got::Bytes(data) => {
                if inputs.send(Input::Bytes(id, data)).await.is_err() {
                    return;
                }
            }
        }
    }
    let _ = inputs.send(Input::Closed(id)).await;
}

async fn write(
    id: ConnId,
    mut stream: TcpStream,
    work: Receiver<Write>,
    queued: Rc<Cell<usize>>,
    inputs: Sender<Input>,
) {
    while let Ok(w) = work.recv().await {
        let done = match w {
            Write::Data(data) => {
                let result = stream.write_all(&data).await.map(|()| false);
                queued.set(queued.get().saturating_sub(data.len()));
                result
            }
            Write::File { upload, notify } => match send_file(&mut stream, upload).await {
                Ok(()) if notify => match inputs.send(Input::Sent(id)).await {
                    Ok(()) => Ok(false),
                    Err(_) => Ok(true),
                },
                other => other.map(|()| false),
            },
            Write::Close => stream.flush().await.map(|()| true),
        };
        if !matches!(done, Ok(false)) {
            break;
        }
    }
    // Closing, failed, or the core dropped the connection: either way it ends here, and
    // the reader sees the shutdown as an end of input.
    let _ = stream.shutdown(Shutdown::Both);
    let _ = inputs.send(Input::Closed(id)).await;
}

async fn send_file(stream: &mut TcpStream, mut upload: Upload) -> io::Result<()> {
    loop {
        let chunk = upload.chunk()?;
        if chunk.is_empty() {
            return Ok(());
        }
        let n = stream.write(chunk).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        upload.consume(n);
    }
}
