//! An index replica: one partition's share lists, rebuilt from its KV bucket, answering
//! that partition's searches in its queue group (`napshare index --partition K/P`).
//!
//! One task owns the [`Replica`]: KV changes, search requests and the lease check are
//! branches of one `select!` loop, so no lock is taken and a search sees every change
//! applied before it. The runtime has two workers so that the NATS connection's I/O
//! goes on while that task answers a search.

use std::collections::BTreeSet;
use std::time::Duration;

use async_nats::jetstream::kv::{self, CreateErrorKind, Operation};
use async_nats::jetstream::{self};
use async_nats::{Client, Subscriber};
use futures_util::StreamExt;
use napshare_core::cluster::{gateway_of, Replica};
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};

use crate::buckets::{self, ensure_retrying};
use crate::connect::{connect, Link};
use crate::tail::{Change, Tail};
use crate::{parse_partitions, search_group, search_subject, shares_bucket, Error, PARTITIONS_KEY};

/// Which partition a replica holds, and where NATS is.
#[derive(Debug, Clone)]
pub struct ReplicaOptions {
    pub urls: Vec<String>,
    /// K, below `partitions`.
    pub partition: u32,
    /// P, the same in every gateway and replica of the cluster.
    pub partitions: u32,
    /// The members bucket's `max_age` if this replica creates it (the gateways' lease).
    pub lease_ttl: Duration,
    /// How often expired gateways' sessions are dropped.
    pub expire_every: Duration,
}

impl ReplicaOptions {
    pub fn new(urls: Vec<String>, partition: u32, partitions: u32) -> Self {
        Self {
            urls,
            partition,
            partitions,
            lease_ttl: Duration::from_secs(6),
            expire_every: Duration::from_secs(1),
        }
    }
}

/// Runs a replica until SIGTERM or SIGINT (then `Ok`). Blocks; builds its own runtime.
pub fn run_replica(opts: ReplicaOptions) -> Result<(), Error> {
    run_until(opts, stop_signal(), |_| {})
}

/// What a replica had when its replay from KV was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loaded {
    pub sessions: usize,
    pub files: usize,
    /// From the start of the replay to the first search it could answer.
    pub took: Duration,
}

/// A replica on a thread of this process, stopped on drop (tests, embedding).
#[derive(Debug)]
pub struct ReplicaThread {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Result<(), Error>>>,
    loaded: std::sync::mpsc::Receiver<Loaded>,
}

/// Starts a replica on its own thread; unlike [`run_replica`] it ignores signals.
pub fn spawn_replica(opts: ReplicaOptions) -> Result<ReplicaThread, Error> {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (loaded_tx, loaded) = std::sync::mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("napshare-index".into())
        .spawn(move || {
            let stopped = async move {
                let _ = stopped.await;
            };
            run_until(opts, stopped, move |l| {
                let _ = loaded_tx.send(l);
            })
        })?;
    Ok(ReplicaThread {
        stop: Some(stop),
        thread: Some(thread),
        loaded,
    })
}

impl ReplicaThread {
    /// Waits for the replay from KV to be done, at most `timeout`.
    pub fn wait_loaded(&self, timeout: Duration) -> Option<Loaded> {
        self.loaded.recv_timeout(timeout).ok()
    }

    /// Whether the replica has ended by itself (an error at start).
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| t.is_finished())
    }

    /// Stops the replica (its connection closes, as if the process had died) and returns
    /// how it ended.
    pub fn stop(mut self) -> Result<(), Error> {
        self.stop_and_join()
    }

    fn stop_and_join(&mut self) -> Result<(), Error> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.thread.take().map(|t| t.join()) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(Error::Runtime(std::io::Error::other(
                "replica thread panicked",
            ))),
            None => Ok(()),
        }
    }
}

impl Drop for ReplicaThread {
    fn drop(&mut self) {
        let _ = self.stop_and_join();
    }
}

