//! The event loop: every client connection on one thread, non-blocking, with mio.
//!
//! Phases, each starting when the one before has no request left in flight:
//!
//! 1. **register**: connect (at most `--connect-batch` connections being opened at once,
//!    so the server's listen backlog is never overrun), `JOIN`, and the initial
//!    `CREATEFILE`s. Then an optional `--hold` with every client idle.
//! 2. **mix**: the measured SEARCH / CREATEFILE / DELETEFILE mix.
//! 3. **verify** (with `--verify-final`): one SEARCH per pattern, then one per name of a
//!    file that no uncapped pattern search listed.
//! 4. **leave**: `LEAVE`, `CONFIRMLEAVE`, the server's close.
//!
//! Here are the state and the loop; `conn.rs` is a connection's I/O, `requests.rs` what is
//! sent when (the mix, pipelining, the rate), `replies.rs` the checking of replies against
//! the model, `phases.rs` the bookkeeping between events, `line.rs` bytes to and from numbers.

use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Poll};

use super::model::Model;
use super::report::{Errors, MemReport, Phase, Report, VerifyReport};
use super::server;
use super::vocab::Rng;
use super::Config;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Join = 0,
    Create = 1,
    Delete = 2,
    Search = 3,
    Leave = 4,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Stage {
    Register,
    Hold,
    Mix,
    Verify,
    Leave,
    Done,
}

