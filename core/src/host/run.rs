//! What a `napshare` process does around its event loop, written once for every runtime:
//! parse the command line, bind the listeners, scan the shared folder, report, exit.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;

use crate::client::ClientConfig;
use crate::server::ServerConfig;

use super::cli::{ask_mode, Cli, ClientArgs, Mode, ServerArgs};
use super::{init_logs, on_stop_signal, oneshot, resolve_server, scan_shared, ClientSetup};
use crate::wire::CLASSIC_PEER_PORT;

/// An event loop that can drive the core's state machines.
pub trait Runtime {
    /// A listening TCP socket of this runtime.
    type Listener;

    /// Binds a listener (with `SO_REUSEADDR`, so a port in `TIME_WAIT` can be reused).
    fn bind(addr: SocketAddr) -> io::Result<Self::Listener>;

    /// The address a listener is bound to (its real port when bound to port 0).
    fn local_addr(listener: &Self::Listener) -> io::Result<SocketAddr>;

    /// Serves clients on `listener` until the process is stopped.
    fn run_server(listener: Self::Listener, config: ServerConfig) -> io::Result<()>;

    /// Runs a client whose file server is `listener`; returns its exit status
    /// ([`crate::client::Client::exit_status`]).
    fn run_client(listener: Self::Listener, setup: ClientSetup) -> io::Result<i32>;
}

/// The whole `napshare` command on runtime `R`; `bin` is the name it was installed under.
pub fn main<R: Runtime>(bin: &'static str) -> ExitCode {
    init_logs();
    let mode = match Cli::from_env(bin).mode {
        Some(mode) => mode,
        None => match ask_mode(&mut io::stdin().lock(), &mut io::stdout()) {
            Ok(mode) => mode,
            Err(e) => return fail(bin, &e.to_string()),
        },
    };
    let result = match mode {
        Mode::Server(args) => server::<R>(&args),
        Mode::Client(args) => client::<R>(&args, true),
        Mode::Share(args) => oneshot::share::<R>(&args),
        // One-shot commands report their own failures (as JSON too, with --json).
        Mode::Search(args) => return oneshot::search::<R>(&args),
        Mode::Get(args) => return oneshot::get::<R>(&args),
        Mode::Completions(args) => return oneshot::completions(bin, args.shell),
    };
    match result {
        Ok(code) => code,
        Err(e) => fail(bin, &e),
    }
}

fn fail(bin: &str, msg: &str) -> ExitCode {
    eprintln!("{bin}: {msg}");
    ExitCode::FAILURE
}

fn server<R: Runtime>(args: &ServerArgs) -> Result<ExitCode, String> {
    let listener =
        R::bind(args.listen).map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let addr = R::local_addr(&listener).map_err(|e| e.to_string())?;
    // Watched before the address is printed, so whoever waits for that line can stop us.
    on_stop_signal(|| {
        // The index lives in memory only: nothing to save, every socket closes with us.
        println!("napshare server stopping");
        std::process::exit(0);
    })
    .map_err(|e| format!("cannot watch for stop signals: {e}"))?;
    println!("napshare server listening on {addr}");
    let secs = std::time::Duration::from_secs;
    let config = ServerConfig {
        max_results: args.max_results,
        max_files: args.max_files,
        // Room for at least a short request and its line end.
        max_line: args.max_line.max(16),
        join_timeout: secs(args.join_timeout),
        idle_timeout: (args.idle_timeout > 0).then(|| secs(args.idle_timeout)),
        max_connections: args.max_connections,
        max_queued: args.max_queued,
    };
    R::run_server(listener, config).map_err(|e| format!("server stopped: {e}"))?;
    Ok(ExitCode::SUCCESS)
}

/// A client sharing `args.shared`; it reads commands from standard input when `stdin`
/// (`napshare share` reads none).
pub(super) fn client<R: Runtime>(args: &ClientArgs, stdin: bool) -> Result<ExitCode, String> {
    let server = resolve_server(&args.server)
        .map_err(|e| format!("cannot resolve server {}: {e}", args.server))?;
    let (listener, fell_back) = bind_peer_listener::<R>(args.peer_listen)
        .map_err(|e| format!("cannot start the file server: {e}"))?;
    let peer_addr = R::local_addr(&listener).map_err(|e| e.to_string())?;
    if fell_back {
        println!("port 1235 is taken; file server listening on {peer_addr}");
    } else {
        println!("file server listening on {peer_addr}");
    }
    let (files, skipped) = scan_shared(&args.shared)
        .map_err(|e| format!("cannot read shared folder {}: {e}", args.shared.display()))?;
    for path in skipped {
        println!("not sharing {}: its name cannot be shared", path.display());
    }
    std::fs::create_dir_all(&args.downloads).map_err(|e| {
        format!(
            "cannot create downloads folder {}: {e}",
            args.downloads.display()
        )
    })?;
    let config = ClientConfig {
        server,
        shared_dir: args.shared.clone(),
        downloads_dir: args.downloads.clone(),
        peer_port: peer_addr.port(),
        goal: None,
    };
    let setup = ClientSetup {
        config,
        files,
        stdin,
        script: None,
        watch: !args.no_watch,
    };
    let status = R::run_client(listener, setup).map_err(|e| e.to_string())?;
    Ok(ExitCode::from(status.clamp(0, 255) as u8))
}

/// Binds the client's file server. With no address asked for, tries the classic
/// `0.0.0.0:1235` and, when another client already has it, any free port; the flag says
/// whether that fallback happened.
fn bind_peer_listener<R: Runtime>(wanted: Option<SocketAddr>) -> io::Result<(R::Listener, bool)> {
    if let Some(addr) = wanted {
        return R::bind(addr).map(|l| (l, false));
    }
    let any = |port| SocketAddr::from((Ipv4Addr::UNSPECIFIED, port));
    match R::bind(any(CLASSIC_PEER_PORT)) {
        Ok(l) => Ok((l, false)),
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => R::bind(any(0)).map(|l| (l, true)),
        Err(e) => Err(e),
    }
}
