//! What a `napshare` process does around its event loop, written once for every runtime:
//! parse the command line, bind the listeners, scan the shared folder, report, exit.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;

use crate::lang::Lang;
use napshare_core::client::ClientConfig;
use napshare_core::server::ServerConfig;

use crate::cli::{ask_mode, Cli, ClientArgs, IndexArgs, Mode, ServerArgs};
use crate::ServerSetup;
use crate::{
    init_logs, lang_from_env, on_stop_signal, oneshot, resolve_server, scan_shared, ClientSetup,
    HashCache, Say, ScanBar,
};
use napshare_cluster::{GatewayOptions, ReplicaOptions};
use napshare_core::wire::CLASSIC_PEER_PORT;

/// An event loop that can drive the core's state machines.
pub trait Runtime {
    /// A listening TCP socket of this runtime.
    type Listener;

    /// Binds a listener (with `SO_REUSEADDR`, so a port in `TIME_WAIT` can be reused).
    fn bind(addr: SocketAddr) -> io::Result<Self::Listener>;

    /// The address a listener is bound to (its real port when bound to port 0).
    fn local_addr(listener: &Self::Listener) -> io::Result<SocketAddr>;

    /// Serves clients on `listener` until the process is stopped.
    fn run_server(listener: Self::Listener, setup: ServerSetup) -> io::Result<()>;

    /// Runs a client whose file server is `listener`; returns its exit status
    /// ([`napshare_core::client::Client::exit_status`]).
    fn run_client(listener: Self::Listener, setup: ClientSetup) -> io::Result<i32>;
}

/// The whole `napshare` command on runtime `R`; `bin` is the name it was installed under.
pub fn main<R: Runtime>(bin: &'static str) -> ExitCode {
    init_logs();
    let lang = lang_from_env();
    let mode = match Cli::from_env(bin).mode {
        Some(mode) => mode,
        None => match ask_mode(lang, &mut io::stdin().lock(), &mut io::stdout()) {
            Ok(mode) => mode,
            Err(e) => return fail(bin, &e.to_string()),
        },
    };
    let result = match mode {
        Mode::Server(args) => server::<R>(&args, lang),
        Mode::Client(args) => client::<R>(&args, true, lang),
        Mode::Share(args) => oneshot::share::<R>(&args, lang),
        Mode::Index(args) => index(&args),
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

fn server<R: Runtime>(args: &ServerArgs, lang: Lang) -> Result<ExitCode, String> {
    let listener = R::bind(args.listen)
        .map_err(|e| Say::CannotListen(args.listen, e.to_string()).text(lang))?;
    let addr = R::local_addr(&listener).map_err(|e| e.to_string())?;
    // Watched before the address is printed, so whoever waits for that line can stop us.
    on_stop_signal(move || {
        // The index lives in memory only: nothing to save, every socket closes with us.
        println!("{}", Say::ServerStopping.text(lang));
        std::process::exit(0);
    })
    .map_err(|e| Say::CannotWatchSignals(e.to_string()).text(lang))?;
    println!("{}", Say::ServerListening(addr).text(lang));
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
        ..ServerConfig::default()
    };
    let cluster = (!args.nats.is_empty()).then(|| GatewayOptions {
        deadline: std::time::Duration::from_millis(args.search_deadline),
        urls: args.nats.clone(),
        ..GatewayOptions::default()
    });
    let setup = ServerSetup { config, cluster };
    R::run_server(listener, setup).map_err(|e| Say::ServerStopped(e.to_string()).text(lang))?;
    Ok(ExitCode::SUCCESS)
}

/// An index replica: no runtime of ours, only the cluster crate's.
fn index(args: &IndexArgs) -> Result<ExitCode, String> {
    let (partition, partitions) = args.partition;
    let options = ReplicaOptions::new(args.nats.clone(), partition, partitions);
    napshare_cluster::run_replica(options).map_err(|e| e.to_string())?;
    Ok(ExitCode::SUCCESS)
}

/// A client sharing `args.shared`; it reads commands from standard input when `stdin`
/// (`napshare share` reads none).
pub(super) fn client<R: Runtime>(
    args: &ClientArgs,
    stdin: bool,
    lang: Lang,
) -> Result<ExitCode, String> {
    let server = resolve_server(&args.server)
        .map_err(|e| Say::CannotResolve(args.server.clone(), e.to_string()).text(lang))?;
    let (listener, fell_back) = bind_peer_listener::<R>(args.peer_listen)
        .map_err(|e| Say::CannotStartFileServer(e.to_string()).text(lang))?;
    let peer_addr = R::local_addr(&listener).map_err(|e| e.to_string())?;
    println!(
        "{}",
        Say::FileServerListening(peer_addr, fell_back).text(lang)
    );
    let mut cache = HashCache::for_folder(&args.shared);
    let mut bar = ScanBar::new(lang);
    let scanned = scan_shared(&args.shared, &mut cache, |done, total| {
        bar.update(done, total);
    });
    drop(bar);
    let (files, skipped) = scanned
        .map_err(|e| Say::CannotReadShared(args.shared.clone(), e.to_string()).text(lang))?;
    for path in skipped {
        println!("{}", Say::NameCannotBeShared(path).text(lang));
    }
    std::fs::create_dir_all(&args.downloads).map_err(|e| {
        Say::CannotCreateDownloads(args.downloads.clone(), e.to_string()).text(lang)
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
        lang,
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
