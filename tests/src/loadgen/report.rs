//! What a run measured, as text for people or JSON for scripts.

use std::fmt::Write;
use std::io;

use serde::{Serialize, Serializer};
use serde_json::ser::Formatter;

use super::hist::Histogram;
use super::server::Mem;
use super::Mix;

/// Request kinds, in the order of [`Phase::hists`].
pub const KINDS: [&str; 5] = ["JOIN", "CREATEFILE", "DELETEFILE", "SEARCH", "LEAVE"];

/// Errors by cause.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Errors {
    /// A connection could not be opened.
    pub connect: u64,
    /// The server closed or reset a connection it should have kept open.
    pub closed: u64,
    /// A reply did not come in time.
    pub timeout: u64,
    /// A reply was not the one the request asks for (wrong confirmation, unexpected line).
    pub wrong_reply: u64,
    /// A `FILE` line named a file that was not shared, did not match, or had the wrong size.
    pub bad_result: u64,
    /// A search left out a file it had to list.
    pub missing: u64,
    /// A search listed more files than the cap.
    pub over_cap: u64,
    /// `LEAVE` was not answered with `CONFIRMLEAVE` and a close.
    pub leave: u64,
}

impl Errors {
    pub fn total(&self) -> u64 {
        self.fields().iter().map(|f| f.1).sum()
    }

    fn fields(&self) -> [(&'static str, u64); 8] {
        [
            ("connect", self.connect),
            ("closed", self.closed),
            ("timeout", self.timeout),
            ("wrong_reply", self.wrong_reply),
            ("bad_result", self.bad_result),
            ("missing", self.missing),
            ("over_cap", self.over_cap),
            ("leave", self.leave),
        ]
    }
}

/// One phase of a run: registration, the measured mix, the final check, leaving.
#[derive(Debug, Clone)]
pub struct Phase {
    pub name: &'static str,
    pub seconds: f64,
    /// Latency in nanoseconds of each completed request, by kind ([`KINDS`]).
    pub hists: Vec<Histogram>,
    /// `FILE` lines over all searches.
    pub search_lines: u64,
    /// Searches whose reply reached the result cap.
    pub capped: u64,
    /// Searches answered with `NORESULT`.
    pub noresult: u64,
    /// CPU seconds the load generator used in the phase.
    pub loadgen_cpu: f64,
    /// CPU seconds the server used in the phase, when its pid is known.
    pub server_cpu: Option<f64>,
}

impl Phase {
    pub fn new(name: &'static str) -> Self {
        Self {
            name,
            seconds: 0.0,
            hists: (0..KINDS.len()).map(|_| Histogram::new()).collect(),
            search_lines: 0,
            capped: 0,
            noresult: 0,
            loadgen_cpu: 0.0,
            server_cpu: None,
        }
    }

    /// Completed requests.
    pub fn requests(&self) -> u64 {
        self.hists.iter().map(Histogram::count).sum()
    }

    pub fn count(&self, kind: &str) -> u64 {
        KINDS
            .iter()
            .position(|k| *k == kind)
            .map_or(0, |i| self.hists[i].count())
    }

    pub fn rps(&self) -> f64 {
        if self.seconds > 0.0 {
            self.requests() as f64 / self.seconds
        } else {
            0.0
        }
    }

    /// Every request's latency.
    pub fn all(&self) -> Histogram {
        let mut all = Histogram::new();
        for h in &self.hists {
            all.add(h);
        }
        all
    }
}

/// The server's memory at the points of a run where it was read.
#[derive(Debug, Clone, Default)]
pub struct MemReport {
    pub pid: u32,
    /// Before the first connection.
    pub start: Option<Mem>,
    /// Every client joined and registered (after --hold).
    pub registered: Option<Mem>,
    /// After the measured phase, every client still connected.
    pub loaded: Option<Mem>,
    /// At the end, after every client left.
    pub end: Option<Mem>,
}

impl MemReport {
    /// Growth of the resident set from start to registered, in bytes.
    pub fn registered_growth(&self) -> Option<i64> {
        Some((self.registered?.rss_kib as i64 - self.start?.rss_kib as i64) * 1024)
    }