impl Stage {
    /// Index of the phase's statistics.
    fn phase(self) -> usize {
        match self {
            Stage::Register | Stage::Hold => 0,
            Stage::Mix => 1,
            Stage::Verify => 2,
            Stage::Leave | Stage::Done => 3,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Not started yet.
    Idle,
    Connecting,
    Open,
    /// `LEAVE` sent.
    Leaving,
    /// `CONFIRMLEAVE` read; waiting for the close.
    Left,
    /// Closed after leaving.
    Closed,
    /// Failed; its files are no longer checked.
    Dead,
}

/// A request in flight.
#[derive(Debug, Clone, Copy)]
struct Req {
    kind: Kind,
    /// The slot (CREATEFILE, DELETEFILE) or pattern (SEARCH).
    target: u32,
    /// Phase statistics it belongs to.
    phase: u8,
    /// The tick it was sent at.
    tick: u64,
    /// Nanoseconds from the start when it was sent (or due, at a fixed rate), for its
    /// latency.
    t0: u64,
    /// When it was sent, for the timeout.
    sent: u64,
}

struct Conn {
    stream: Option<TcpStream>,
    state: State,
    out: Vec<u8>,
    out_pos: usize,
    inbuf: Vec<u8>,
    inflight: VecDeque<Req>,
    /// The reply to the search at the front, so far.
    s_count: u32,
    s_noresult: bool,
    s_seen: Vec<u32>,
    rng: Rng,
    joined: bool,
    /// Initial files sent / confirmed.
    reg_sent: u32,
    reg_confirmed: u32,
    reg_done: bool,
    /// Final-check searches still to send (pattern ids).
    tasks: Vec<u32>,
    /// Waiting for a rate token.
    queued: bool,
    ip: Option<IpAddr>,
    /// The address it joined with (`ip:port`), as a server lists it in `FILE` lines.
    peer: Vec<u8>,
    /// When the current wait began (connect, leave).
    since: u64,
}

impl Conn {
    fn new(rng: Rng) -> Self {
        Self {
            stream: None,
            state: State::Idle,
            out: Vec::new(),
            out_pos: 0,
            inbuf: Vec::new(),
            inflight: VecDeque::new(),
            s_count: 0,
            s_noresult: false,
            s_seen: Vec::new(),
            rng,
            joined: false,
            reg_sent: 0,
            reg_confirmed: 0,
            reg_done: false,
            tasks: Vec::new(),
            queued: false,
            ip: None,
            peer: Vec::new(),
            since: 0,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Fault {
    Connect,
    Closed,
    Timeout,
    WrongReply,
    BadResult,
    Missing,
    OverCap,
    Leave,
}

/// Counts an error; the message (a `format!`) is only built while examples are wanted.
macro_rules! err {
    ($self:ident, $kind:expr, $($fmt:tt)+) => {{
        let msg = ($self.examples.len() < $self.cfg.examples).then(|| format!($($fmt)+));
        $self.error($kind, msg)
    }};
}

/// Counts an error and closes the connection.
macro_rules! kill {
    ($self:ident, $c:expr, $kind:expr, $($fmt:tt)+) => {{
        let msg = ($self.examples.len() < $self.cfg.examples).then(|| format!($($fmt)+));
        $self.kill($c, $kind, msg)
    }};
}

// The submodules come after the macros, which they use.
mod conn;
mod line;
mod phases;
mod replies;
mod requests;

pub struct Engine<'a> {
    cfg: &'a Config,
    addr: SocketAddr,
    pid: Option<u32>,
    poll: Poll,
    conns: Vec<Conn>,
    model: Model,
    start: Instant,
    now: u64,
    tick: u64,
    stage: Stage,
    phases: Vec<Phase>,
    phase_start: u64,
    last_reply: u64,
    errors: Errors,
    examples: Vec<String>,
    scratch: Vec<u8>,
    pipeline: usize,
    inflight: usize,
    next_connect: usize,
    connecting: usize,
    reg_left: usize,
    joined: usize,
    hold_end: u64,
    // The mix.
    mix_end: u64,
    mix_limit: u64,
    mix_issued: u64,
    exhausted: bool,
    waiting: VecDeque<u32>,
    // The final check.
    verify_round: u8,
    unissued: usize,
    covered: Vec<bool>,
    verify: VerifyReport,
    // Leaving.
    leave_left: usize,
    left: usize,
    mem: MemReport,
    last_sweep: u64,
    last_progress: u64,
    /// CPU seconds of the load generator and the server when the phase began.
    cpu_start: (f64, Option<f64>),
}

const SECOND: u64 = 1_000_000_000;

fn ns(d: Duration) -> u64 {
    d.as_nanos().min(u128::from(u64::MAX / 4)) as u64
}

impl<'a> Engine<'a> {
    pub fn new(cfg: &'a Config, addr: SocketAddr, pid: Option<u32>) -> Result<Self, String> {
        let t = Instant::now();
        let model = Model::new(
            cfg.seed,
            cfg.clients,
            cfg.files,
            cfg.spare(),
            cfg.patterns,
            (cfg.broad, cfg.loose),
        );
        if !cfg.quiet {
            let mut matches: Vec<usize> = model.patterns.iter().map(|p| p.postings.len()).collect();
            matches.sort_unstable();
            let at = |q: f64| {
                matches
                    .get((q * matches.len() as f64) as usize)
                    .copied()
                    .unwrap_or(0)
            };
            eprintln!(
                "loadgen: {} names for {} clients and {} patterns drawn in {:.2} s; a pattern \
                 matches {:.1} names on average (median {}, 90th percentile {}, max {})",
                model.slots.len(),
                cfg.clients,
                model.patterns.len(),
                t.elapsed().as_secs_f64(),
                matches.iter().sum::<usize>() as f64 / matches.len().max(1) as f64,
                at(0.5),
                at(0.9),
                matches.last().copied().unwrap_or(0)
            );
        }
        let conns = (0..cfg.clients)
            .map(|c| Conn::new(Rng::stream(cfg.seed ^ 0x10AD, c as u64)))
            .collect();
        Ok(Self {
            cfg,
            addr,
            pid,
            poll: Poll::new().map_err(|e| format!("cannot create a poll: {e}"))?,
            conns,
            model,
            start: Instant::now(),
            now: 0,
            tick: 1,
            stage: Stage::Register,
            phases: vec![
                Phase::new("register"),
                Phase::new("mix"),
                Phase::new("verify"),
                Phase::new("leave"),
            ],
            phase_start: 0,
            last_reply: 0,
            errors: Errors::default(),
            examples: Vec::new(),
            scratch: vec![0; 256 * 1024],
            pipeline: cfg.pipeline as usize,
            inflight: 0,
            next_connect: 0,
            connecting: 0,
            reg_left: cfg.clients,
            joined: 0,
            hold_end: 0,
            mix_end: u64::MAX,
            mix_limit: u64::MAX,
            mix_issued: 0,
            exhausted: false,
            waiting: VecDeque::new(),
            verify_round: 0,
            unissued: 0,
            covered: Vec::new(),
            verify: VerifyReport::default(),
            leave_left: 0,
            left: 0,
            mem: MemReport {
                pid: pid.unwrap_or(0),
                ..MemReport::default()
            },
            last_sweep: 0,
            last_progress: 0,
            cpu_start: (0.0, None),
        })
    }

    fn progress(&self, msg: std::fmt::Arguments) {
        if !self.cfg.quiet {
            eprintln!("loadgen: {:7.2} s  {msg}", self.now as f64 / SECOND as f64);
        }
    }

    fn read_mem(&self) -> Option<server::Mem> {
        self.pid.and_then(server::mem)
    }

    pub fn run(mut self) -> Result<Report, String> {
        self.mem.start = self.read_mem();
        self.start = Instant::now();
        self.begin_phase();
        let mut events = Events::with_capacity(4096);
        self.launch_connects();
        while self.stage != Stage::Done {
            let timeout = self.poll_timeout();
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(format!("poll: {e}"));
                }
            }
            for event in events.iter() {
                // Per event, so latencies do not depend on where an event falls in a batch.
                self.now = ns(self.start.elapsed());
                let c = event.token().0;
                self.on_event(
                    c,
                    event.is_readable() || event.is_read_closed(),
                    event.is_read_closed(),
                    event.is_writable() || event.is_error(),
                );
            }
            self.now = ns(self.start.elapsed());
            self.after_events();
        }
        let mut phases = std::mem::take(&mut self.phases);
        if self.cfg.verify_final {
            self.verify.files_checked = self.covered.iter().filter(|&&c| c).count() as u64;
        }
        phases.retain(|p| p.name != "verify" || self.cfg.verify_final);
        Ok(Report {
            target: self.addr.to_string(),
            clients: self.cfg.clients,
            files: self.cfg.files,
            spare: self.cfg.spare(),
            pipeline: self.cfg.pipeline,
            seed: self.cfg.seed,
            rate: self.cfg.rate,
            mix: self.cfg.mix,
            patterns: self.model.listed,
            broad: self.cfg.broad,
            loose: self.cfg.loose,
            max_results: self.cfg.max_results,
            joined: self.joined,
            left: self.left,
            phases,
            verify: self.cfg.verify_final.then(|| self.verify.clone()),
            mem: self.pid.map(|_| self.mem.clone()),
            errors: self.errors.clone(),
            examples: self.examples.clone(),
        })
    }

    fn poll_timeout(&self) -> Duration {
        let mut wake = self.now + SECOND / 10;
        match self.stage {
            Stage::Hold => wake = wake.min(self.hold_end),
            Stage::Mix if !self.exhausted => {
                wake = wake.min(self.mix_end);
                if let (Some(rate), false) = (self.cfg.rate, self.waiting.is_empty()) {
                    wake = wake.min(self.due(rate, self.mix_issued));
                }
            }
            _ => {}
        }
        Duration::from_nanos(wake.saturating_sub(self.now))
    }

    /// When mix request number `i` is due at `rate`.
    fn due(&self, rate: f64, i: u64) -> u64 {
        self.phase_start + (i as f64 * SECOND as f64 / rate) as u64
    }
}
