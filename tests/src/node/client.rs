//! A client process: its folders, the commands it is typed, and what it prints back.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ExitStatus};
use std::time::Duration;

use super::hits::{parse_hit, Hit};
use super::output::{described, starts_with, LineMatch, Output};
use super::process::{kill, signal, spawn_as_is, wait_exit};
use super::runtime::{c_locale, Runtime};
use super::TIMEOUT;

/// A `napshare client` process with its own temporary shared and downloads folders, its
/// file server on an ephemeral loopback port, and commands sent on its standard input.
#[derive(Debug)]
pub struct ClientProc {
    child: Child,
    stdin: Option<ChildStdin>,
    pub out: Output,
    peer_addr: SocketAddr,
    /// The names of the files it found in its shared folder at start.
    initial: Vec<String>,
    shared: PathBuf,
    downloads: PathBuf,
    /// The temporary folder holding both, when the client owns it.
    _dir: Option<tempfile::TempDir>,
}

impl ClientProc {
    /// Starts a client of the server at `server` sharing `shared_files` (name, contents),
    /// and waits until its file server listens. It joins on its own; see
    /// [`ClientProc::wait_joined`].
    pub fn start(runtime: Runtime, server: SocketAddr, shared_files: &[(&str, &[u8])]) -> Self {
        Self::start_with(runtime, &server.to_string(), shared_files)
    }