/// Runs a replica until `stop` completes.
fn run_until(
    opts: ReplicaOptions,
    stop: impl std::future::Future<Output = ()>,
    on_loaded: impl Fn(Loaded) + Send + 'static,
) -> Result<(), Error> {
    if opts.urls.is_empty() {
        return Err(Error::NoUrls);
    }
    if opts.partition >= opts.partitions {
        return Err(Error::BadPartition {
            partition: opts.partition,
            partitions: opts.partitions,
        });
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("napshare-index")
        .enable_all()
        .build()?;
    let result = runtime.block_on(async {
        tokio::select! {
            result = serve(&opts, Box::new(on_loaded)) => result,
            () = stop => {
                tracing::info!("partition {}/{}: stopping", opts.partition, opts.partitions);
                Ok(())
            }
        }
    });
    runtime.shutdown_timeout(Duration::from_millis(200));
    result
}

async fn stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        },
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

async fn serve(opts: &ReplicaOptions, on_loaded: Box<dyn Fn(Loaded) + Send>) -> Result<(), Error> {
    let (k, p) = (opts.partition, opts.partitions);
    let client = connect(
        &opts.urls,
        &format!("napshare index {k}/{p}"),
        move |link| match link {
            Link::Lost => {
                tracing::warn!("NATS unreachable: partition {k} answers no search until it returns")
            }
            Link::Back => tracing::info!("NATS reachable again"),
        },
    )
    .await?;
    let js = jetstream::new(client.clone());
    let config = ensure_retrying(&js, buckets::config_bucket()).await;
    write_partitions(&config, p).await?;
    let members = ensure_retrying(&js, buckets::members_bucket(opts.lease_ttl)).await;
    let mut shares = None;
    for i in 0..p {
        let store = ensure_retrying(&js, buckets::shares_bucket(i)).await;
        if i == k {
            shares = Some(store);
        }
    }
    let shares = shares.expect("k < p was checked");
    let tail = loop {
        match Tail::open(&js, &shares_bucket(k)).await {
            Ok(tail) => break tail,
            Err(e) => {
                tracing::warn!("partition {k}: {e}; trying again");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    };
    Partition {
        client,
        k,
        p,
        shares,
        members,
        replica: Replica::new(),
        recent: BTreeSet::new(),
        id: replica_id(),
        writable_since: None,
        lease_ttl: opts.lease_ttl,
        on_loaded,
    }
    .run(tail, opts.expire_every)
    .await
}

/// Writes P, unless the cluster has it already; a different P is an error.
async fn write_partitions(config: &kv::Store, p: u32) -> Result<(), Error> {
    let mut tries = 0;
    loop {
        let err = match config.create(PARTITIONS_KEY, p.to_string().into()).await {
            Ok(_) => {
                tracing::info!("wrote the partition count: {p}");
                return Ok(());
            }
            Err(e) => e,
        };
        if err.kind() == CreateErrorKind::AlreadyExists {
            let existing = config
                .get(PARTITIONS_KEY)
                .await
                .map_err(|e| Error::Kv(e.to_string()))?
                .unwrap_or_default();
            return match parse_partitions(&existing) {
                Some(q) if q == p => Ok(()),
                _ => Err(Error::PartitionsMismatch {
                    existing: String::from_utf8_lossy(&existing).into_owned(),
                    wanted: p,
                }),
            };
        }
        tries += 1;
        if tries == 10 {
            return Err(Error::Kv(format!("write of `{PARTITIONS_KEY}`: {err}")));
        }
        tracing::warn!("write of `{PARTITIONS_KEY}`: {err}; trying again");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// One partition's replica and what it talks to.
struct Partition {
    client: Client,
    k: u32,
    p: u32,
    shares: kv::Store,
    members: kv::Store,
    replica: Replica,
    /// Gateways that put a session since the current lease check started: a gateway
    /// that started after the check has a lease the check may not have seen.
    recent: BTreeSet<String>,
    /// This replica's own key in the members bucket, written at every lease check.
    id: String,
    /// Since when this replica's own lease writes have all succeeded. A gateway whose
    /// lease is missing is taken for dead only once the bucket has taken writes for a
    /// whole lease: while it could not (a NATS server lost, its raft election running),
    /// no gateway could refresh its lease either, and expiring them all then would drop
    /// every file of the network.
    writable_since: Option<Instant>,
    lease_ttl: Duration,
    on_loaded: Box<dyn Fn(Loaded) + Send>,
}

/// What the reader of the partition's bucket sends the replica's task.
enum Read {
    Change(Change),
    /// Every change stored when the replica started has been sent.
    CaughtUp,
}

/// How often a caught-up reader looks for new changes.
const POLL: Duration = Duration::from_millis(20);

impl Partition {
    async fn run(mut self, tail: Tail, expire_every: Duration) -> Result<(), Error> {
        let started = Instant::now();
        let (changes_tx, mut changes) = mpsc::channel(4096);
        tokio::spawn(read(tail, self.k, changes_tx));
        let mut requests = None;
        let mut tick = tokio::time::interval(expire_every);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let (alive_tx, mut alive_rx) = mpsc::channel(1);
        let mut checking = false;
        let mut out = Vec::new();
        loop {
            tokio::select! {
                read = changes.recv() => match read {
                    Some(Read::Change(change)) => self.apply(&change),
                    Some(Read::CaughtUp) => requests = Some(self.ready(started).await?),
                    None => return Err(Error::Kv("the partition's reader stopped".into())),
                },
                Some(request) = next_request(&mut requests) => {
                    out.clear();
                    if let Err(e) = self.replica.answer(&request.payload, &mut out) {
                        tracing::warn!("partition {}: malformed search request: {e}", self.k);
                        continue;
                    }
                    if let Some(reply) = request.reply {
                        let answer = bytes::Bytes::copy_from_slice(&out);
                        if let Err(e) = self.client.publish(reply, answer).await {
                            tracing::warn!("partition {}: reply not sent: {e}", self.k);
                        }
                    }
                },
                _ = tick.tick(), if !checking => {
                    checking = true;
                    self.recent.clear();
                    let check = LeaseCheck {
                        members: self.members.clone(),
                        own: self.id.clone(),
                        gateways: self.replica.gateways(),
                    };
                    tokio::spawn(check.run(alive_tx.clone()));
                },
                Some(checked) = alive_rx.recv() => {
                    checking = false;
                    self.leases_checked(checked);
                },
            }
        }
    }

    fn apply(&mut self, change: &Change) {
        match change.operation {
            Operation::Put => match self.replica.put(&change.key, &change.value) {
                Ok(_) => {
                    if let Some(g) = gateway_of(&change.key) {
                        if !self.recent.contains(g) {
                            self.recent.insert(g.to_owned());
                        }
                    }
                }
                Err(e) => tracing::warn!("partition {}: KV {}: {e}: skipped", self.k, change.key),
            },
            Operation::Delete | Operation::Purge => {
                self.replica.delete(&change.key);
            }
        }
    }

    /// The replay is done: answer searches from now on.
    async fn ready(&self, started: Instant) -> Result<Subscriber, Error> {
        let subject = search_subject(self.k);
        let requests = self
            .client
            .queue_subscribe(subject.clone(), search_group(self.k))
            .await
            .map_err(|e| Error::Subscribe {
                subject,
                message: e.to_string(),
            })?;
        let loaded = Loaded {
            sessions: self.replica.sessions(),
            files: self.replica.files(),
            took: started.elapsed(),
        };
        // Tests and the rebuild benchmark read this line.
        let line = format!(
            "partition {}/{} ready: {} sessions, {} files in {} ms",
            self.k,
            self.p,
            loaded.sessions,
            loaded.files,
            loaded.took.as_millis()
        );
        tracing::info!("{line}");
        println!("{line}");
        (self.on_loaded)(loaded);
        Ok(requests)
    }

    /// Acts on a lease check: drops the sessions of gateways without a lease, here and
    /// in KV, once the bucket has been writable for a whole lease.
    fn leases_checked(&mut self, checked: Checked) {
        let Checked { own_written, alive } = checked;
        if !own_written {
            if self.writable_since.take().is_some() {
                tracing::warn!(
                    "partition {}: the leases bucket takes no writes: no gateway expires \
                     until it does",
                    self.k
                );
            }
            return;
        }
        let since = *self.writable_since.get_or_insert_with(Instant::now);
        let Some(mut alive) = alive else {
            return;
        };
        if since.elapsed() < self.lease_ttl {
            return;
        }
        alive.extend(self.recent.iter().cloned());
        let gone = self.replica.expire(&alive);
        if gone.is_empty() {
            return;
        }
        tracing::info!(
            "partition {}: {} sessions of gateways whose lease expired dropped",
            self.k,
            gone.len()
        );
        let shares = self.shares.clone();
        tokio::spawn(async move {
            for key in gone {
                if let Err(e) = shares.purge(&key).await {
                    tracing::debug!("KV purge {key}: {e}");
                }
            }
        });
    }
}

/// Reads the partition's bucket from its start, then every change as it comes.
async fn read(mut tail: Tail, k: u32, to: mpsc::Sender<Read>) {
    let mut caught_up = false;
    loop {
        match tail.next().await {
            Ok(Some(change)) => {
                if to.send(Read::Change(change)).await.is_err() {
                    return;
                }
            }
            Ok(None) => {
                if !caught_up {
                    caught_up = true;
                    if to.send(Read::CaughtUp).await.is_err() {
                        return;
                    }
                }
                tokio::time::sleep(POLL).await;
            }
            Err(e) => {
                tracing::warn!("partition {k}: {e}; trying again");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

/// One look at the leases of the gateways a replica holds sessions of.
struct LeaseCheck {
    members: kv::Store,
    own: String,
    gateways: Vec<String>,
}

/// What a lease check found.
struct Checked {
    /// Whether the replica's own lease write succeeded.
    own_written: bool,
    /// The gateways with a lease; `None` when they could not be looked up.
    alive: Option<BTreeSet<String>>,
}

impl LeaseCheck {
    /// Writes the replica's own key, then looks up each gateway's key (direct gets: no
    /// consumer, see `tail`).
    async fn run(self, to: mpsc::Sender<Checked>) {
        let limit = Duration::from_secs(5);
        let own = self.members.put(&self.own, "index".into());
        let own_written = matches!(tokio::time::timeout(limit, own).await, Ok(Ok(_)));
        let lookups = self.gateways.iter().map(|g| self.members.entry(g.as_str()));
        let found = tokio::time::timeout(limit, futures_util::future::join_all(lookups)).await;
        let alive = found.ok().and_then(|found| {
            let mut alive = BTreeSet::new();
            for (gateway, entry) in self.gateways.iter().zip(found) {
                if entry.ok()?.is_some_and(|e| e.operation == Operation::Put) {
                    alive.insert(gateway.clone());
                }
            }
            Some(alive)
        });
        if alive.is_none() {
            tracing::warn!(
                "the gateways' leases could not be looked up: nothing expired this round"
            );
        }
        let _ = to.send(Checked { own_written, alive }).await;
    }
}

/// A replica's key in the members bucket: `r` and 16 hex digits (gateways' start with
/// `g`).
fn replica_id() -> String {
    let mut h = blake3::Hasher::new();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    h.update(&now.as_nanos().to_le_bytes());
    h.update(&std::process::id().to_le_bytes());
    let mut id = String::from("r");
    for b in &h.finalize().as_bytes()[..8] {
        id.push_str(&format!("{b:02x}"));
    }
    id
}

/// The next search request, once subscribed.
async fn next_request(requests: &mut Option<Subscriber>) -> Option<async_nats::Message> {
    match requests {
        Some(requests) => requests.next().await,
        None => std::future::pending().await,
    }
}
