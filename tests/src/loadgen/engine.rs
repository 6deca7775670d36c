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

use std::collections::{HashMap, VecDeque};
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use super::model::{FxBuild, Model, PENDING};
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

fn push_num(out: &mut Vec<u8>, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// Parses `ip`, `ip:port`, `[v6]:port` (port 1235 when absent, as napshare lists it).
fn parse_peer(peer: &str) -> Option<(IpAddr, u16)> {
    if let Some(rest) = peer.strip_prefix('[') {
        let (ip, port) = rest.split_once("]:")?;
        return Some((ip.parse().ok()?, port.parse().ok()?));
    }
    if let Ok(ip) = peer.parse::<IpAddr>() {
        return Some((ip, 1235));
    }
    let (ip, port) = peer.rsplit_once(':')?;
    Some((ip.parse().ok()?, port.parse().ok()?))
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
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

    // ---- errors ----

    fn error(&mut self, kind: Fault, msg: Option<String>) {
        let counter = match kind {
            Fault::Connect => &mut self.errors.connect,
            Fault::Closed => &mut self.errors.closed,
            Fault::Timeout => &mut self.errors.timeout,
            Fault::WrongReply => &mut self.errors.wrong_reply,
            Fault::BadResult => &mut self.errors.bad_result,
            Fault::Missing => &mut self.errors.missing,
            Fault::OverCap => &mut self.errors.over_cap,
            Fault::Leave => &mut self.errors.leave,
        };
        *counter += 1;
        if let Some(msg) = msg.filter(|_| self.examples.len() < self.cfg.examples) {
            self.examples.push(format!(
                "[{:.3} s] {kind:?}: {msg}",
                self.now as f64 / SECOND as f64
            ));
        }
    }

    /// Counts an error and closes connection `c`; its files are no longer checked.
    fn kill(&mut self, c: usize, kind: Fault, msg: Option<String>) {
        self.error(kind, msg);
        self.close(c, State::Dead);
    }

    fn close(&mut self, c: usize, state: State) {
        let conn = &mut self.conns[c];
        let was = conn.state;
        if let Some(mut stream) = conn.stream.take() {
            let _ = self.poll.registry().deregister(&mut stream);
        }
        conn.state = state;
        self.inflight -= conn.inflight.len();
        conn.inflight.clear();
        conn.out = Vec::new();
        conn.out_pos = 0;
        conn.inbuf = Vec::new();
        self.unissued -= conn.tasks.len();
        conn.tasks = Vec::new();
        if was == State::Connecting || (was == State::Open && !conn.joined) {
            self.connecting -= 1;
        }
        if !conn.reg_done {
            conn.reg_done = true;
            self.reg_left -= 1;
        }
        if matches!(was, State::Leaving | State::Left) {
            self.leave_left -= 1;
        }
    }

    // ---- connections ----

    fn launch_connects(&mut self) {
        while self.stage == Stage::Register
            && self.connecting < self.cfg.connect_batch
            && self.next_connect < self.conns.len()
        {
            let c = self.next_connect;
            self.next_connect += 1;
            match TcpStream::connect(self.addr) {
                Ok(mut stream) => {
                    if let Err(e) = self.poll.registry().register(
                        &mut stream,
                        Token(c),
                        Interest::READABLE | Interest::WRITABLE,
                    ) {
                        self.conns[c].state = State::Dead;
                        self.conns[c].reg_done = true;
                        self.reg_left -= 1;
                        err!(self, Fault::Connect, "client {c}: register: {e}");
                        continue;
                    }
                    let conn = &mut self.conns[c];
                    conn.stream = Some(stream);
                    conn.state = State::Connecting;
                    conn.since = self.now;
                    self.connecting += 1;
                }
                Err(e) => {
                    self.conns[c].state = State::Dead;
                    self.conns[c].reg_done = true;
                    self.reg_left -= 1;
                    err!(self, Fault::Connect, "client {c}: connect: {e}");
                }
            }
        }
    }

    fn on_event(&mut self, c: usize, readable: bool, read_closed: bool, writable: bool) {
        if c >= self.conns.len() {
            return;
        }
        if self.conns[c].state == State::Connecting {
            let stream = self.conns[c]
                .stream
                .as_ref()
                .expect("connecting has a stream");
            match stream.take_error() {
                Ok(Some(e)) | Err(e) => {
                    return kill!(self, c, Fault::Connect, "client {c}: connect: {e}");
                }
                Ok(None) => {}
            }
            match stream.peer_addr() {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return,
                Err(e) => return kill!(self, c, Fault::Connect, "client {c}: connect: {e}"),
            }
            let _ = stream.set_nodelay(true);
            let ip = stream.local_addr().map(|a| canonical(a.ip())).ok();
            let conn = &mut self.conns[c];
            conn.ip = ip;
            conn.state = State::Open;
            let port = u64::from(self.cfg.port_base) + c as u64;
            let mut line = b"JOIN ".to_vec();
            match ip {
                Some(IpAddr::V6(v6)) => line.extend_from_slice(format!("[{v6}]:").as_bytes()),
                Some(ip) => line.extend_from_slice(format!("{ip}:").as_bytes()),
                None => line.extend_from_slice(b"127.0.0.1:"),
            }
            push_num(&mut line, port);
            self.conns[c].peer = line[b"JOIN ".len()..].to_vec();
            line.push(b'\n');
            self.send(c, Kind::Join, 0, &line, None);
        }
        if readable && self.conns[c].stream.is_some() {
            self.on_readable(c, read_closed);
        }
        if self.conns[c].stream.is_none() {
            return;
        }
        self.pump(c);
        if writable || !self.conns[c].out.is_empty() {
            self.flush(c);
        }
    }

    fn flush(&mut self, c: usize) {
        let conn = &mut self.conns[c];
        let Some(stream) = conn.stream.as_mut() else {
            return;
        };
        while conn.out_pos < conn.out.len() {
            match stream.write(&conn.out[conn.out_pos..]) {
                Ok(0) => return kill!(self, c, Fault::Closed, "client {c}: write returned 0"),
                Ok(n) => conn.out_pos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let leaving = matches!(conn.state, State::Leaving | State::Left);
                    return kill!(
                        self,
                        c,
                        if leaving { Fault::Leave } else { Fault::Closed },
                        "client {c}: write: {e}"
                    );
                }
            }
        }
        conn.out.clear();
        conn.out_pos = 0;
    }

    /// Reads what connection `c` has; `read_closed`: the peer's close has arrived too.
    fn on_readable(&mut self, c: usize, read_closed: bool) {
        let mut scratch = std::mem::take(&mut self.scratch);
        while let Some(stream) = self.conns[c].stream.as_mut() {
            match stream.read(&mut scratch) {
                Ok(0) => {
                    self.on_eof(c, None);
                    break;
                }
                Ok(n) => {
                    self.on_bytes(c, &scratch[..n]);
                    // A short read took everything there was: any byte (or close) that
                    // comes later is a new edge and a new event, so the read that would
                    // only say WouldBlock can be saved, as tokio does. Not when the close
                    // came with the data: that edge is spent, and only reading on sees it.
                    if n < scratch.len() && !read_closed {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.on_eof(c, Some(e));
                    break;
                }
            }
        }
        self.scratch = scratch;
    }

    fn on_eof(&mut self, c: usize, err: Option<io::Error>) {
        match self.conns[c].state {
            State::Left => {
                self.left += 1;
                self.close(c, State::Closed);
            }
            State::Leaving => kill!(
                self,
                c,
                Fault::Leave,
                "client {c}: closed before CONFIRMLEAVE ({err:?})"
            ),
            _ => kill!(
                self,
                c,
                Fault::Closed,
                "client {c}: the server closed the connection ({})",
                err.map_or("end of stream".to_owned(), |e| e.to_string())
            ),
        }
    }

    fn on_bytes(&mut self, c: usize, mut data: &[u8]) {
        if !self.conns[c].inbuf.is_empty() {
            match data.iter().position(|&b| b == b'\n') {
                None => {
                    self.conns[c].inbuf.extend_from_slice(data);
                    if self.conns[c].inbuf.len() > 1 << 20 {
                        kill!(
                            self,
                            c,
                            Fault::WrongReply,
                            "client {c}: a reply line over 1 MiB"
                        );
                    }
                    return;
                }
                Some(i) => {
                    let mut line = std::mem::take(&mut self.conns[c].inbuf);
                    line.extend_from_slice(&data[..i]);
                    self.on_line(c, &line);
                    line.clear();
                    if let Some(conn) = self.conns.get_mut(c).filter(|c| c.stream.is_some()) {
                        conn.inbuf = line;
                    } else {
                        return;
                    }
                    data = &data[i + 1..];
                }
            }
        }
        while let Some(i) = data.iter().position(|&b| b == b'\n') {
            self.on_line(c, &data[..i]);
            if self.conns[c].stream.is_none() {
                return;
            }
            data = &data[i + 1..];
        }
        self.conns[c].inbuf.extend_from_slice(data);
    }

    // ---- replies ----

    fn on_line(&mut self, c: usize, mut line: &[u8]) {
        while let Some(rest) = line.strip_suffix(b"\r") {
            line = rest;
        }
        let Some(&req) = self.conns[c].inflight.front() else {
            return kill!(
                self,
                c,
                Fault::WrongReply,
                "client {c}: a line nobody asked for: {}",
                show(line)
            );
        };
        match req.kind {
            Kind::Join => {
                if line != b"CONFIRMJOIN" {
                    return kill!(
                        self,
                        c,
                        Fault::WrongReply,
                        "client {c}: JOIN answered with {}",
                        show(line)
                    );
                }
                self.conns[c].joined = true;
                self.connecting -= 1;
                self.joined += 1;
                self.complete(c, req);
                self.check_registered(c);
            }
            Kind::Create | Kind::Delete => {
                let word: &[u8] = if req.kind == Kind::Create {
                    b"CONFIRMCREATEFILE "
                } else {
                    b"CONFIRMDELETEFILE "
                };
                let Some(name) = line.strip_prefix(word) else {
                    return kill!(
                        self,
                        c,
                        Fault::WrongReply,
                        "client {c}: {}FILE {} answered with {}",
                        if req.kind == Kind::Create {
                            "CREATE"
                        } else {
                            "DELETE"
                        },
                        self.model.name(req.target),
                        show(line)
                    );
                };
                if name == self.model.name(req.target).as_bytes() {
                    self.tick += 1;
                    self.model.confirm(req.target, self.tick);
                } else {
                    // The slot stays pending: it is no longer checked strictly.
                    err!(
                        self,
                        Fault::WrongReply,
                        "client {c}: {} for {} answered with {}",
                        String::from_utf8_lossy(word).trim(),
                        self.model.name(req.target),
                        show(line)
                    );
                }
                self.complete(c, req);
                if req.kind == Kind::Create && req.phase == 0 {
                    self.conns[c].reg_confirmed += 1;
                    self.check_registered(c);
                }
            }
            Kind::Search => {
                if let Some(rest) = line.strip_prefix(b"FILE ") {
                    self.on_file(c, req, rest);
                } else if line == b"NORESULT" {
                    let conn = &mut self.conns[c];
                    if conn.s_count > 0 || conn.s_noresult {
                        err!(
                            self,
                            Fault::WrongReply,
                            "client {c}: NORESULT after results, SEARCH {}",
                            self.model.patterns[req.target as usize].text
                        );
                    }
                    self.conns[c].s_noresult = true;
                } else if line == b"ENDSEARCH" {
                    self.end_search(c, req);
                } else {
                    kill!(
                        self,
                        c,
                        Fault::WrongReply,
                        "client {c}: SEARCH {} answered with {}",
                        self.model.patterns[req.target as usize].text,
                        show(line)
                    );
                }
            }
            Kind::Leave => {
                if line != b"CONFIRMLEAVE" {
                    return kill!(
                        self,
                        c,
                        Fault::Leave,
                        "client {c}: LEAVE answered with {}",
                        show(line)
                    );
                }
                self.complete(c, req);
                let conn = &mut self.conns[c];
                conn.state = State::Left;
                conn.since = self.now;
            }
        }
    }

    fn complete(&mut self, c: usize, req: Req) {
        self.conns[c].inflight.pop_front();
        self.inflight -= 1;
        self.last_reply = self.now;
        self.phases[req.phase as usize].hists[req.kind as usize]
            .record(self.now.saturating_sub(req.t0));
    }

    fn check_registered(&mut self, c: usize) {
        let conn = &mut self.conns[c];
        if !conn.reg_done && conn.joined && conn.reg_confirmed as usize == self.model.initial {
            conn.reg_done = true;
            self.reg_left -= 1;
        }
    }

    fn on_file(&mut self, c: usize, req: Req, rest: &[u8]) {
        self.conns[c].s_count += 1;
        let count = self.conns[c].s_count as usize;
        let pattern = req.target as usize;
        if count == self.cfg.max_results + 1 {
            err!(
                self,
                Fault::OverCap,
                "client {c}: SEARCH {} listed more than {} files",
                self.model.patterns[pattern].text,
                self.cfg.max_results
            );
        }
        match self.check_file(req, rest) {
            Ok(slot) => self.conns[c].s_seen.push(slot),
            Err(why) => err!(
                self,
                Fault::BadResult,
                "client {c}: SEARCH {} listed FILE {}: {why}",
                self.model.patterns[pattern].text,
                String::from_utf8_lossy(rest)
            ),
        }
    }

    /// The slot a `FILE` line (what follows `FILE `) in the reply to `req` names, if
    /// the line is right.
    fn check_file(&self, req: Req, rest: &[u8]) -> Result<u32, String> {
        let mut fields = rest.rsplitn(3, |&b| b == b' ');
        let (Some(size), Some(peer), Some(name)) = (fields.next(), fields.next(), fields.next())
        else {
            return Err("not NAME PEER SIZE".into());
        };
        let size = parse_num(size).ok_or("the size is not a number")?;
        let owner = self.owner_of(peer)?;
        let slot = self.slot_named(req, owner, name)?;
        if self.conns[owner].state != State::Dead {
            self.model
                .check_listed(slot, size, req.tick)
                .map_err(|why| format!("client {owner}'s file: {why}"))?;
        }
        Ok(slot)
    }

    /// The client a `FILE` line's peer names. Most lines name it exactly as it joined,
    /// which a byte comparison confirms; any other form is parsed.
    fn owner_of(&self, peer: &[u8]) -> Result<usize, String> {
        let port = peer.rsplit(|&b| b == b':').next().and_then(parse_num);
        if let Some(owner) =
            port.map(|p| (p as usize).wrapping_sub(usize::from(self.cfg.port_base)))
        {
            if self.conns.get(owner).is_some_and(|c| c.peer == peer) {
                return Ok(owner);
            }
        }
        let (ip, port) = std::str::from_utf8(peer)
            .ok()
            .and_then(parse_peer)
            .ok_or("the peer is not ip:port")?;
        let owner = usize::from(port).wrapping_sub(usize::from(self.cfg.port_base));
        if owner >= self.conns.len() {
            return Err("no client joined with that port".into());
        }
        if let Some(expected) = self.conns[owner].ip {
            if canonical(ip) != expected {
                return Err(format!("client {owner} connected from {expected}"));
            }
        }
        Ok(owner)
    }

    /// The slot of `owner` that a `FILE` line of the reply to `req` names, if it contains
    /// the pattern. Looked up first among the pattern's own slots (those of `owner` are a
    /// few at most), which is also the proof that the name contains the pattern; else by
    /// the name, for the error or for a name search's other matches.
    fn slot_named(&self, req: Req, owner: usize, name: &[u8]) -> Result<u32, String> {
        let pattern = &self.model.patterns[req.target as usize];
        let per = self.model.per_client as u32;
        let (lo, hi) = (owner as u32 * per, (owner as u32 + 1) * per);
        let from = pattern.postings.partition_point(|&s| s < lo);
        let known = pattern.postings[from..]
            .iter()
            .take_while(|&&s| s < hi)
            .find(|&&s| self.model.name(s).as_bytes() == name);
        if let Some(&slot) = known {
            return Ok(slot);
        }
        let slot = self
            .model
            .find(owner, name)
            .ok_or_else(|| format!("client {owner} never registered that name"))?;
        if memfind(name, pattern.text.as_bytes()).is_none() {
            return Err("the name does not contain the pattern".into());
        }
        Ok(slot)
    }

    fn end_search(&mut self, c: usize, req: Req) {
        let pattern = req.target as usize;
        let mut seen = std::mem::take(&mut self.conns[c].s_seen);
        let count = self.conns[c].s_count as usize;
        let noresult = self.conns[c].s_noresult;
        if count == 0 && !noresult {
            err!(
                self,
                Fault::WrongReply,
                "client {c}: SEARCH {} ended with no FILE line and no NORESULT",
                self.model.patterns[pattern].text
            );
        }
        let phase = &mut self.phases[req.phase as usize];
        phase.search_lines += count as u64;
        if count >= self.cfg.max_results {
            phase.capped += 1;
        }
        if noresult {
            phase.noresult += 1;
        }
        seen.sort_unstable();
        if let Some(w) = seen.windows(2).find(|w| w[0] == w[1]) {
            let slot = w[0];
            err!(
                self,
                Fault::BadResult,
                "client {c}: SEARCH {} listed {} of client {} twice",
                self.model.patterns[pattern].text,
                self.model.name(slot),
                self.model.client_of(slot)
            );
        }
        let verifying = self.stage == Stage::Verify;
        if verifying {
            // Every file a checked FILE line named is there.
            for &slot in &seen {
                self.covered[slot as usize] = true;
            }
        }
        if count >= self.cfg.max_results && verifying && self.verify_round == 1 {
            // A name search cut by the cap: the files it was for cannot be checked.
            let unchecked = self.model.patterns[pattern]
                .postings
                .iter()
                .filter(|&&slot| {
                    self.model.required(slot, req.tick) && seen.binary_search(&slot).is_err()
                })
                .count();
            self.verify.unverifiable += unchecked as u64;
        }
        if count < self.cfg.max_results {
            for i in 0..self.model.patterns[pattern].postings.len() {
                let slot = self.model.patterns[pattern].postings[i];
                let owner = self.model.client_of(slot);
                if self.conns[owner].state == State::Dead || !self.model.required(slot, req.tick) {
                    continue;
                }
                if seen.binary_search(&slot).is_ok() {
                    continue;
                }
                err!(
                    self,
                    Fault::Missing,
                    "client {c}: SEARCH {} left out {} {} shared by client {owner} \
                         (port {}), confirmed before the search was sent",
                    self.model.patterns[pattern].text,
                    self.model.name(slot),
                    self.model.slots[slot as usize].size,
                    u64::from(self.cfg.port_base) + owner as u64
                );
            }
        }
        seen.clear();
        let conn = &mut self.conns[c];
        conn.s_seen = seen;
        conn.s_count = 0;
        conn.s_noresult = false;
        self.complete(c, req);
    }

    // ---- requests ----

    /// Queues `line` on connection `c` as a request of `kind`; `due` is when it was due
    /// (at a fixed rate), for its latency.
    fn send(&mut self, c: usize, kind: Kind, target: u32, line: &[u8], due: Option<u64>) {
        self.tick += 1;
        let req = Req {
            kind,
            target,
            phase: self.stage.phase() as u8,
            tick: self.tick,
            t0: due.unwrap_or(self.now),
            sent: self.now,
        };
        let conn = &mut self.conns[c];
        conn.out.extend_from_slice(line);
        conn.inflight.push_back(req);
        self.inflight += 1;
    }

    fn send_change(&mut self, c: usize, slot: u32, present: bool, size: u64, due: Option<u64>) {
        let mut line = Vec::with_capacity(96);
        line.extend_from_slice(if present {
            b"CREATEFILE "
        } else {
            b"DELETEFILE "
        });
        line.extend_from_slice(self.model.name(slot).as_bytes());
        if present {
            line.push(b' ');
            push_num(&mut line, size);
        }
        line.push(b'\n');
        self.model.send_change(slot, present, size, self.tick + 1);
        let kind = if present { Kind::Create } else { Kind::Delete };
        self.send(c, kind, slot, &line, due);
    }

    fn send_search(&mut self, c: usize, pattern: u32, due: Option<u64>) {
        let text = &self.model.patterns[pattern as usize].text;
        let mut line = Vec::with_capacity(text.len() + 8);
        line.extend_from_slice(b"SEARCH ");
        line.extend_from_slice(text.as_bytes());
        line.push(b'\n');
        self.send(c, Kind::Search, pattern, &line, due);
    }

    /// Sends what connection `c` may send now.
    fn pump(&mut self, c: usize) {
        if self.conns[c].state != State::Open {
            return;
        }
        match self.stage {
            Stage::Register => {
                let per = self.model.per_client as u32;
                while self.conns[c].inflight.len() < self.pipeline
                    && (self.conns[c].reg_sent as usize) < self.model.initial
                {
                    let slot = c as u32 * per + self.conns[c].reg_sent;
                    self.conns[c].reg_sent += 1;
                    let size = self.model.slots[slot as usize].size;
                    self.send_change(c, slot, true, size, None);
                }
            }
            Stage::Mix => {
                while self.conns[c].inflight.len() < self.pipeline && !self.exhausted {
                    if self.mix_issued >= self.mix_limit || self.now >= self.mix_end {
                        self.exhausted = true;
                        break;
                    }
                    let due = match self.cfg.rate {
                        Some(rate) => {
                            let due = self.due(rate, self.mix_issued);
                            if due > self.now {
                                if !self.conns[c].queued {
                                    self.conns[c].queued = true;
                                    self.waiting.push_back(c as u32);
                                }
                                break;
                            }
                            Some(due)
                        }
                        None => None,
                    };
                    self.mix_issued += 1;
                    self.send_mix(c, due);
                }
            }
            Stage::Verify => {
                while self.conns[c].inflight.len() < self.pipeline {
                    let Some(p) = self.conns[c].tasks.pop() else {
                        break;
                    };
                    self.unissued -= 1;
                    self.send_search(c, p, None);
                }
            }
            Stage::Leave => {
                if self.conns[c].inflight.is_empty() {
                    self.send(c, Kind::Leave, 0, b"LEAVE\n", None);
                    let conn = &mut self.conns[c];
                    conn.state = State::Leaving;
                    conn.since = self.now;
                }
            }
            Stage::Hold | Stage::Done => {}
        }
    }

    /// A free slot of client `c`: shared (`present`) or not, with no change in flight.
    fn pick_slot(&mut self, c: usize, present: bool) -> Option<u32> {
        let per = self.model.per_client;
        if per == 0 {
            return None;
        }
        let base = c * per;
        let ok = |m: &Model, s: usize| {
            let slot = &m.slots[s];
            slot.present == present && slot.confirmed != PENDING
        };
        for _ in 0..8 {
            let s = base + self.conns[c].rng.index(per);
            if ok(&self.model, s) {
                return Some(s as u32);
            }
        }
        let from = self.conns[c].rng.index(per);
        (0..per)
            .map(|i| base + (from + i) % per)
            .find(|&s| ok(&self.model, s))
            .map(|s| s as u32)
    }

    fn send_mix(&mut self, c: usize, due: Option<u64>) {
        let mix = self.cfg.mix;
        let roll = self.conns[c].rng.below(100);
        if roll >= mix.search {
            let create = roll < mix.search + mix.create;
            if let Some(slot) = self.pick_slot(c, !create) {
                if create {
                    // Same work, a slightly different file each time: the size changes.
                    let old = self.model.slots[slot as usize].size;
                    let size = (old & !0xFFF) | self.conns[c].rng.below(0x1000);
                    self.send_change(c, slot, true, size, due);
                } else {
                    let size = self.model.slots[slot as usize].size;
                    self.send_change(c, slot, false, size, due);
                }
                return;
            }
        }
        if self.model.listed == 0 {
            // Nothing to search for: a search for a name nobody shares.
            let p = self
                .model
                .add_pattern("no-such-file-anywhere".to_owned(), Vec::new());
            self.model.listed = self.model.patterns.len();
            return self.send_search(c, p, due);
        }
        let p = self.conns[c].rng.index(self.model.listed) as u32;
        self.send_search(c, p, due);
    }

    // ---- the loop's bookkeeping ----

    fn after_events(&mut self) {
        if self.stage == Stage::Register {
            self.launch_connects();
        }
        if self.stage == Stage::Mix && !self.exhausted {
            if self.mix_issued >= self.mix_limit || self.now >= self.mix_end {
                self.exhausted = true;
            } else if self.cfg.rate.is_some() {
                while let Some(&c) = self.waiting.front() {
                    let due = self.due(self.cfg.rate.unwrap_or(1.0), self.mix_issued);
                    if due > self.now || self.exhausted {
                        break;
                    }
                    self.waiting.pop_front();
                    let c = c as usize;
                    self.conns[c].queued = false;
                    self.pump(c);
                    self.flush(c);
                }
            }
        }
        if self.now >= self.last_sweep + SECOND / 4 {
            self.last_sweep = self.now;
            self.sweep();
        }
        if self.now >= self.last_progress + 2 * SECOND {
            self.last_progress = self.now;
            self.report_progress();
        }
        self.advance();
    }

    fn report_progress(&self) {
        match self.stage {
            Stage::Register => self.progress(format_args!(
                "registering: {} of {} clients joined, {} still registering",
                self.joined,
                self.conns.len(),
                self.reg_left
            )),
            Stage::Mix => {
                let p = &self.phases[1];
                let secs = (self.now - self.phase_start) as f64 / SECOND as f64;
                self.progress(format_args!(
                    "mix: {} requests, {:.0} req/s, {} errors",
                    p.requests(),
                    p.requests() as f64 / secs.max(1e-9),
                    self.errors.total()
                ))
            }
            _ => {}
        }
    }

    /// Closes connections whose reply is overdue; ends the mix when no client is left.
    fn sweep(&mut self) {
        if self.stage == Stage::Mix && self.inflight == 0 && self.alive().next().is_none() {
            self.exhausted = true;
        }
        let limit = ns(Duration::from_secs_f64(self.cfg.timeout.max(0.001)));
        for c in 0..self.conns.len() {
            let conn = &self.conns[c];
            match conn.state {
                State::Connecting if self.now - conn.since > limit => {
                    kill!(self, c, Fault::Connect, "client {c}: connect timed out");
                }
                State::Left if self.now - conn.since > limit => {
                    kill!(
                        self,
                        c,
                        Fault::Leave,
                        "client {c}: no close after CONFIRMLEAVE"
                    );
                }
                State::Open | State::Leaving => {
                    if let Some(req) = conn.inflight.front() {
                        let sent = req.sent;
                        if self.now.saturating_sub(sent) > limit {
                            let kind = req.kind;
                            kill!(
                                self,
                                c,
                                Fault::Timeout,
                                "client {c}: no reply to {kind:?} in {:.1} s",
                                self.cfg.timeout
                            );
                        }
                    }
                }
                _ => {}
            }
        }
    }

    fn alive(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.conns.len()).filter(|&c| self.conns[c].state == State::Open)
    }

    fn pump_all(&mut self) {
        for c in 0..self.conns.len() {
            if self.conns[c].state == State::Open {
                self.pump(c);
                self.flush(c);
            }
        }
    }

    fn cpu_now(&self) -> (f64, Option<f64>) {
        (
            server::cpu_seconds(None).unwrap_or(0.0),
            self.pid.and_then(|pid| server::cpu_seconds(Some(pid))),
        )
    }

    fn end_phase(&mut self, phase: usize, end: u64) {
        let (loadgen, server) = self.cpu_now();
        let p = &mut self.phases[phase];
        p.seconds = end.saturating_sub(self.phase_start) as f64 / SECOND as f64;
        p.loadgen_cpu = loadgen - self.cpu_start.0;
        p.server_cpu = server.zip(self.cpu_start.1).map(|(b, a)| b - a);
        self.phase_start = self.now;
        self.cpu_start = (loadgen, server);
    }

    /// Starts the clocks of a phase.
    fn begin_phase(&mut self) {
        self.phase_start = self.now;
        self.cpu_start = self.cpu_now();
    }

    /// Moves to the next stage when this one is done.
    fn advance(&mut self) {
        loop {
            let before = self.stage;
            match self.stage {
                Stage::Register if self.next_connect == self.conns.len() && self.reg_left == 0 => {
                    self.end_phase(0, self.now);
                    self.progress(format_args!(
                        "registered: {} clients joined, {} files ({:.0} req/s)",
                        self.joined,
                        self.joined * self.model.initial,
                        self.phases[0].rps()
                    ));
                    self.hold_end = self.now + ns(Duration::from_secs_f64(self.cfg.hold.max(0.0)));
                    self.stage = Stage::Hold;
                }
                Stage::Hold if self.now >= self.hold_end => {
                    self.mem.registered = self.read_mem();
                    self.start_mix();
                }
                Stage::Mix if self.exhausted && self.inflight == 0 => {
                    let end = self.last_reply.max(self.phase_start);
                    self.end_phase(1, end);
                    self.mem.loaded = self.read_mem();
                    self.progress(format_args!(
                        "mix: {} requests in {:.2} s, {:.0} req/s",
                        self.phases[1].requests(),
                        self.phases[1].seconds,
                        self.phases[1].rps()
                    ));
                    if self.cfg.verify_final {
                        self.start_verify();
                    } else {
                        self.start_leave();
                    }
                }
                Stage::Verify if self.unissued == 0 && self.inflight == 0 => {
                    if self.verify_round == 0 {
                        self.verify_round = 1;
                        self.start_name_round();
                    } else {
                        self.end_phase(2, self.now);
                        self.start_leave();
                    }
                }
                Stage::Leave if self.leave_left == 0 => {
                    self.end_phase(3, self.now);
                    self.mem.end = self.read_mem();
                    self.stage = Stage::Done;
                }
                _ => {}
            }
            if self.stage == before {
                return;
            }
        }
    }

    fn start_mix(&mut self) {
        self.stage = Stage::Mix;
        self.begin_phase();
        self.last_reply = self.now;
        self.mix_end = self
            .cfg
            .duration()
            .map_or(u64::MAX, |d| self.now.saturating_add(ns(d)));
        self.mix_limit = self.cfg.requests.unwrap_or(u64::MAX);
        self.exhausted = self.mix_limit == 0 || self.mix_end <= self.now;
        self.pump_all();
    }

    /// Gives the searches in `tasks` to the connected clients in turn; returns how many
    /// were given (none when no client is connected).
    fn distribute(&mut self, tasks: Vec<u32>) -> u64 {
        let alive: Vec<usize> = self.alive().collect();
        if alive.is_empty() {
            return 0;
        }
        let count = tasks.len() as u64;
        for (i, t) in tasks.into_iter().enumerate() {
            self.conns[alive[i % alive.len()]].tasks.push(t);
            self.unissued += 1;
        }
        self.pump_all();
        count
    }

    fn start_verify(&mut self) {
        self.stage = Stage::Verify;
        self.begin_phase();
        self.covered = vec![false; self.model.slots.len()];
        let tasks: Vec<u32> = (0..self.model.listed as u32).rev().collect();
        self.verify.pattern_searches = self.distribute(tasks);
    }

    /// Searches by full name for every shared file no uncapped pattern search listed.
    fn start_name_round(&mut self) {
        let mut by_name: HashMap<&str, Vec<u32>, FxBuild> = HashMap::default();
        let mut present = 0;
        for slot in 0..self.model.slots.len() as u32 {
            let owner = self.model.client_of(slot);
            if self.conns[owner].state != State::Open || !self.model.slots[slot as usize].present {
                continue;
            }
            present += 1;
            if !self.covered[slot as usize] {
                by_name.entry(self.model.name(slot)).or_default().push(slot);
            }
        }
        self.verify.files_present = present;
        let mut groups: Vec<(String, Vec<u32>)> = by_name
            .into_iter()
            .map(|(name, slots)| (name.to_owned(), slots))
            .collect();
        groups.sort();
        let tasks: Vec<u32> = groups
            .into_iter()
            .map(|(name, slots)| self.model.add_pattern(name, slots))
            .collect();
        self.progress(format_args!(
            "final check: {} of {} shared files listed by pattern searches; {} name searches",
            self.covered.iter().filter(|&&c| c).count(),
            present,
            tasks.len()
        ));
        self.verify.name_searches = self.distribute(tasks);
    }

    fn start_leave(&mut self) {
        self.stage = Stage::Leave;
        self.begin_phase();
        self.leave_left = self.alive().count();
        self.pump_all();
    }
}

