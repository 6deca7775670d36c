//! Real napshare processes on loopback, for end-to-end tests.
//!
//! Every process is the `napshare-node` binary of this package with `NAPSHARE_RUNTIME` set
//! to its [`Runtime`], so one test can mix runtimes. Servers listen on `127.0.0.1:0` and
//! clients' file servers too (never the classic fixed ports 1234/1235, which a closed test
//! could leave unusable for a minute); each client gets its own temporary shared and
//! downloads folders. Standard output is read line by line on a background thread, and
//! every wait has a deadline: a test that fails says what it waited for and shows
//! everything the process printed until then. Processes are killed when dropped.
//!
//! Every process runs in the `C` locale (`LANG=C`, no `LC_ALL` or `LC_MESSAGES`), so it
//! speaks English whatever the tester's locale; [`ClientProc::start_env`] sets others.
//!
//! [`Wire`] is a raw TCP connection for speaking the classic protocol by hand.

use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How long any single wait may take before the test fails. Generous: a loaded machine
/// with two cores running several test binaries at once is slow, and a passing test never
/// waits this long.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// The event loop a process runs.
///
/// Adding a runtime: a variant here, its name in [`Runtime::name`] and [`Runtime::ALL`],
/// the same name in `src/bin/napshare-node.rs`, and a line per test file where the
/// `on_runtime!` macro generates the `#[test]`s for a runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Runtime {
    /// napshare-mio, the hand-rolled mio event loop.
    Mio,
    /// napshare-smol, the smol adapter.
    Smol,
}

impl Runtime {
    /// Every runtime `napshare-node` can run.
    pub const ALL: &'static [Runtime] = &[Runtime::Mio, Runtime::Smol];

    /// The value of `NAPSHARE_RUNTIME` that selects this runtime.
    pub fn name(self) -> &'static str {
        match self {
            Runtime::Mio => "mio",
            Runtime::Smol => "smol",
        }
    }

    /// The other runtime.
    pub fn other(self) -> Self {
        match self {
            Runtime::Mio => Runtime::Smol,
            Runtime::Smol => Runtime::Mio,
        }
    }

    /// The node binary running this runtime, in the `C` locale, keeping no hash cache
    /// (nothing written to the tester's home; [`ClientProc`] gives its clients one in
    /// their own folder).
    pub fn command(self) -> Command {
        let mut cmd = Command::new(node_binary());
        cmd.env("NAPSHARE_RUNTIME", self.name())
            .env(napshare_host::CACHE_ENV, "");
        c_locale(&mut cmd);
        cmd
    }
}

/// The runtimes of the processes of one scenario: the server's, and its clients' in turn.
///
/// The first client runs `client`, the second the other runtime, the third `client` again,
/// and so on, so a download from the first client to the second crosses runtimes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mix {
    pub server: Runtime,
    pub client: Runtime,
}

impl Mix {
    pub const fn new(server: Runtime, client: Runtime) -> Self {
        Self { server, client }
    }

    /// The runtime of the `i`-th client a scenario starts (from 0).
    pub fn client(self, i: usize) -> Runtime {
        if i.is_multiple_of(2) {
            self.client
        } else {
            self.client.other()
        }
    }
}

impl fmt::Display for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The path of the `napshare-node` binary.
///
/// Cargo builds it for this package's integration tests and names it in
/// `CARGO_BIN_EXE_napshare-node` while they run; without that variable it is looked for
/// next to the running test executable (`target/<profile>/deps/..`).
pub fn node_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("CARGO_BIN_EXE_napshare-node") {
        return path.into();
    }
    let exe = std::env::current_exe().expect("the path of the test executable");
    let mut dir = exe
        .parent()
        .expect("the test executable is in a folder")
        .to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let path = dir.join(format!("napshare-node{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.is_file(),
        "{} does not exist: build it with `cargo build -p napshare-tests --bin napshare-node`",
        path.display()
    );
    path
}