    /// The highest peak seen.
    pub fn hwm_kib(&self) -> Option<u64> {
        [self.start, self.registered, self.loaded, self.end]
            .iter()
            .flatten()
            .map(|m| m.hwm_kib)
            .max()
    }
}

/// What the final check found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VerifyReport {
    pub pattern_searches: u64,
    pub name_searches: u64,
    /// Files shared at the end by clients still connected.
    pub files_present: u64,
    /// Of those, files a complete (uncapped) search listed.
    pub files_checked: u64,
    /// Files no uncapped search could check (the cap cut every search that matched them).
    pub unverifiable: u64,
}

/// Everything a run measured.
#[derive(Debug, Clone)]
pub struct Report {
    pub target: String,
    pub clients: usize,
    pub files: usize,
    pub spare: usize,
    pub pipeline: u32,
    pub seed: u64,
    pub rate: Option<f64>,
    pub mix: Mix,
    pub patterns: usize,
    /// Percentages of broad and loose patterns.
    pub broad: u64,
    pub loose: u64,
    pub max_results: usize,
    /// Clients that joined.
    pub joined: usize,
    /// Clients that left cleanly at the end.
    pub left: usize,
    pub phases: Vec<Phase>,
    pub verify: Option<VerifyReport>,
    pub mem: Option<MemReport>,
    pub errors: Errors,
    /// The first few errors, described.
    pub examples: Vec<String>,
}

