//! Which runtime a process runs, and the binary that runs it.

use std::fmt;
use std::path::PathBuf;
use std::process::Command;

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
    /// (nothing written to the tester's home; [`ClientProc`](super::ClientProc) gives its clients one in
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

/// Makes `cmd` independent of the tester's locale: `LANG=C`, and nothing that would
/// override it.
pub fn c_locale(cmd: &mut Command) -> &mut Command {
    cmd.env("LANG", "C")
        .env_remove("LC_ALL")
        .env_remove("LC_MESSAGES")
        .env_remove("LANGUAGE")
}