/// Deterministic pseudo-random bytes (xorshift64*), for file contents.
pub fn test_data(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

// ---- reading a process's output ----

/// What a line of output must look like: a substring (`&str`, `String`) or a predicate
/// (any `Fn(&str) -> bool`).
pub trait LineMatch {
    fn matches(&self, line: &str) -> bool;
    /// How to name what was expected in a failure message.
    fn describe(&self) -> String;
}

impl LineMatch for &str {
    fn matches(&self, line: &str) -> bool {
        line.contains(*self)
    }
    fn describe(&self) -> String {
        format!("a line containing {self:?}")
    }
}

impl LineMatch for String {
    fn matches(&self, line: &str) -> bool {
        line.contains(self.as_str())
    }
    fn describe(&self) -> String {
        format!("a line containing {self:?}")
    }
}

impl<F: Fn(&str) -> bool> LineMatch for F {
    fn matches(&self, line: &str) -> bool {
        self(line)
    }
    fn describe(&self) -> String {
        "a line matching the predicate".to_owned()
    }
}

/// A predicate with a name for failure messages: `described("a search summary", |l| ..)`.
pub struct Described<F> {
    what: String,
    pred: F,
}

/// Names `pred` for failure messages.
pub fn described<F: Fn(&str) -> bool>(what: impl Into<String>, pred: F) -> Described<F> {
    Described {
        what: what.into(),
        pred,
    }
}

impl<F: Fn(&str) -> bool> LineMatch for Described<F> {
    fn matches(&self, line: &str) -> bool {
        (self.pred)(line)
    }
    fn describe(&self) -> String {
        self.what.clone()
    }
}

/// A line that starts with `prefix`.
pub fn starts_with(prefix: impl Into<String>) -> impl LineMatch {
    let prefix = prefix.into();
    described(format!("a line starting with {prefix:?}"), move |l| {
        l.starts_with(&prefix)
    })
}

/// Why no line came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoLine {
    Timeout,
    /// The process closed its standard output (it exited).
    Eof,
}

/// The standard output of a child, line by line, and its standard error, collected.
#[derive(Debug)]
pub struct Output {
    who: String,
    lines: Receiver<String>,
    /// Every line taken so far, in order.
    seen: Vec<String>,
    stderr: Arc<Mutex<Vec<u8>>>,
    /// The thread collecting standard error, until it has all of it.
    stderr_reader: Option<thread::JoinHandle<()>>,
    eof: bool,
}

impl Output {
    /// Starts the reader threads for `child`'s piped standard output and error.
    fn capture(who: String, child: &mut Child) -> Self {
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match reader.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {
                        let line = String::from_utf8_lossy(&buf);
                        let line = line.strip_suffix('\n').unwrap_or(&line);
                        if tx.send(line.to_owned()).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let mut stderr_reader = None;
        if let Some(mut pipe) = child.stderr.take() {
            let sink = Arc::clone(&stderr);
            stderr_reader = Some(thread::spawn(move || {
                let mut buf = [0; 4096];
                loop {
                    match pipe.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => sink.lock().unwrap().extend_from_slice(&buf[..n]),
                    }
                }
            }));
        }
        Self {
            who,
            lines,
            seen: Vec::new(),
            stderr,
            stderr_reader,
            eof: false,
        }
    }

    /// The next line, waiting at most `timeout`.
    pub fn next_line(&mut self, timeout: Duration) -> Result<String, NoLine> {
        if self.eof {
            return Err(NoLine::Eof);
        }
        match self.lines.recv_timeout(timeout) {
            Ok(line) => {
                self.seen.push(line.clone());
                Ok(line)
            }
            Err(RecvTimeoutError::Timeout) => Err(NoLine::Timeout),
            Err(RecvTimeoutError::Disconnected) => {
                self.eof = true;
                Err(NoLine::Eof)
            }
        }
    }