    /// Like [`ClientProc::start`], with the server given as text (`HOST[:PORT]`).
    pub fn start_with(runtime: Runtime, server: &str, shared_files: &[(&str, &[u8])]) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("napshare-client-")
            .tempdir()
            .expect("a temporary folder");
        let mut client = Self::start_in(runtime, server, dir.path(), shared_files);
        client._dir = Some(dir);
        client
    }

    /// Starts a client whose shared and downloads folders are `dir/shared` and
    /// `dir/downloads`, which outlive it: a later client started in `dir` finds what this
    /// one left, as a restarted client would.
    ///
    /// Its shared folder is not watched (`--no-watch`): what it shares is what it found at
    /// start and what the test registers with `CREATEFILE`, as with the seed. See
    /// [`ClientProc::start_watching`] for the live folder, the default of `napshare client`.
    pub fn start_in(
        runtime: Runtime,
        server: &str,
        dir: &Path,
        shared_files: &[(&str, &[u8])],
    ) -> Self {
        Self::launch(runtime, server, dir, shared_files, false, &[])
    }

    /// Like [`ClientProc::start`], with its shared folder watched, as `napshare client`
    /// runs by default: files put in, changed in or removed from [`ClientProc::shared_dir`]
    /// are shared, shared again or no longer shared with no command.
    pub fn start_watching(
        runtime: Runtime,
        server: SocketAddr,
        shared_files: &[(&str, &[u8])],
    ) -> Self {
        Self::in_temp_dir(runtime, server, shared_files, true, &[])
    }

    /// Like [`ClientProc::start`], with these environment variables set after the `C`
    /// locale (`[("LANG", "pt_BR.UTF-8")]` for a client that speaks Portuguese).
    pub fn start_env(
        runtime: Runtime,
        server: SocketAddr,
        shared_files: &[(&str, &[u8])],
        env: &[(&str, &str)],
    ) -> Self {
        Self::in_temp_dir(runtime, server, shared_files, false, env)
    }

    fn in_temp_dir(
        runtime: Runtime,
        server: SocketAddr,
        shared_files: &[(&str, &[u8])],
        watch: bool,
        env: &[(&str, &str)],
    ) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("napshare-client-")
            .tempdir()
            .expect("a temporary folder");
        let server = server.to_string();
        let mut client = Self::launch(runtime, &server, dir.path(), shared_files, watch, env);
        client._dir = Some(dir);
        client
    }

    fn launch(
        runtime: Runtime,
        server: &str,
        dir: &Path,
        shared_files: &[(&str, &[u8])],
        watch: bool,
        env: &[(&str, &str)],
    ) -> Self {
        let shared = dir.join("shared");
        let downloads = dir.join("downloads");
        std::fs::create_dir_all(&shared).expect("create the shared folder");
        for (name, data) in shared_files {
            std::fs::write(shared.join(name), data).expect("write a shared file");
        }
        let mut cmd = runtime.command();
        // A restarted client (`start_in` the same folder) finds its hashes there.
        cmd.env(napshare_host::CACHE_ENV, dir.join("cache"));
        cmd.arg("client")
            .arg("--server")
            .arg(server)
            .arg("--shared")
            .arg(&shared)
            .arg("--downloads")
            .arg(&downloads)
            .args(["--peer-listen", "127.0.0.1:0"]);
        if !watch {
            cmd.arg("--no-watch");
        }
        c_locale(&mut cmd);
        cmd.envs(env.iter().copied());
        let mut child = spawn_as_is(cmd, "a client");
        let stdin = child.stdin.take();
        let mut out = Output::capture(format!("client ({runtime})"), &mut child);
        // In English or in Portuguese, the address ends the line.
        const PREFIXES: [&str; 2] = [
            "file server listening on ",
            "servidor de arquivos escutando em ",
        ];
        let line = out.expect_line(
            described(format!("a line starting with one of {PREFIXES:?}"), |l| {
                PREFIXES.iter().any(|p| l.starts_with(p))
            }),
            TIMEOUT,
        );
        let peer_addr = line
            .rsplit(' ')
            .next()
            .unwrap_or_default()
            .parse()
            .unwrap_or_else(|e| out.fail(&format!("bad address in {line:?}: {e}")));
        out.who = format!("client {peer_addr} ({runtime})");
        let mut initial: Vec<String> = shared_files.iter().map(|(n, _)| n.to_string()).collect();
        initial.sort();
        initial.dedup();
        Self {
            child,
            stdin,
            out,
            peer_addr,
            initial,
            shared,
            downloads,
            _dir: None,
        }
    }

    /// Starts a client and waits until it has joined and shared every file it started with.
    pub fn joined(runtime: Runtime, server: SocketAddr, shared_files: &[(&str, &[u8])]) -> Self {
        let mut c = Self::start(runtime, server, shared_files);
        c.wait_joined();
        c
    }

    /// Waits for `joined the network` and a `sharing NAME` line for each file the client
    /// started with.
    pub fn wait_joined(&mut self) {
        self.expect("joined the network at ");
        let mut missing = self.initial.clone();
        while !missing.is_empty() {
            let line = self.expect(starts_with("sharing "));
            missing.retain(|name| !line.starts_with(&format!("sharing {name} (")));
        }
    }

    /// The address of its file server (as `ip:port`, what `DOWNLOAD` takes).
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer_addr
    }

    pub fn shared_dir(&self) -> &Path {
        &self.shared
    }

    pub fn downloads_dir(&self) -> &Path {
        &self.downloads
    }

    /// Types one command line.
    pub fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin is still open");
        let sent = writeln!(stdin, "{line}").and_then(|()| stdin.flush());
        if let Err(e) = sent {
            self.out.fail(&format!("cannot send {line:?}: {e}"));
        }
    }

    /// Closes its standard input (end of input means `LEAVE`).
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// See [`Output::expect_line`].
    pub fn expect_line(&mut self, wanted: impl LineMatch, timeout: Duration) -> String {
        self.out.expect_line(wanted, timeout)
    }

    /// [`ClientProc::expect_line`] with the default [`TIMEOUT`].
    pub fn expect(&mut self, wanted: impl LineMatch) -> String {
        self.out.expect_line(wanted, TIMEOUT)
    }

    /// Sends `SEARCH pattern` and returns the results it prints.
    pub fn search(&mut self, pattern: &str) -> Vec<Hit> {
        self.send(&format!("SEARCH {pattern}"));
        self.read_search(pattern)
    }

    /// Reads the result block of a search for `pattern`: `search "P": N results` and, when
    /// N is not 0, the table's header and its N rows (see [`parse_hit`]), in the order
    /// `DOWNLOAD N` numbers them.
    pub fn read_search(&mut self, pattern: &str) -> Vec<Hit> {
        self.read_results(&format!("search \"{pattern}\": "))
    }

    /// Reads a result block whose summary line starts with `head` (`search "P": ` in
    /// English, `busca "P": ` in Portuguese) and then holds the number of results.
    pub fn read_results(&mut self, head: &str) -> Vec<Hit> {
        let line = self.expect(starts_with(head));
        let count: usize = line[head.len()..]
            .split(' ')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| self.out.fail(&format!("bad search summary {line:?}")));
        if count > 0 {
            match self.out.next_line(TIMEOUT) {
                Ok(header) if header.trim_start().starts_with("#  ") => {}
                Ok(other) => self.out.fail(&format!("not a results header: {other:?}")),
                Err(why) => self.out.fail(&format!("the results header: {why:?}")),
            }
        }
        (0..count)
            .map(|_| {
                let line = match self.out.next_line(TIMEOUT) {
                    Ok(line) => line,
                    Err(why) => self.out.fail(&format!("a search result line: {why:?}")),
                };
                parse_hit(&line)
                    .unwrap_or_else(|| self.out.fail(&format!("bad search result {line:?}")))
            })
            .collect()
    }

    /// Sends `DOWNLOAD peer name` and waits for the outcome: `Ok` with the `downloaded`
    /// line, or `Err` with the `download of NAME failed` line.
    pub fn download(&mut self, peer: &str, name: &str) -> Result<String, String> {
        self.send(&format!("DOWNLOAD {peer} {name}"));
        let done = format!("downloaded {name}: ");
        let failed = format!("download of {name} failed");
        let line = self.expect(described(
            format!("a line starting with {done:?} or {failed:?}"),
            |l| l.starts_with(&done) || l.starts_with(&failed),
        ));
        if line.starts_with(&done) {
            Ok(line)
        } else {
            Err(line)
        }
    }

    /// Sends `LEAVE` and waits for `left the network` and a successful exit.
    pub fn leave(&mut self) {
        self.send("LEAVE");
        self.expect("left the network");
        let status = self.wait_exit(TIMEOUT);
        if !status.success() {
            self.out.fail(&format!("exited with {status} after LEAVE"));
        }
    }

    /// Waits for the process to exit; fails the test if it does not within `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        wait_exit(&mut self.child, &self.out, timeout)
    }

    /// Kills the process (SIGKILL: no `LEAVE`, no goodbye) and reaps it.
    pub fn kill(&mut self) {
        kill(&mut self.child);
    }

    /// Sends the process a signal by name (`TERM`, `INT`, `STOP`, `CONT`, ...).
    pub fn signal(&self, name: &str) {
        signal(&self.child, name);
    }
}

impl Drop for ClientProc {
    fn drop(&mut self) {
        self.kill();
    }
}