fn us(ns: u64) -> String {
    let us = ns as f64 / 1000.0;
    if us < 10.0 {
        format!("{us:.1}us")
    } else if us < 10_000.0 {
        format!("{us:.0}us")
    } else {
        format!("{:.1}ms", us / 1000.0)
    }
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

impl Report {
    pub fn phase(&self, name: &str) -> Option<&Phase> {
        self.phases.iter().find(|p| p.name == name)
    }

    fn mode(&self) -> String {
        let mut mode = if self.pipeline == 1 {
            "lockstep".to_owned()
        } else {
            format!("pipelined x{}", self.pipeline)
        };
        match self.rate {
            Some(rate) => {
                let _ = write!(mode, ", {rate} req/s");
            }
            None => mode.push_str(", flat out"),
        }
        mode
    }

    /// The report for people.
    pub fn human(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(o, "loadgen against {}", self.target);
        let _ = writeln!(
            o,
            "  {} clients x {} files (+{} spare names), {}, mix search {}% create {}% \
             delete {}%, {} patterns ({}% broad, {}% loose), cap {}, seed {}",
            self.clients,
            self.files,
            self.spare,
            self.mode(),
            self.mix.search,
            self.mix.create,
            self.mix.delete,
            self.patterns,
            self.broad,
            self.loose,
            self.max_results,
            self.seed
        );
        for p in &self.phases {
            let _ = writeln!(
                o,
                "{}: {} requests in {:.2} s = {:.0} req/s",
                p.name,
                p.requests(),
                p.seconds,
                p.rps()
            );
            if p.seconds > 0.0 {
                let share =
                    |cpu: f64| format!("{cpu:.2} s ({:.0}% of a core)", 100.0 * cpu / p.seconds);
                let _ = writeln!(
                    o,
                    "  cpu: loadgen {}, server {}",
                    share(p.loadgen_cpu),
                    p.server_cpu.map_or("?".to_owned(), share)
                );
            }
            if p.requests() == 0 {
                continue;
            }
            let _ = writeln!(
                o,
                "  {:<11} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9}",
                "request", "count", "mean", "p50", "p99", "p99.9", "max"
            );
            let all = p.all();
            let rows = KINDS
                .iter()
                .zip(&p.hists)
                .filter(|(_, h)| h.count() > 0)
                .chain(std::iter::once((&"all", &all)));
            for (kind, h) in rows {
                let _ = writeln!(
                    o,
                    "  {:<11} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9}",
                    kind,
                    h.count(),
                    us(h.mean()),
                    us(h.quantile(0.5)),
                    us(h.quantile(0.99)),
                    us(h.quantile(0.999)),
                    us(h.max())
                );
            }
            let searches = p.count("SEARCH");
            if searches > 0 {
                let _ = writeln!(
                    o,
                    "  FILE lines per SEARCH {:.2}; {:.1}% NORESULT; {:.2}% reached the cap",
                    p.search_lines as f64 / searches as f64,
                    100.0 * p.noresult as f64 / searches as f64,
                    100.0 * p.capped as f64 / searches as f64
                );
            }
        }
        if let Some(v) = &self.verify {
            let _ = writeln!(
                o,
                "final check: {} pattern and {} name searches; {} files shared, {} checked \
                 present, {} could not be checked (cap)",
                v.pattern_searches,
                v.name_searches,
                v.files_present,
                v.files_checked,
                v.unverifiable
            );
        }
        let _ = writeln!(
            o,
            "clients: {} joined, {} left with CONFIRMLEAVE",
            self.joined, self.left
        );
        if let Some(m) = &self.mem {
            let show = |m: Option<Mem>| m.map_or("?".to_owned(), |m| mib(m.rss_kib));
            let _ = writeln!(
                o,
                "server memory (pid {}): VmRSS {} at start, {} registered, {} after the \
                 mix, {} at the end; peak VmHWM {}",
                m.pid,
                show(m.start),
                show(m.registered),
                show(m.loaded),
                show(m.end),
                m.hwm_kib().map_or("?".to_owned(), mib)
            );
            if let Some(growth) = m.registered_growth() {
                let _ = write!(
                    o,
                    "  growth to registered: {} bytes = {:.0} bytes per client",
                    growth,
                    growth as f64 / self.joined.max(1) as f64
                );
                let files = self.joined * self.files;
                if files > 0 {
                    let _ = write!(
                        o,
                        " = {:.0} bytes per file (clients included)",
                        growth as f64 / files as f64
                    );
                }
                o.push('\n');
            }
        }
        let _ = write!(o, "errors: {}", self.errors.total());
        let causes: Vec<String> = self
            .errors
            .fields()
            .iter()
            .filter(|f| f.1 > 0)
            .map(|(name, n)| format!("{name} {n}"))
            .collect();
        if !causes.is_empty() {
            let _ = write!(o, " ({})", causes.join(", "));
        }
        o.push('\n');
        for e in &self.examples {
            let _ = writeln!(o, "  {e}");
        }
        o
    }

    /// The report as one JSON object, on one line.
    pub fn json(&self) -> String {
        let phases = self.phases.iter().map(|p| (p.name, JsonPhase::of(p)));
        let errors = self.errors.fields().into_iter();
        let report = JsonReport {
            target: &self.target,
            clients: self.clients,
            files: self.files,
            spare: self.spare,
            pipeline: self.pipeline,
            seed: self.seed,
            rate: self.rate,
            request_mix: JsonMix {
                search: self.mix.search,
                create: self.mix.create,
                delete: self.mix.delete,
            },
            patterns: self.patterns,
            broad: self.broad,
            loose: self.loose,
            max_results: self.max_results,
            joined: self.joined,
            left: self.left,
            phases: Ordered(phases.collect()),
            verify: self.verify.as_ref(),
            server_memory: self.mem.as_ref().map(|m| JsonMemReport {
                pid: m.pid,
                start: m.start.map(JsonMem::of),
                registered: m.registered.map(JsonMem::of),
                loaded: m.loaded.map(JsonMem::of),
                end: m.end.map(JsonMem::of),
                hwm_kib: m.hwm_kib(),
                bytes_per_client: m
                    .registered_growth()
                    .map(|g| fixed(g as f64 / self.joined.max(1) as f64, 1)),
            }),
            errors: Ordered(errors.chain([("total", self.errors.total())]).collect()),
            error_examples: &self.examples,
        };
        let mut out = Vec::new();
        let mut json = serde_json::Serializer::with_formatter(&mut out, Spaced);
        report.serialize(&mut json).expect("a report serializes");
        String::from_utf8(out).expect("serde_json writes UTF-8")
    }
}

/// `x` rounded to `places` decimals, as the report has always printed it.
fn fixed(x: f64, places: usize) -> f64 {
    format!("{x:.places$}")
        .parse()
        .expect("a formatted float parses")
}

/// Pairs written as one JSON object in their order (a `serde_json::Map` would sort them).
struct Ordered<K, V>(Vec<(K, V)>);

impl<K: Serialize, V: Serialize> Serialize for Ordered<K, V> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(k, v)| (k, v)))
    }
}

