//! The index server as both runtimes drive it: on its own, or as a cluster gateway whose
//! index is the whole network's ([`napshare_cluster::Gateway`]: searches go out to the
//! index replicas, share lists into NATS). The gateway runs on its own thread and speaks
//! to the loop only through a bounded channel one way and the loop's [`Input`] feed (a
//! bounded channel and a waker) the other.

use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use napshare_cluster::{Delivery, Gateway, GatewayOptions};
use napshare_core::cluster::Merged;
use napshare_core::server::{IndexAt, Server, ServerConfig};
use napshare_core::ConnId;

use crate::{log_no_room, log_opened, log_server_event, Happened, Input, Node, Sockets};

/// Everything a runtime needs to run the index server.
#[derive(Debug, Clone)]
pub struct ServerSetup {
    pub config: ServerConfig,
    /// Join this NATS cluster as a gateway; `None`: a single server.
    pub cluster: Option<GatewayOptions>,
}

/// The server and, on a gateway, its link to the cluster.
pub struct ServerNode {
    pub server: Server,
    gateway: Option<Gateway>,
}

impl ServerSetup {
    /// Builds the server; a gateway also starts its cluster thread, which hands what it
    /// learns to `send` (which must wake the loop; `false` once the loop is gone).
    pub fn start(
        mut self,
        now: Instant,
        send: impl Fn(Input) -> bool + Send + Sync + 'static,
    ) -> io::Result<ServerNode> {
        let gateway = match self.cluster {
            None => None,
            Some(options) => {
                self.config.index = IndexAt::Driver;
                let deliver = move |delivery| {
                    send(match delivery {
                        Delivery::Answered { token, merged } => Input::Answered(token, merged),
                        Delivery::Reconnected => Input::Republish,
                    })
                };
                let gateway = Gateway::start(options, deliver).map_err(io::Error::other)?;
                Some(gateway)
            }
        };
        Ok(ServerNode {
            server: Server::new(now, self.config),
            gateway,
        })
    }
}

impl Node for ServerNode {
    fn poll_timeout(&self) -> Option<Instant> {
        self.server.poll_timeout()
    }

    fn timeout(&mut self, now: Instant) {
        self.server.handle_timeout(now);
    }

    fn accept(&mut self, now: Instant, peer: SocketAddr) -> Option<ConnId> {
        if !self.server.has_room() {
            log_no_room(peer);
            return None;
        }
        let id = self.server.handle_accept(now, peer);
        log_opened(id, peer);
        Some(id)
    }

    fn bytes(&mut self, now: Instant, conn: ConnId, data: &[u8]) {
        // The id came from this server, so it is known.
        let _ = self.server.handle_bytes(now, conn, data);
    }

    fn happen(&mut self, now: Instant, what: Happened, io: &mut impl Sockets) {
        match what {
            // Files go at once; replies already computed are still written (a peer may
            // have only shut down its sending side).
            Happened::Closed(conn) => self.server.handle_closed(now, conn),
            Happened::Backlog(conn, queued) => {
                if self.server.handle_backlog(now, conn, queued) {
                    // Too far behind: dropped without the rest; the server forgot it.
                    io.abort(conn);
                }
            }
            // The server opens no connection and sends no file.
            Happened::Connected(..) | Happened::ConnectFailed(..) | Happened::Sent(_) => {}
        }
    }

    fn input(&mut self, now: Instant, input: Input, _io: &mut impl Sockets) {
        match input {
            Input::Answered(token, merged) => {
                self.server.handle_search_answer(now, token, &merged);
            }
            Input::Republish => self.server.republish(now),
            // The rest is a client's.
            _ => {}
        }
    }

    fn drain(&mut self, now: Instant, io: &mut impl Sockets) {
        loop {
            while let Some(t) = self.server.poll_transmit() {
                if let Some(buf) = io.transmit(t) {
                    self.server.recycle(buf);
                }
            }
            while let Some(conn) = self.server.poll_close() {
                io.close(conn);
            }
            while let Some(event) = self.server.poll_event() {
                log_server_event(&event);
            }
            let Some(gateway) = &self.gateway else {
                return;
            };
            while let Some(update) = self.server.poll_share() {
                gateway.share(update);
            }
            let mut busy = Vec::new();
            while let Some(request) = self.server.poll_search() {
                if gateway.search(&request).is_err() {
                    busy.push(request.token);
                }
            }
            if busy.is_empty() {
                return;
            }
            // More searches in flight than the cluster link holds: answered from nothing
            // now rather than queued without bound; that lets those connections' next
            // requests go, so drain again.
            tracing::warn!(
                searches = busy.len(),
                "cluster busy: searches answered with no results"
            );
            for token in busy {
                self.server
                    .handle_search_answer(now, token, &Merged::default());
            }
        }
    }

    fn max_queued(&self) -> usize {
        self.server.max_queued()
    }

    fn exit(&self) -> Option<i32> {
        None
    }

    fn recycle(&mut self, buf: Vec<u8>) {
        self.server.recycle(buf);
    }
}
