//! `loadgen`: a load generator for classic-protocol index servers (napshare's or any
//! other that lists peers as `ip:port`).
//!
//! It opens N client connections from one single-threaded mio event loop, each joining
//! with a distinct fake file-server port (`JOIN 127.0.0.1:<port>`, so every `FILE` line
//! says which client shared it) and registering M files named from a reproducible
//! vocabulary ([`vocab`]). Then it runs a mix of SEARCH / CREATEFILE / DELETEFILE for a
//! duration or a number of requests, flat out or at a rate, with one request in flight
//! per client (lockstep) or K (pipelined). Every reply is checked against what it
//! registered ([`model`]); optionally the whole registered set is searched for at the end.
//! Then every client sends `LEAVE`.
//!
//! It reports requests per second and latency percentiles per phase and request type,
//! every error, and the server's memory (`/proc/PID/status`) when it knows the server's
//! pid. It exits with status 1 when any error was counted.
//!
//! ```text
//! loadgen --spawn-server mio --clients 1000 --files 20 --duration 10
//! loadgen --server 127.0.0.1:1234 --server-pid 4242 --clients 1000 --pipeline 16 --json
//! loadgen --spawn-server smol --clients 15000 --files 0 --duration 0 --hold 2
//! ```

mod engine;
pub mod hist;
pub mod model;
mod report;
pub mod server;
pub mod vocab;

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

pub use report::Report;

/// A load generator for classic-protocol index servers: many clients joining,
/// registering files and searching, with every reply checked.
#[derive(Debug, Clone, Parser)]
#[command(name = "loadgen", version)]
pub struct Config {
    /// The server to measure, as HOST:PORT.
    #[arg(
        long,
        conflicts_with = "spawn_server",
        required_unless_present = "spawn_server"
    )]
    pub server: Option<String>,
    /// Start a napshare server on 127.0.0.1 with this runtime (mio or smol) and measure it
    /// (its pid is known, so its memory is reported).
    #[arg(long, value_parser = ["mio", "smol"])]
    pub spawn_server: Option<String>,
    /// The binary --spawn-server starts [default: napshare-node next to this one].
    #[arg(long, requires = "spawn_server")]
    pub server_bin: Option<PathBuf>,
    /// The server's process id, to report its memory (VmRSS, VmHWM).
    #[arg(long)]
    pub server_pid: Option<u32>,

    /// Concurrent client connections.
    #[arg(short = 'c', long, default_value_t = 100)]
    pub clients: usize,
    /// Files each client registers before the measured phase.
    #[arg(short = 'f', long, default_value_t = 20)]
    pub files: usize,
    /// More names per client for CREATEFILE in the mix [default: a quarter of --files,
    /// at least 2 (0 with no files)].
    #[arg(long)]
    pub spare: Option<usize>,
    /// Seed of the names, patterns and request choices.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Search patterns in the vocabulary (each search picks one at random).
    #[arg(long, default_value_t = 1000)]
    pub patterns: usize,
    /// Percentage of the patterns that are broad (an extension, `1080p`, `Love`...) and
    /// reach the result cap on a big index.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=100))]
    pub broad: u64,
    /// Percentage of the patterns that are loose (one word of a title, or five letters
    /// from inside one) and match tens to hundreds of names; the others are selective (an
    /// artist, an album, a title, "artist-title", or one of these in the wrong case).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(0..=100))]
    pub loose: u64,

    /// Length of the measured phase in seconds [default: 10, unless --requests is given].
    #[arg(short = 'd', long)]
    pub duration: Option<f64>,
    /// Requests in the measured phase (it ends at whichever of --duration or --requests
    /// comes first).
    #[arg(short = 'n', long)]
    pub requests: Option<u64>,
    /// Requests per second over all clients [default: as fast as replies come]. Latency is
    /// then measured from when each request was due, not when it was sent.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Requests in flight per client, written together (1: lockstep).
    #[arg(
        short = 'k',
        long,
        default_value_t = 1,
        value_parser = clap::value_parser!(u32).range(1..=4096)
    )]
    pub pipeline: u32,
    /// Percentages of the request mix, as search=S,create=C,delete=D (missing kinds are 0;
    /// they must add up to 100).
    #[arg(long, default_value = "search=90,create=5,delete=5", value_parser = parse_mix)]
    pub mix: Mix,

    /// The server's cap on results per search (napshare's --max-results). A shorter reply
    /// must list every matching file.
    #[arg(long, default_value_t = 1000)]
    pub max_results: usize,
    /// After the measured phase, search every pattern (and the name of every file no
    /// pattern search could check) and check that nothing registered is missing.
    #[arg(long)]
    pub verify_final: bool,
    /// Seconds to stay connected and idle after registration, before the memory reading
    /// and the measured phase.
    #[arg(long, default_value_t = 0.0)]
    pub hold: f64,

    /// Connections being opened (connect sent, `CONFIRMJOIN` not yet read) at once. Keep
    /// it under the server's listen backlog (128 for napshare's servers): a full accept
    /// queue drops SYNs, which cost a one-second retransmit each.
    #[arg(long, default_value_t = 64)]
    pub connect_batch: usize,
    /// Seconds a reply may take before it counts as an error and the connection is closed.
    #[arg(long, default_value_t = 10.0)]
    pub timeout: f64,
    /// Fake file-server port of the first client; client i joins with port + i.
    #[arg(long, default_value_t = 20000)]
    pub port_base: u16,
    /// Wrong replies to show as examples.
    #[arg(long, default_value_t = 5)]
    pub examples: usize,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// No progress lines on standard error.
    #[arg(short, long)]
    pub quiet: bool,
}