    /// Skips lines until one matches `wanted` and returns it; fails the test, showing all
    /// output so far, if none comes within `timeout` or the process ends first.
    pub fn expect_line(&mut self, wanted: impl LineMatch, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_line(left) {
                Ok(line) if wanted.matches(&line) => return line,
                Ok(_) => {}
                Err(why) => self.fail(&format!(
                    "expected {} within {timeout:?}, but {}",
                    wanted.describe(),
                    match why {
                        NoLine::Timeout => "none came",
                        NoLine::Eof => "the process closed its output",
                    }
                )),
            }
        }
    }

    /// Reads until the process closes its output (it exited) and returns the lines read.
    pub fn read_to_end(&mut self, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        let from = self.seen.len();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_line(left) {
                Ok(_) => {}
                Err(NoLine::Eof) => return self.seen[from..].to_vec(),
                Err(NoLine::Timeout) => self.fail(&format!(
                    "expected the output to end within {timeout:?}, but it did not"
                )),
            }
        }
    }

    /// Every line read so far.
    pub fn seen(&self) -> &[String] {
        &self.seen
    }

    /// The standard error collected so far.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// Everything the process printed so far, for failure messages.
    pub fn transcript(&self) -> String {
        format!(
            "--- stdout of {} (lines read so far) ---\n{}\n--- stderr ---\n{}",
            self.who,
            self.seen.join("\n"),
            self.stderr()
        )
    }

    /// Fails the test with `msg` and the transcript.
    pub fn fail(&self, msg: &str) -> ! {
        panic!("{}: {msg}\n{}", self.who, self.transcript())
    }
}

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

/// Makes `cmd` independent of the tester's locale: `LANG=C`, and nothing that would
/// override it.
pub fn c_locale(cmd: &mut Command) -> &mut Command {
    cmd.env("LANG", "C")
        .env_remove("LC_ALL")
        .env_remove("LC_MESSAGES")
        .env_remove("LANGUAGE")
}

fn spawn(mut cmd: Command, what: &str) -> Child {
    c_locale(&mut cmd);
    spawn_as_is(cmd, what)
}

/// Starts `cmd` with its standard streams piped, in the environment it was given.
fn spawn_as_is(mut cmd: Command, what: &str) -> Child {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd.spawn()
        .unwrap_or_else(|e| panic!("cannot start {what} ({}): {e}", node_binary().display()))
}

// ---- the index server ----

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

    /// Where clients connect.
    /// Waits for the process to end by itself; fails the test after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        wait_exit(&mut self.child, &self.out, timeout)
    }

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

// ---- clients ----

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

// ---- any other process ----

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

/// One search result as a client prints it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Hit {
    pub name: String,
    /// As the server listed it: `ip` or `ip:port`.
    pub peer: String,
    pub size: u64,
}

/// Parses a row of the results table, `  N  SIZE  PEER  COPIES  NAME` with the columns
/// padded to line up: SIZE is `1000 B`, or `4.2 MiB (4404019 B)` (`4,2 MiB` in Portuguese)
/// when the short form is rounded; COPIES is a number or `-`; NAME is the rest of the line
/// after the two spaces that follow COPIES, exactly (it may hold spaces).
pub fn parse_hit(line: &str) -> Option<Hit> {
    fn token<'a>(rest: &mut &'a str) -> Option<&'a str> {
        let s = rest.trim_start_matches(' ');
        let end = s.find(' ').unwrap_or(s.len());
        let (tok, tail) = s.split_at(end);
        *rest = tail;
        (!tok.is_empty()).then_some(tok)
    }
    let mut rest = line.strip_prefix("  ")?;
    let _number: usize = token(&mut rest)?.parse().ok()?;
    let value = token(&mut rest)?;
    let size = match token(&mut rest)? {
        "B" => value.parse().ok()?,
        _unit => {
            let exact = token(&mut rest)?.strip_prefix('(')?.parse().ok()?;
            (token(&mut rest)? == "B)").then_some(exact)?
        }
    };
    let peer = token(&mut rest)?.to_owned();
    let copies = token(&mut rest)?;
    if copies != "-" {
        copies.parse::<usize>().ok()?;
    }
    let name = rest.strip_prefix("  ")?.to_owned();
    Some(Hit { name, peer, size })
}

/// A search result, for comparisons.
pub fn hit(name: &str, peer: impl ToString, size: usize) -> Hit {
    Hit {
        name: name.to_owned(),
        peer: peer.to_string(),
        size: size as u64,
    }
}

