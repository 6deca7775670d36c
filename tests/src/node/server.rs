//! The index server.

use std::net::SocketAddr;
use std::process::{Child, ExitStatus};
use std::time::Duration;

use super::output::{starts_with, Output};
use super::process::{kill, signal, spawn, wait_exit};
use super::runtime::Runtime;
use super::TIMEOUT;

/// A `napshare server` process listening on an ephemeral loopback port.
#[derive(Debug)]
pub struct ServerProc {
    child: Child,
    addr: SocketAddr,
    pub out: Output,
}

impl ServerProc {
    /// Starts a server and waits until it prints the address it listens on.
    pub fn start(runtime: Runtime) -> Self {
        Self::start_with(runtime, &["--listen", "127.0.0.1:0"])
    }

    /// Starts a server with these `napshare server` arguments.
    pub fn start_with(runtime: Runtime, args: &[&str]) -> Self {
        let mut cmd = runtime.command();
        cmd.arg("server").args(args);
        let mut child = spawn(cmd, "a server");
        let mut out = Output::capture(format!("server ({runtime})"), &mut child);
        const PREFIX: &str = "napshare server listening on ";
        let line = out.expect_line(starts_with(PREFIX), TIMEOUT);
        let addr = line[PREFIX.len()..]
            .trim()
            .parse()
            .unwrap_or_else(|e| out.fail(&format!("bad address in {line:?}: {e}")));
        out.who = format!("server {addr} ({runtime})");
        Self { child, addr, out }
    }

    /// Waits for the process to end by itself; fails the test after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        wait_exit(&mut self.child, &self.out, timeout)
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Kills the server (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        kill(&mut self.child);
    }

    /// Sends the process a signal by name (`TERM`, `INT`, `STOP`, `CONT`, ...).
    pub fn signal(&self, name: &str) {
        signal(&self.child, name);
    }
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        self.kill();
    }
}
