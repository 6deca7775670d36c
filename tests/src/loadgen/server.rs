//! Starting a server to measure, and reading a process's memory from `/proc`.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::Duration;

/// Lines of the server's standard error kept, the last ones.
const STDERR_TAIL: usize = 20;

/// A server process the load generator started; killed when dropped.
#[derive(Debug)]
pub struct Spawned {
    child: Child,
    pub addr: SocketAddr,
    pub pid: u32,
    stderr: Arc<Mutex<VecDeque<String>>>,
}

/// The `napshare-node` binary next to the running executable (`target/<profile>/`).
fn default_binary() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this executable: {e}"))?;
    let mut dir = exe
        .parent()
        .ok_or("this executable is not in a folder")?
        .to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let path = dir.join(format!("napshare-node{}", std::env::consts::EXE_SUFFIX));
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "{} does not exist: build it with `cargo build [--release] -p napshare-tests \
             --bin napshare-node`, or name a server binary with --server-bin",
            path.display()
        ))
    }
}

/// Starts `BIN server --listen 127.0.0.1:0 --max-results N` with `NAPSHARE_RUNTIME` set to
/// `runtime`, and waits for the address it prints.
pub fn spawn(runtime: &str, bin: Option<PathBuf>, max_results: usize) -> Result<Spawned, String> {
    let bin = match bin {
        Some(bin) => bin,
        None => default_binary()?,
    };
    // The C locale: the address line is read in English.
    let mut child = Command::new(&bin)
        .env("NAPSHARE_RUNTIME", runtime)
        .env("LANG", "C")
        .env_remove("LC_ALL")
        .env_remove("LC_MESSAGES")
        .args(["server", "--listen", "127.0.0.1:0", "--max-results"])
        .arg(max_results.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
    // Its logs (a line per connection at napshare's default level) are drained, and the
    // last few kept for when something goes wrong.
    let stderr = Arc::new(Mutex::new(VecDeque::new()));
    let pipe = child.stderr.take().expect("piped");
    let tail = Arc::clone(&stderr);
    thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            let mut tail = tail.lock().unwrap_or_else(|e| e.into_inner());
            if tail.len() == STDERR_TAIL {
                tail.pop_front();
            }
            tail.push_back(line);
        }
    });
    let stdout = child.stdout.take().expect("piped");
    let (tx, rx) = mpsc::channel();
    // Reads the address, then keeps the pipe drained so the server never blocks on it.
    thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        let mut sent = false;
        while let Some(Ok(line)) = lines.next() {
            if !sent {
                if let Some(addr) = line.strip_prefix("napshare server listening on ") {
                    sent = true;
                    let _ = tx.send(addr.trim().to_owned());
                }
            }
        }
    });
    let addr = match rx.recv_timeout(Duration::from_secs(20)) {
        Ok(addr) => addr,
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("{} did not print its address", bin.display()));
        }
    };
    let addr = addr
        .parse()
        .map_err(|e| format!("bad server address {addr:?}: {e}"))?;
    Ok(Spawned {
        pid: child.id(),
        child,
        addr,
        stderr,
    })
}

impl Spawned {
    /// The last lines the server wrote to its standard error.
    pub fn stderr_tail(&self) -> Vec<String> {
        let tail = self.stderr.lock().unwrap_or_else(|e| e.into_inner());
        tail.iter().cloned().collect()
    }

    /// Whether the server has exited.
    pub fn exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A process's memory, from `/proc/PID/status`, in KiB.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Mem {
    /// Resident set size now (`VmRSS`).
    pub rss_kib: u64,
    /// Peak resident set size (`VmHWM`).
    pub hwm_kib: u64,
}

/// Reads `VmRSS` and `VmHWM` of `pid`; `None` if the process is gone or not readable.
pub fn mem(pid: u32) -> Option<Mem> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        line[name.len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()
    };
    Some(Mem {
        rss_kib: field("VmRSS:")?,
        hwm_kib: field("VmHWM:")?,
    })
}

/// The soft limit on open files of this process, from `/proc/self/limits`.
pub fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// CPU time (user and system) a process has used so far, in seconds: `pid`, or this
/// process when `None`. Read from `/proc/PID/stat` (clock ticks of 1/100 s).
pub fn cpu_seconds(pid: Option<u32>) -> Option<f64> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    let stat = std::fs::read_to_string(path).ok()?;
    // The command name may hold spaces; the fields after it start with the state.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / 100.0)
}