// ---- raw connections ----

/// A raw TCP connection for speaking a protocol by hand, with deadlines on every read.
#[derive(Debug)]
pub struct Wire {
    stream: TcpStream,
    who: String,
    /// Every byte received so far, for failure messages.
    received: Vec<u8>,
}

/// The seed's observed transcript (PROTOCOL-classic.md), one request per write, each
/// answered before the next is sent, ending with the server's close.
pub const SEED_TRANSCRIPT: &[(&str, &str)] = &[
    ("JOIN 127.0.0.1\n", "CONFIRMJOIN\n"),
    (
        "CREATEFILE alpha.txt 100\n",
        "CONFIRMCREATEFILE alpha.txt\n",
    ),
    (
        "SEARCH alpha\n",
        "FILE alpha.txt 127.0.0.1 100\nENDSEARCH\n",
    ),
    ("SEARCH nomatch\n", "NORESULT\nENDSEARCH\n"),
    ("DELETEFILE never.txt\n", "CONFIRMDELETEFILE never.txt\n"),
    ("LEAVE\n", "CONFIRMLEAVE\n"),
];

impl Wire {
    /// Plays [`SEED_TRANSCRIPT`] and expects the close after it.
    pub fn play_seed_transcript(&mut self) {
        for (request, reply) in SEED_TRANSCRIPT {
            self.send(request);
            self.expect(reply);
        }
        self.expect_eof();
    }

