//! Starting, signalling, waiting for and killing child processes.

use std::io;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::output::Output;
use super::runtime::{c_locale, node_binary};

/// Waits for `child` to exit, polling; `None` if it is still running after `timeout`.
fn wait_timeout(child: &mut Child, timeout: Duration) -> io::Result<Option<ExitStatus>> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Starts `cmd` in the `C` locale with its standard streams piped.
pub(super) fn spawn(mut cmd: Command, what: &str) -> Child {
    c_locale(&mut cmd);
    spawn_as_is(cmd, what)
}

/// Starts `cmd` with its standard streams piped, in the environment it was given.
pub(super) fn spawn_as_is(mut cmd: Command, what: &str) -> Child {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd.spawn()
        .unwrap_or_else(|e| panic!("cannot start {what} ({}): {e}", node_binary().display()))
}

/// Sends `child` a signal by name (`TERM`, `INT`, `STOP`, `CONT`, ...).
pub(super) fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(child.id().to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{name} failed");
}

/// Waits for `child` to end by itself; fails the test (showing `out`) after `timeout`.
pub(super) fn wait_exit(child: &mut Child, out: &Output, timeout: Duration) -> ExitStatus {
    match wait_timeout(child, timeout) {
        Ok(Some(status)) => status,
        Ok(None) => out.fail(&format!(
            "still running {timeout:?} after it was expected to exit"
        )),
        Err(e) => out.fail(&format!("cannot wait for it: {e}")),
    }
}

/// Kills `child` (SIGKILL) and reaps it.
pub(super) fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}
