//! The gateway's side of the cluster: a napshare server's share lists go to KV, its
//! searches are scattered to every partition and the answers gathered and merged.
//!
//! [`Gateway::start`] spawns one OS thread with a current-thread tokio runtime. One
//! thread is enough: the gateway only moves bytes between the host and NATS and merges a
//! capped list per search, work far below one core, and a single-threaded runtime leaves
//! the other core to the host's own driver thread (a multi-thread runtime would add a
//! worker thread per core competing with it). The host sends commands through a bounded
//! channel ([`Gateway::search`], [`Gateway::share`]) and hears back through its
//! `deliver` callback, called on the gateway's thread; it never sees tokio.

mod cleanup;
mod publish;
mod search;
mod setup;

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use napshare_core::cluster::Merged;
pub use napshare_core::server::ShareUpdate;
use napshare_core::server::{SearchRequest, SearchToken};
use tokio::sync::{mpsc, oneshot, Semaphore};

use crate::connect::{connect, Link};
use crate::Error;

/// What the gateway hands the host, on the gateway's thread.
#[derive(Debug)]
pub enum Delivery {
    /// The answer to [`Gateway::search`] with this token.
    Answered { token: SearchToken, merged: Merged },
    /// NATS is back after an outage (or the lease was lost a while): the replicas may have
    /// dropped this gateway's sessions, so the host should share every session again.
    Reconnected,
}

/// The gateway's queue is full: the host answers the search empty at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the cluster gateway is busy")]
pub struct Busy;

/// How a gateway joins the cluster.
#[derive(Debug, Clone)]
pub struct GatewayOptions {
    /// NATS servers, any of which will do (`nats://host:port`).
    pub urls: Vec<String>,
    /// How long the lease lives without a refresh: the members bucket's `max_age`.
    pub lease_ttl: Duration,
    /// How often the lease is refreshed; a few times within `lease_ttl`.
    pub lease_every: Duration,
    /// How long a search waits for the partitions' answers.
    pub deadline: Duration,
    /// Commands queued at most, and searches in flight at most.
    pub capacity: usize,
    /// Share lists published at once (each key stays in order: it always goes to the
    /// same sequential publisher).
    pub publishers: usize,
}

impl Default for GatewayOptions {
    fn default() -> Self {
        Self {
            urls: Vec::new(),
            lease_ttl: Duration::from_secs(6),
            lease_every: Duration::from_secs(2),
            deadline: Duration::from_millis(100),
            capacity: 1024,
            publishers: 4,
        }
    }
}

/// The host's handle on its gateway thread. Dropping it stops the thread after a clean
/// exit (lease and sessions deleted from KV, best effort, within about a second).
pub struct Gateway {
    id: String,
    commands: mpsc::Sender<Command>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// What the host asks of the gateway thread.
enum Command {
    Search {
        token: SearchToken,
        pattern: String,
        limit: usize,
    },
    Share(ShareUpdate),
}

/// The host's callback, shared by the gateway's tasks.
pub(crate) type Deliver = Arc<dyn Fn(Delivery) -> bool + Send + Sync>;

impl Gateway {
    /// Starts the gateway thread and connects to NATS in the background (an unreachable
    /// server is not an error: the gateway keeps trying, and answers searches empty
    /// meanwhile). `deliver` returns whether the host still listens (the gateway carries on
    /// either way; the host stops it by dropping it); it must not block.
    pub fn start(
        opts: GatewayOptions,
        deliver: impl Fn(Delivery) -> bool + Send + Sync + 'static,
    ) -> Result<Gateway, Error> {
        if opts.urls.is_empty() {
            return Err(Error::NoUrls);
        }
        let id = new_id();
        let (commands, rx) = mpsc::channel(opts.capacity.max(1));
        let (stop, stopped) = oneshot::channel();
        let (started_tx, started) = std::sync::mpsc::channel();
        let deliver: Deliver = Arc::new(deliver);
        let thread_id = id.clone();
        let thread = std::thread::Builder::new()
            .name("napshare-cluster".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        let _ = started_tx.send(Err(Error::Runtime(e)));
                        return;
                    }
                };
                runtime.block_on(run(thread_id, opts, deliver, rx, stopped, started_tx));
            })?;
        match started.recv() {
            Ok(Ok(())) => Ok(Gateway {
                id,
                commands,
                stop: Some(stop),
                thread: Some(thread),
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => {
                let _ = thread.join();
                Err(Error::Connect("the gateway thread ended at start".into()))
            }
        }
    }

    /// This gateway's id: the first part of its sessions' keys and its lease key.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Queues a search; its answer comes as [`Delivery::Answered`] within about the
    /// deadline. `Err(Busy)`: the queue is full, answer it empty now.
    pub fn search(&self, req: &SearchRequest) -> Result<(), Busy> {
        self.commands
            .try_send(Command::Search {
                token: req.token,
                pattern: req.pattern.clone(),
                limit: req.limit,
            })
            .map_err(|_| Busy)
    }

    /// Queues a share-list change. Never lost: when the queue is full this waits for room
    /// (the gateway thread drains it promptly into its latest-value map). Not to be called
    /// from inside a tokio runtime (the host has none).
    pub fn share(&self, update: ShareUpdate) {
        let update = match self.commands.try_send(Command::Share(update)) {
            Ok(()) => return,
            Err(mpsc::error::TrySendError::Full(command)) => command,
            Err(mpsc::error::TrySendError::Closed(_)) => {
                tracing::warn!("cluster gateway stopped: a share-list change is dropped");
                return;
            }
        };
        if self.commands.blocking_send(update).is_err() {
            tracing::warn!("cluster gateway stopped: a share-list change is dropped");
        }
    }

    /// Stops the gateway after a clean exit; the same as dropping it.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway").field("id", &self.id).finish()
    }
}