/// Compact JSON with a space after every `:` and `,`: the report's shape, which
/// `tests/scripts/load.sh` and `tests/tests/loadgen_smoke.rs` read as text.
struct Spaced;

impl Formatter for Spaced {
    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            w.write_all(b", ")
        }
    }

    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }

    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.begin_object_key(w, first)
    }
}

#[derive(Serialize)]
struct JsonReport<'a> {
    target: &'a str,
    clients: usize,
    files: usize,
    spare: usize,
    pipeline: u32,
    seed: u64,
    rate: Option<f64>,
    request_mix: JsonMix,
    patterns: usize,
    broad: u64,
    loose: u64,
    max_results: usize,
    joined: usize,
    left: usize,
    phases: Ordered<&'static str, JsonPhase>,
    verify: Option<&'a VerifyReport>,
    server_memory: Option<JsonMemReport>,
    errors: Ordered<&'static str, u64>,
    error_examples: &'a [String],
}

#[derive(Serialize)]
struct JsonMix {
    search: u64,
    create: u64,
    delete: u64,
}

#[derive(Serialize)]
struct JsonPhase {
    seconds: f64,
    requests: u64,
    rps: f64,
    search_lines: u64,
    capped: u64,
    noresult: u64,
    loadgen_cpu_s: f64,
    server_cpu_s: Option<f64>,
    /// By request kind (those that completed any), then `all`.
    latency: Ordered<&'static str, JsonHist>,
}

impl JsonPhase {
    fn of(p: &Phase) -> Self {
        let kinds = KINDS.iter().zip(&p.hists).filter(|(_, h)| h.count() > 0);
        let mut latency: Vec<_> = kinds.map(|(k, h)| (*k, JsonHist::of(h))).collect();
        latency.push(("all", JsonHist::of(&p.all())));
        Self {
            seconds: fixed(p.seconds, 4),
            requests: p.requests(),
            rps: fixed(p.rps(), 1),
            search_lines: p.search_lines,
            capped: p.capped,
            noresult: p.noresult,
            loadgen_cpu_s: fixed(p.loadgen_cpu, 2),
            server_cpu_s: p.server_cpu.map(|c| fixed(c, 2)),
            latency: Ordered(latency),
        }
    }
}

/// A latency histogram in microseconds.
#[derive(Serialize)]
struct JsonHist {
    count: u64,
    mean_us: f64,
    p50_us: f64,
    p90_us: f64,
    p99_us: f64,
    p999_us: f64,
    max_us: f64,
}

impl JsonHist {
    fn of(h: &Histogram) -> Self {
        let us = |ns: u64| fixed(ns as f64 / 1000.0, 1);
        Self {
            count: h.count(),
            mean_us: us(h.mean()),
            p50_us: us(h.quantile(0.5)),
            p90_us: us(h.quantile(0.9)),
            p99_us: us(h.quantile(0.99)),
            p999_us: us(h.quantile(0.999)),
            max_us: us(h.max()),
        }
    }
}

#[derive(Serialize)]
struct JsonMemReport {
    pid: u32,
    start: Option<JsonMem>,
    registered: Option<JsonMem>,
    loaded: Option<JsonMem>,
    end: Option<JsonMem>,
    hwm_kib: Option<u64>,
    bytes_per_client: Option<f64>,
}

#[derive(Serialize)]
struct JsonMem {
    rss_kib: u64,
    hwm_kib: u64,
}

impl JsonMem {
    fn of(m: Mem) -> Self {
        Self {
            rss_kib: m.rss_kib,
            hwm_kib: m.hwm_kib,
        }
    }
}
