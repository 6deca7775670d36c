//! Simulated TCP: dials, byte delivery in random chunks, closes and resets, and the
//! scheduler that picks what happens next.

use std::net::SocketAddr;
use std::time::Instant;

use napshare_core::{ConnId, Transmit};

use super::{Dial, End, Host, Link, Pipe, Sim, Work, SERVER_ADDR};

impl Sim {
    /// Queues bytes written by `from`. Bytes for a connection that is gone, or whose other
    /// end closed, are lost, as on a real socket.
    pub(super) fn write(&mut self, from: Host, t: Transmit) {
        let Some(&(id, side)) = self.ends.get(&(from, t.conn)) else {
            return;
        };
        let link = self.links.get_mut(&id).expect("an open end has its link");
        if link.ends[1 - side].open {
            link.pipes[side].bytes.extend(t.data);
        }
    }

    /// `host` closes its end of `conn` gracefully: what it wrote still arrives, then EOF;
    /// what was on its way to it is never read.
    pub(super) fn close_end(&mut self, host: Host, conn: ConnId) {
        let Some((id, side)) = self.ends.remove(&(host, conn)) else {
            return;
        };
        let link = self.links.get_mut(&id).expect("an open end has its link");
        link.ends[side].open = false;
        link.pipes[side].fin = true;
        link.pipes[1 - side] = Pipe::default();
        if !link.ends[1 - side].open {
            self.links.remove(&id);
        }
    }

    /// The links with an end that `wanted` picks.
    pub(super) fn links_where(&self, wanted: impl Fn(&End) -> bool) -> Vec<u64> {
        let picked = self
            .links
            .iter()
            .filter(|(_, l)| l.ends.iter().any(&wanted));
        picked.map(|(id, _)| *id).collect()
    }

    /// Resets link `id` at once: nothing more is delivered and every end still open sees
    /// it close.
    pub(super) fn reset(&mut self, id: u64) {
        let Some(link) = self.links.remove(&id) else {
            return;
        };
        for end in link.ends.iter().filter(|e| e.open) {
            self.ends.remove(&(end.host, end.conn));
        }
        for end in link.ends.iter().filter(|e| e.open) {
            self.notify_closed(end.host, end.conn);
        }
    }

    /// Tells `host` that `conn` is closed (EOF or reset), unless the host is dead.
    fn notify_closed(&mut self, host: Host, conn: ConnId) {
        match host {
            Host::Server => {
                self.server.handle_closed(self.now, conn);
                self.drain_server();
            }
            Host::Client(i) if !self.nodes[i].dead => {
                self.nodes[i].client.handle_closed(self.now, conn);
                self.drain_client(i);
            }
            Host::Client(_) => {}
        }
    }

    /// Carries out a connection attempt: the server or a listening client accepts it, or
    /// it is refused.
    pub(super) fn dial(&mut self, d: Dial) {
        let local = self.ephemeral(d.from);
        let now = self.now;
        let Some(target) = self.listener(d.addr) else {
            let client = &mut self.nodes[d.from].client;
            client.handle_connect_failed(now, d.conn, "connection refused");
            self.drain_client(d.from);
            return;
        };
        let (accepted, cut_after) = match target {
            Host::Server => (self.server.handle_accept(now, local), None),
            Host::Client(j) => {
                let node = &mut self.nodes[j];
                (
                    node.client.handle_accept(now, local),
                    node.cut_uploads_after,
                )
            }
        };
        let id = self.next_link;
        self.next_link += 1;
        let link = Link {
            ends: [
                End {
                    host: Host::Client(d.from),
                    conn: d.conn,
                    open: true,
                },
                End {
                    host: target,
                    conn: accepted,
                    open: true,
                },
            ],
            pipes: [
                Pipe::default(),
                Pipe {
                    cut_after,
                    ..Pipe::default()
                },
            ],
        };
        self.links.insert(id, link);
        self.ends.insert((Host::Client(d.from), d.conn), (id, 0));
        self.ends.insert((target, accepted), (id, 1));
        self.drain(target);
        self.nodes[d.from]
            .client
            .handle_connected(now, d.conn, local);
        self.drain_client(d.from);
    }

    /// Who accepts connections at `addr`, if anyone.
    fn listener(&self, addr: SocketAddr) -> Option<Host> {
        if addr == SERVER_ADDR {
            return (!self.server_down).then_some(Host::Server);
        }
        self.nodes
            .iter()
            .position(|n| !n.dead && SocketAddr::new(n.ip, n.peer_port) == addr)
            .map(Host::Client)
    }

