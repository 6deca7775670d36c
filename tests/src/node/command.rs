//! Any other process: one-shot commands (`search`, `get`, `share`, ...) run as a script
//! would.

use std::process::{Child, ExitStatus};
use std::time::Duration;

use super::output::Output;
use super::process::{kill, signal, spawn, wait_exit};
use super::runtime::Runtime;
use super::TIMEOUT;

/// A `napshare-node` process started with any arguments (`search`, `get`, `share`, ...),
/// its output captured.
#[derive(Debug)]
pub struct NodeProc {
    child: Child,
    pub out: Output,
}

impl NodeProc {
    /// Starts `napshare ARGS` on `runtime`; its standard input is a pipe, closed at once
    /// unless `keep_stdin`.
    pub fn start(runtime: Runtime, args: &[&str], keep_stdin: bool) -> Self {
        let mut cmd = runtime.command();
        cmd.args(args);
        let mut child = spawn(cmd, "napshare");
        if !keep_stdin {
            drop(child.stdin.take());
        }
        let out = Output::capture(
            format!("napshare {} ({runtime})", args.join(" ")),
            &mut child,
        );
        Self { child, out }
    }

    /// Runs `napshare ARGS` to its end, as a script would: its exit status, its standard
    /// output and its standard error. Fails the test if it runs longer than [`TIMEOUT`].
    pub fn run(runtime: Runtime, args: &[&str]) -> (ExitStatus, String, String) {
        let mut p = Self::start(runtime, args, false);
        let lines = p.out.read_to_end(TIMEOUT);
        let status = p.wait_exit(TIMEOUT);
        // The process is gone: its standard error ends, and all of it is wanted.
        if let Some(reader) = p.out.stderr_reader.take() {
            let _ = reader.join();
        }
        let mut stdout = lines.join("\n");
        if !lines.is_empty() {
            stdout.push('\n');
        }
        (status, stdout, p.out.stderr())
    }

    /// Waits for the process to exit; fails the test if it does not within `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        wait_exit(&mut self.child, &self.out, timeout)
    }

    /// Sends the process a signal by name (`TERM`, `INT`, `STOP`, `CONT`, ...).
    pub fn signal(&self, name: &str) {
        signal(&self.child, name);
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}
