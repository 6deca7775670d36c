//! The drain loop of a client, shared by both runtimes: everything but the sockets.

use std::time::Instant;

use napshare_core::client::{Client, Command};
use napshare_core::Transmit;

use crate::{Disk, Ui};

/// What a runtime provides to [`drain`]: its sockets and its [`Disk`].
pub trait ClientIo {
    fn disk(&mut self) -> &mut Disk;
    fn ui(&mut self) -> &mut Ui;
    /// Queues `t.data` for writing on `t.conn` (a connection that is gone drops it).
    fn transmit(&mut self, client: &mut Client, t: Transmit, now: Instant);
    /// Carries out [`Command::Connect`], [`Command::Close`] or [`Command::SendFile`].
    fn socket(&mut self, client: &mut Client, cmd: Command, now: Instant);
}

/// Carries out everything `client` has queued, until it has nothing more (the drain
/// contract): bytes to send, file commands, socket commands, and events, which are
/// shown to the user.
pub fn drain(client: &mut Client, io: &mut impl ClientIo, now: Instant) {
    loop {
        // Bytes first, and again after every command: a command may have queued bytes that
        // must go out before what the next command sends (a reply header before its file).
        while let Some(t) = client.poll_transmit() {
            io.transmit(client, t, now);
        }
        if let Some(cmd) = client.poll_command() {
            if let Some(cmd) = io.disk().perform(now, cmd, client) {
                io.socket(client, cmd, now);
            }
            continue;
        }
        let Some(event) = client.poll_event() else {
            return;
        };
        io.ui().show(&event);
    }
}