    /// A fresh local address for an outgoing connection of client `i`.
    fn ephemeral(&mut self, i: usize) -> SocketAddr {
        let node = &mut self.nodes[i];
        let port = node.next_port;
        node.next_port = node.next_port.checked_add(1).unwrap_or(49152);
        SocketAddr::new(node.ip, port)
    }

    /// Hands the next chunk of `links[id].pipes[side]` to its reader, or the EOF once the
    /// bytes are gone, then resets the link if it was set to be cut here.
    pub(super) fn deliver(&mut self, id: u64, side: usize) {
        let link = self.links.get_mut(&id).expect("picked from the open links");
        let (to, conn) = (link.ends[1 - side].host, link.ends[1 - side].conn);
        if link.pipes[side].bytes.is_empty() {
            // The writer closed and everything it wrote has arrived: EOF.
            link.ends[1 - side].open = false;
            self.links.remove(&id);
            self.ends.remove(&(to, conn));
            self.notify_closed(to, conn);
            return;
        }
        let available = link.pipes[side].bytes.len();
        let mut len = self.chunk_len(available);
        let pipe = &mut self.links.get_mut(&id).expect("still open").pipes[side];
        let mut cut = false;
        if let Some(limit) = pipe.cut_after {
            let room = limit.saturating_sub(pipe.delivered);
            if len as u64 >= room {
                // `room` is at most `len`, a usize.
                len = room as usize;
                cut = true;
            }
        }
        let data: Vec<u8> = pipe.bytes.drain(..len).collect();
        pipe.delivered += len as u64;
        if !data.is_empty() {
            self.feed(to, conn, &data);
        }
        if cut {
            self.reset(id);
        }
    }

    /// How many of `available` bytes the next delivery hands over: sometimes all it may,
    /// otherwise a random cut, so both merged writes and split lines happen.
    fn chunk_len(&mut self, available: usize) -> usize {
        let cap = available.min(self.max_chunk);
        if self.rng.u32(..3) == 0 {
            cap
        } else {
            self.rng.usize(1..=cap)
        }
    }

    fn feed(&mut self, to: Host, conn: ConnId, data: &[u8]) {
        match to {
            Host::Server => {
                self.server
                    .handle_bytes(self.now, conn, data)
                    .expect("the sim delivers only to connections the server has open");
            }
            Host::Client(i) => self.nodes[i].client.handle_bytes(self.now, conn, data),
        }
        self.drain(to);
    }

    fn drain(&mut self, host: Host) {
        match host {
            Host::Server => self.drain_server(),
            Host::Client(i) => self.drain_client(i),
        }
    }

    // ---- scheduling ----

    /// Everything that can happen without the clock moving.
    pub(super) fn pending_work(&self) -> Vec<Work> {
        let stalled = |host: Host| matches!(host, Host::Client(i) if self.nodes[i].stalled);
        let mut work: Vec<Work> = (0..self.dials.len())
            .filter(|&k| !stalled(Host::Client(self.dials[k].from)))
            .map(Work::Dial)
            .collect();
        for (&id, link) in &self.links {
            if link.ends.iter().any(|e| stalled(e.host)) {
                continue;
            }
            for side in 0..2 {
                let pipe = &link.pipes[side];
                let readable = !pipe.bytes.is_empty() || pipe.fin;
                if readable && link.ends[1 - side].open {
                    work.push(Work::Deliver { id, side });
                }
            }
        }
        work
    }

    /// The earliest timer of any live node.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        let clients = self
            .nodes
            .iter()
            .filter(|n| !n.dead)
            .filter_map(|n| n.client.poll_timeout());
        self.server.poll_timeout().into_iter().chain(clients).min()
    }

    /// Calls `handle_timeout` on every live node whose timer is due.
    pub(super) fn fire_timeouts(&mut self) {
        let now = self.now;
        if self.server.poll_timeout().is_some_and(|t| t <= now) {
            self.server.handle_timeout(now);
            self.drain_server();
        }
        for i in 0..self.nodes.len() {
            let node = &mut self.nodes[i];
            if !node.dead && node.client.poll_timeout().is_some_and(|t| t <= now) {
                node.client.handle_timeout(now);
                self.drain_client(i);
            }
        }
    }
}