/// The request mix in percent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mix {
    pub search: u64,
    pub create: u64,
    pub delete: u64,
}

fn parse_mix(s: &str) -> Result<Mix, String> {
    let mut mix = Mix {
        search: 0,
        create: 0,
        delete: 0,
    };
    for part in s.split(',').filter(|p| !p.is_empty()) {
        let (key, value) = part
            .split_once('=')
            .ok_or_else(|| format!("`{part}` is not KIND=PERCENT"))?;
        let value: u64 = value
            .trim()
            .parse()
            .map_err(|_| format!("`{value}` is not a whole percentage"))?;
        match key.trim() {
            "search" => mix.search = value,
            "create" => mix.create = value,
            "delete" => mix.delete = value,
            other => {
                return Err(format!(
                    "unknown request kind `{other}` (search, create, delete)"
                ))
            }
        }
    }
    if mix.search + mix.create + mix.delete != 100 {
        return Err("the percentages must add up to 100".to_owned());
    }
    Ok(mix)
}

impl Config {
    /// Spare names per client.
    pub fn spare(&self) -> usize {
        self.spare.unwrap_or(if self.files == 0 {
            0
        } else {
            (self.files / 4).max(2)
        })
    }

    /// The measured phase's length; `None` for no limit (then --requests bounds it).
    pub fn duration(&self) -> Option<Duration> {
        match (self.duration, self.requests) {
            (Some(d), _) => Some(Duration::from_secs_f64(d.max(0.0))),
            (None, Some(_)) => None,
            (None, None) => Some(Duration::from_secs(10)),
        }
    }

    fn check(&self) -> Result<(), String> {
        if self.clients == 0 {
            return Err("--clients must be at least 1".into());
        }
        if self.port_base as usize + self.clients > 65536 {
            return Err(format!(
                "--port-base {} + --clients {} passes port 65535",
                self.port_base, self.clients
            ));
        }
        if self.files + self.spare() > u16::MAX as usize {
            return Err("too many files per client".into());
        }
        if let Some(rate) = self.rate {
            if rate.is_nan() || rate <= 0.0 {
                return Err("--rate must be positive".into());
            }
        }
        if self.broad + self.loose > 100 {
            return Err("--broad and --loose add up to more than 100".into());
        }
        if self.connect_batch == 0 {
            return Err("--connect-batch must be at least 1".into());
        }
        Ok(())
    }
}

/// Runs the load described by `config` against `addr` (and the server process `pid`, if
/// known), printing progress to standard error unless quiet.
pub fn run(config: &Config, addr: SocketAddr, pid: Option<u32>) -> Result<Report, String> {
    config.check()?;
    if let Some(limit) = server::open_files_limit() {
        if config.clients as u64 + 32 > limit {
            return Err(format!(
                "{} clients need more open files than this process may have ({limit}); \
                 raise it with `ulimit -n`",
                config.clients
            ));
        }
    }
    engine::Engine::new(config, addr, pid)?.run()
}

/// The `loadgen` command.
pub fn main() -> ExitCode {
    let config = Config::parse();
    if let Err(e) = config.check() {
        eprintln!("loadgen: {e}");
        return ExitCode::from(2);
    }
    let (addr, pid, spawned, target) = match (&config.server, &config.spawn_server) {
        (Some(server), _) => match server.to_socket_addrs().map(|mut a| a.next()) {
            Ok(Some(addr)) => (addr, config.server_pid, None, server.clone()),
            Ok(None) | Err(_) => {
                eprintln!("loadgen: cannot resolve {server}");
                return ExitCode::from(2);
            }
        },
        (None, Some(runtime)) => {
            match server::spawn(runtime, config.server_bin.clone(), config.max_results) {
                Ok(s) => {
                    let target = format!("{} (napshare {runtime}, spawned)", s.addr);
                    (s.addr, Some(s.pid), Some(s), target)
                }
                Err(e) => {
                    eprintln!("loadgen: {e}");
                    return ExitCode::from(2);
                }
            }
        }
        (None, None) => unreachable!("clap requires one"),
    };
    let result = run(&config, addr, pid);
    let mut server_note = Vec::new();
    if let Some(mut s) = spawned {
        let failed = result.as_ref().map_or(true, |r| r.errors.total() > 0);
        if failed {
            let exited = s.exited();
            server_note.push(format!(
                "loadgen: the spawned server (pid {}) {}; the last lines of its standard error:",
                s.pid,
                if exited {
                    "has exited"
                } else {
                    "is still running"
                }
            ));
            server_note.extend(s.stderr_tail().into_iter().map(|l| format!("  {l}")));
        }
    }
    for line in &server_note {
        eprintln!("{line}");
    }
    match result {
        Ok(mut report) => {
            report.target = target;
            if config.json {
                println!("{}", report.json());
            } else {
                print!("{}", report.human());
            }
            if report.errors.total() == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("loadgen: {e}");
            ExitCode::from(2)
        }
    }
}
