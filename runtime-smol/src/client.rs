//! A client on smol: the session with the index server, the file server, downloads and
//! standard input all feed one task that owns the core.

use std::collections::HashMap;
use std::io;
use std::time::Instant;

use napshare_core::client::{Client, Command};
use napshare_core::{ConnId, Transmit};
use napshare_host::{drain, feed, ClientIo, ClientSetup, Disk, Ui, Upload};
use smol::channel::{self, Sender};
use smol::net::{TcpListener, TcpStream};
use smol::{Async, LocalExecutor, Timer};

use crate::conn::{take_spent, Input, Link, Write};
use crate::next_input;

/// Runs a client until it leaves (status 0) or loses the server (status 1).
pub fn run(listener: Async<std::net::TcpListener>, setup: ClientSetup) -> io::Result<i32> {
    let ex = LocalExecutor::new();
    smol::block_on(ex.run(client(&ex, listener, setup)))
}

struct Io<'a> {
    ex: &'a LocalExecutor<'static>,
    inputs: Sender<Input>,
    links: HashMap<ConnId, Link>,
    disk: Disk,
    ui: Ui,
}

async fn client(
    ex: &LocalExecutor<'static>,
    listener: Async<std::net::TcpListener>,
    setup: ClientSetup,
) -> io::Result<i32> {
    let listener = TcpListener::from(listener);
    let (inputs_tx, inputs) = channel::bounded(1024);
    ex.spawn(accept(listener, inputs_tx.clone())).detach();
    let host_tx = inputs_tx.clone();
    let (mut client, ui, disk) = setup.start(Instant::now(), move |input| {
        // The loop may be gone already when input ends; nothing to do then.
        host_tx.send_blocking(Input::Host(input)).is_ok()
    })?;
    let mut io = Io {
        ex,
        inputs: inputs_tx,
        links: HashMap::new(),
        disk,
        ui,
    };
    let mut timer = Timer::never();
    drain(&mut client, &mut io, Instant::now());
    while client.exit_status().is_none() {
        let input = next_input(&inputs, &mut timer, client.poll_timeout()).await;
        let now = Instant::now();
        match input {
            Some(Input::Accepted(stream, peer)) => {
                let id = client.handle_accept(now, peer);
                io.attach(id, stream);
            }
            Some(Input::Connected(id, Ok(stream))) => match stream.local_addr() {
                Ok(local) => {
                    io.attach(id, stream);
                    client.handle_connected(now, id, local);
                }
                Err(e) => client.handle_connect_failed(now, id, &e.to_string()),
            },
            Some(Input::Connected(id, Err(e))) => {
                client.handle_connect_failed(now, id, &e.to_string());
            }
            Some(Input::Bytes(id, data)) => client.handle_bytes(now, id, &data),
            Some(Input::Closed(id)) => {
                io.links.remove(&id);
                client.handle_closed(now, id);
            }
            Some(Input::Host(input)) => feed(&mut client, &mut io, now, input),
            Some(Input::Sent(id)) => client.handle_sent(now, id),
            None => client.handle_timeout(now),
        }
        drain(&mut client, &mut io, now);
        // The client's core builds no messages in old buffers: keep none.
        take_spent(drop);
    }
    Ok(client.exit_status().unwrap_or(1))
}

impl Io<'_> {
    fn attach(&mut self, id: ConnId, stream: TcpStream) {
        let link = Link::spawn(self.ex, id, stream, self.inputs.clone());
        self.links.insert(id, link);
    }
}

impl ClientIo for Io<'_> {
    fn disk(&mut self) -> &mut Disk {
        &mut self.disk
    }

    fn ui(&mut self) -> &mut Ui {
        &mut self.ui
    }

    fn transmit(&mut self, _client: &mut Client, t: Transmit, _now: Instant) {
        if let Some(link) = self.links.get(&t.conn) {
            link.send(Write::Data(t.data));
        }
    }

    fn socket(&mut self, _client: &mut Client, cmd: Command, _now: Instant) {
        match cmd {
            Command::Connect { conn, addr } => {
                let inputs = self.inputs.clone();
                self.ex
                    .spawn(async move {
                        let result = TcpStream::connect(addr).await;
                        let _ = inputs.send(Input::Connected(conn, result)).await;
                    })
                    .detach();
            }
            Command::Close { conn } => {
                if let Some(link) = self.links.remove(&conn) {
                    link.send(Write::Close);
                }
            }
            Command::SendFile {
                conn,
                path,
                range,
                close,
            } => {
                if let Some(link) = self.links.get(&conn) {
                    // A file that cannot be opened is sent as nothing: the classic error; a
                    // framed reply that cannot be honoured ends the connection.
                    match Upload::open(&path, range, !close) {
                        Ok(upload) => link.send(Write::File {
                            upload,
                            notify: !close,
                        }),
                        Err(_) => link.send(Write::Close),
                    }
                    if close {
                        link.send(Write::Close);
                    }
                }
            }
            // `Disk` performs every file command.
            other => unreachable!("not a socket command: {other:?}"),
        }
    }
}

async fn accept(listener: TcpListener, inputs: Sender<Input>) {
    while let Ok((stream, peer)) = listener.accept().await {
        if inputs.send(Input::Accepted(stream, peer)).await.is_err() {
            return;
        }
    }
}
