//! The index server on smol.

use std::collections::HashMap;
use std::io;
use std::time::{Duration, Instant};

use napshare_core::server::{Server, ServerConfig};
use napshare_core::ConnId;
use napshare_host::{log_no_room, log_opened, log_server_event};
use smol::channel::{self, Sender};
use smol::net::TcpListener;
use smol::{Async, LocalExecutor, Timer};

use crate::conn::{take_spent, Input, Link, Write};
use crate::next_input;

/// Serves clients on `listener` until the process ends.
pub fn run(listener: Async<std::net::TcpListener>, config: ServerConfig) -> io::Result<()> {
    let ex = LocalExecutor::new();
    smol::block_on(ex.run(serve(&ex, listener, config)))
}

async fn serve(
    ex: &LocalExecutor<'_>,
    listener: Async<std::net::TcpListener>,
    config: ServerConfig,
) -> io::Result<()> {
    let listener = TcpListener::from(listener);
    let (inputs_tx, inputs) = channel::bounded(1024);
    ex.spawn(accept(listener, inputs_tx.clone())).detach();

    let mut server = Server::new(Instant::now(), config);
    let mut links: HashMap<ConnId, Link> = HashMap::new();
    let mut timer = Timer::never();
    loop {
        let input = next_input(&inputs, &mut timer, server.poll_timeout()).await;
        let now = Instant::now();
        // Replies the connection tasks wrote: the core builds later ones in their buffers.
        take_spent(|buf| server.recycle(buf));
        match input {
            Some(Input::Accepted(stream, peer)) => {
                if !server.has_room() {
                    log_no_room(peer);
                    continue; // dropping the stream closes it
                }
                let id = server.handle_accept(now, peer);
                log_opened(id, peer);
                links.insert(id, Link::spawn(ex, id, stream, inputs_tx.clone()));
            }
            Some(Input::Bytes(id, data)) => {
                // Bytes only come from connections this server accepted.
                let _ = server.handle_bytes(now, id, &data);
            }
            Some(Input::Closed(id)) => {
                // Files go at once; replies already computed are still written (a peer may
                // have only shut down its sending side).
                server.handle_closed(now, id);
                if let Some(link) = links.remove(&id) {
                    link.send(Write::Close);
                }
            }
            Some(Input::Connected(..) | Input::Host(_) | Input::Sent(_)) => {}
            None => server.handle_timeout(now),
        }
        while let Some(t) = server.poll_transmit() {
            if let Some(link) = links.get(&t.conn) {
                link.send(Write::Data(t.data));
                if server.handle_backlog(now, t.conn, link.queued()) {
                    // Too far behind: dropped without the rest; the server forgot it.
                    link.abort();
                    links.remove(&t.conn);
                }
            }
        }
        while let Some(id) = server.poll_close() {
            if let Some(link) = links.get(&id) {
                link.send(Write::Close);
            }
        }
        while let Some(event) = server.poll_event() {
            log_server_event(&event);
        }
    }
}

async fn accept(listener: TcpListener, inputs: Sender<Input>) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                if inputs.send(Input::Accepted(stream, peer)).await.is_err() {
                    return;
                }
            }
            // Out of descriptors, or a connection reset before accept: wait a little
            // rather than spin.
            Err(_) => {
                Timer::after(Duration::from_millis(50)).await;
            }
        }
    }
}