    pub fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
        stream.set_nodelay(true).expect("TCP_NODELAY");
        let who = format!("connection {} -> {addr}", stream.local_addr().unwrap());
        Self {
            stream,
            who,
            received: Vec::new(),
        }
    }

    pub fn stream(&mut self) -> &mut TcpStream {
        &mut self.stream
    }

    /// Writes all of `bytes` in one write call.
    pub fn send(&mut self, bytes: impl AsRef<[u8]>) {
        let bytes = bytes.as_ref();
        if let Err(e) = self.stream.write_all(bytes) {
            panic!("{}: cannot send {}: {e}", self.who, show(bytes));
        }
    }

    /// Writes `bytes` one byte per write call.
    pub fn send_bytewise(&mut self, bytes: impl AsRef<[u8]>) {
        for b in bytes.as_ref() {
            self.send([*b]);
        }
    }

    /// Reads exactly `expected.len()` bytes and checks they are `expected`.
    pub fn expect(&mut self, expected: impl AsRef<[u8]>) {
        let expected = expected.as_ref();
        let from = self.received.len();
        let deadline = Instant::now() + TIMEOUT;
        let mut buf = vec![0; expected.len()];
        let mut got = 0;
        while got < expected.len() {
            match self.read_some(&mut buf[got..], deadline) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) => panic!(
                    "{}: expected {}, got {} then {e}",
                    self.who,
                    show(expected),
                    show(&self.received[from..])
                ),
            }
        }
        assert!(
            &buf[..got] == expected,
            "{}: expected {}, got {}{}",
            self.who,
            show(expected),
            show(&buf[..got]),
            if got < expected.len() {
                " and then end of stream"
            } else {
                ""
            }
        );
    }

    /// Reads until what was read ends with `end` (bytes after it in the same read are an
    /// error: nothing may follow unasked).
    pub fn read_until(&mut self, end: &[u8]) -> Vec<u8> {
        let from = self.received.len();
        let deadline = Instant::now() + TIMEOUT;
        let mut buf = [0; 4096];
        while !self.received[from..].ends_with(end) {
            match self.read_some(&mut buf, deadline) {
                Ok(0) => panic!(
                    "{}: expected {} to end what came, got {} then end of stream",
                    self.who,
                    show(end),
                    show(&self.received[from..])
                ),
                Ok(_) => {}
                Err(e) => panic!(
                    "{}: expected {} to end what came, got {} then {e}",
                    self.who,
                    show(end),
                    show(&self.received[from..])
                ),
            }
        }
        self.received[from..].to_vec()
    }

    /// Reads everything until the peer closes.
    pub fn read_to_end(&mut self) -> Vec<u8> {
        let from = self.received.len();
        let deadline = Instant::now() + TIMEOUT;
        let mut buf = [0; 64 * 1024];
        loop {
            match self.read_some(&mut buf, deadline) {
                Ok(0) => return self.received[from..].to_vec(),
                Ok(_) => {}
                // A reset after the data is a close too.
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {
                    return self.received[from..].to_vec()
                }
                Err(e) => panic!(
                    "{}: expected the peer to close, got {} then {e}",
                    self.who,
                    show(&self.received[from..])
                ),
            }
        }
    }

    /// Checks that the peer closes without sending another byte.
    pub fn expect_eof(&mut self) {
        let rest = self.read_to_end();
        assert!(
            rest.is_empty(),
            "{}: expected the peer to close, got {}",
            self.who,
            show(&rest)
        );
    }

    /// Closes our sending side (the peer reads end of stream).
    pub fn shutdown_write(&mut self) {
        let _ = self.stream.shutdown(Shutdown::Write);
    }

    fn read_some(&mut self, buf: &mut [u8], deadline: Instant) -> io::Result<usize> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("nothing more within {TIMEOUT:?}"),
                ));
            }
            self.stream.set_read_timeout(Some(left))?;
            match self.stream.read(buf) {
                Ok(n) => {
                    self.received.extend_from_slice(&buf[..n]);
                    return Ok(n);
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// Bytes as an escaped string literal, for messages.
pub fn show(bytes: &[u8]) -> String {
    const MAX: usize = 600;
    let cut = bytes.len() > MAX;
    let shown: String = bytes[..bytes.len().min(MAX)].escape_ascii().to_string();
    if cut {
        format!("b\"{shown}\"... ({} bytes)", bytes.len())
    } else {
        format!("b\"{shown}\"")
    }
}

/// Sends `child` a signal by name (`TERM`, `INT`, `STOP`, `CONT`, ...).
fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(child.id().to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{name} failed");
}

/// Waits for `child` to end by itself; fails the test (showing `out`) after `timeout`.
fn wait_exit(child: &mut Child, out: &Output, timeout: Duration) -> ExitStatus {
    match wait_timeout(child, timeout) {
        Ok(Some(status)) => status,
        Ok(None) => out.fail(&format!(
            "still running {timeout:?} after it was expected to exit"
        )),
        Err(e) => out.fail(&format!("cannot wait for it: {e}")),
    }
}

/// Kills `child` (SIGKILL) and reaps it.
fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

#[cfg(test)]
mod tests {
    use super::*;
    use napshare_core::client::{ClientEvent, SearchHit};
    use napshare_core::hash::ContentHash;
    use napshare_host::lang::{Lang, Localize};

    /// What the client prints is read back exactly, whatever the names and sizes.
    #[test]
    fn the_printed_table_reads_back() {
        let names = [
            "plain.txt",
            "my song.mp3",
            "  two  spaces  ",
            "2  3",
            "- 4",
            "canção (ao vivo) [2024].flac",
        ];
        let hits: Vec<SearchHit> = names
            .iter()
            .enumerate()
            .map(|(i, name)| SearchHit {
                name: (*name).to_owned(),
                peer: format!("127.0.0.{i}:4{i}000"),
                size: [0, 1023, 1024, 4_404_019, 1 << 40, u64::MAX][i],
                hash: (i % 2 == 0).then_some(ContentHash([i as u8; 32])),
            })
            .collect();
        let event = ClientEvent::SearchDone {
            pattern: String::new(),
            hits: hits.clone(),
        };
        for lang in [Lang::En, Lang::Pt] {
            let text = event.in_lang(lang).to_string();
            let rows: Vec<Hit> = text
                .lines()
                .skip(2)
                .map(|l| parse_hit(l).unwrap_or_else(|| panic!("{l:?}")))
                .collect();
            let wanted: Vec<Hit> = hits
                .iter()
                .map(|h| Hit {
                    name: h.name.clone(),
                    peer: h.peer.clone(),
                    size: h.size,
                })
                .collect();
            assert_eq!(rows, wanted, "{text}");
        }
    }
}