/// A fresh gateway id, `g` and 16 hex digits: unique across restarts and machines (the
/// clock, the process id and the host name hashed), never holding a `.`.
fn new_id() -> String {
    let mut h = blake3::Hasher::new();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    h.update(&now.as_nanos().to_le_bytes());
    h.update(&std::process::id().to_le_bytes());
    if let Ok(host) = std::fs::read("/proc/sys/kernel/hostname") {
        h.update(&host);
    }
    // Two gateways in one process within one clock tick still differ.
    static STARTED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    h.update(&n.to_le_bytes());
    let digest = h.finalize();
    let mut id = String::from("g");
    for b in &digest.as_bytes()[..8] {
        id.push_str(&format!("{b:02x}"));
    }
    id
}

/// The gateway thread's whole life.
async fn run(
    id: String,
    opts: GatewayOptions,
    deliver: Deliver,
    mut commands: mpsc::Receiver<Command>,
    mut stopped: oneshot::Receiver<()>,
    started: std::sync::mpsc::Sender<Result<(), Error>>,
) {
    let link_deliver = deliver.clone();
    let client = connect(
        &opts.urls,
        &format!("napshare gateway {id}"),
        move |link| match link {
            Link::Lost => tracing::warn!(
                "NATS unreachable: searches are answered from nothing until it returns"
            ),
            Link::Back => {
                tracing::info!("NATS reachable again: sharing every session again");
                link_deliver(Delivery::Reconnected);
            }
        },
    )
    .await;
    let client = match client {
        Ok(client) => client,
        Err(e) => {
            let _ = started.send(Err(e));
            return;
        }
    };
    let _ = started.send(Ok(()));

    let ready = setup::Ready::start(&client, &id, &opts, deliver.clone());
    let publish = publish::Publishers::start(&id, opts.publishers, ready.clone());
    let searches = Arc::new(Semaphore::new(opts.capacity.max(1)));
    let mut unknown_logged = false;
    loop {
        let command = tokio::select! {
            command = commands.recv() => command,
            _ = &mut stopped => None,
        };
        match command {
            None => break,
            Some(Command::Share(update)) => publish.queue(update),
            Some(Command::Search {
                token,
                pattern,
                limit,
            }) => {
                let Some(partitions) = ready.partitions() else {
                    if !unknown_logged {
                        tracing::warn!(
                            "the number of partitions is not known yet (no index replica \
                             has written it): searches are answered from nothing"
                        );
                        unknown_logged = true;
                    }
                    deliver(Delivery::Answered {
                        token,
                        merged: Merged::default(),
                    });
                    continue;
                };
                let Ok(permit) = searches.clone().try_acquire_owned() else {
                    tracing::debug!("too many searches in flight: answered from nothing");
                    deliver(Delivery::Answered {
                        token,
                        merged: Merged::default(),
                    });
                    continue;
                };
                let ask = search::Ask {
                    client: client.clone(),
                    partitions,
                    deadline: opts.deadline,
                    deliver: deliver.clone(),
                };
                tokio::spawn(async move {
                    ask.run(token, pattern, limit).await;
                    drop(permit);
                });
            }
        }
    }
    cleanup::clean_exit(&client, &id, &ready, publish).await;
}