/// A decimal `u64`, without going through `str`.
fn parse_num(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &d| {
        if d.is_ascii_digit() {
            n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        } else {
            None
        }
    })
}

fn memfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

fn show(line: &[u8]) -> String {
    let mut s = String::from_utf8_lossy(&line[..line.len().min(200)]).into_owned();
    if line.len() > 200 {
        s.push_str("...");
    }
    format!("{s:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers() {
        assert_eq!(
            parse_peer("127.0.0.1:20001"),
            Some(("127.0.0.1".parse().unwrap(), 20001))
        );
        assert_eq!(
            parse_peer("127.0.0.1"),
            Some(("127.0.0.1".parse().unwrap(), 1235))
        );
        assert_eq!(
            parse_peer("[::1]:5000"),
            Some(("::1".parse().unwrap(), 5000))
        );
        assert_eq!(parse_peer("::1"), Some(("::1".parse().unwrap(), 1235)));
        assert_eq!(parse_peer("host:x"), None);
        let mut v = Vec::new();
        push_num(&mut v, 0);
        v.push(b' ');
        push_num(&mut v, 18446744073709551615);
        assert_eq!(v, b"0 18446744073709551615");
        assert_eq!(parse_num(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_num(b"18446744073709551616"), None);
        assert_eq!(parse_num(b"007"), Some(7));
        for bad in [&b""[..], b"-1", b"1x", b" 1", b"+1"] {
            assert_eq!(parse_num(bad), None, "{bad:?}");
        }
    }
}
