//! One local nats-server with JetStream for the cluster crate's tests.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const NATS_SERVER: &str = "nats-server";

/// A nats-server child on an ephemeral loopback port, killed on drop.
pub struct Nats {
    child: Child,
    pub url: String,
    program: String,
    port: u16,
    store: tempfile::TempDir,
}

impl Nats {
    /// Starts one, or `None` (after a printed line) when nats-server is not installed;
    /// under CI=true its absence fails the test instead.
    pub fn start() -> Option<Nats> {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| "info".into()),
            )
            .with_test_writer()
            .try_init();
        let program = find()?;
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let store = tempfile::tempdir().expect("a temp dir");
        let child = spawn(&program, port, store.path());
        Some(Nats {
            child,
            url: format!("nats://127.0.0.1:{port}"),
            program,
            port,
            store,
        })
    }

    /// Kills the server, waits `down`, and starts it again on the same port and store.
    pub fn restart(&mut self, down: Duration) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::thread::sleep(down);
        self.child = spawn(&self.program, self.port, self.store.path());
    }
}

/// Starts nats-server and waits for it to be ready.
fn spawn(program: &str, port: u16, store: &Path) -> Child {
    let mut child = Command::new(program)
        .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
        .arg(store)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("nats-server starts");
    let (tx, rx) = mpsc::channel();
    let stderr = child.stderr.take().expect("stderr");
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("Server is ready") {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(10))
        .expect("nats-server ready within 10 s");
    child
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn find() -> Option<String> {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .chain([Path::new("/usr/sbin").to_path_buf()])
        .map(|d| d.join(NATS_SERVER))
        .find(|p| p.is_file());
    match found {
        Some(p) => Some(p.to_string_lossy().into_owned()),
        None if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("nats-server is not installed, and CI=true: the cluster tests must run")
        }
        None => {
            println!("nats-server is not installed: cluster test skipped");
            None
        }
    }
}

/// Polls `f` every 20 ms until it gives `Some`, at most `limit`.
pub fn eventually<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let end = std::time::Instant::now() + limit;
    loop {
        if let Some(t) = f() {
            return Some(t);
        }
        if std::time::Instant::now() > end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
