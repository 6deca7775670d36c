//! What a gateway waits for before it publishes: the number of partitions P (written by
//! the replicas in bucket `napshare`), the partitions' buckets, and its own lease.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, kv};
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};

use super::{Deliver, Delivery, GatewayOptions};
use crate::buckets::{self, ensure_retrying};
use crate::{parse_partitions, PARTITIONS_KEY};

/// The partitions' buckets, once P is known.
pub(crate) struct Shares {
    pub partitions: u32,
    /// Bucket `shares-p{k}` at index k.
    pub stores: Vec<kv::Store>,
}

/// The gateway's view of the cluster, filled in by its background tasks.
pub(crate) struct Ready {
    shares: watch::Receiver<Option<Arc<Shares>>>,
    leased: watch::Receiver<bool>,
    members: Arc<Mutex<Option<kv::Store>>>,
}

impl Ready {
    /// Starts learning P and refreshing the lease.
    pub fn start(
        client: &async_nats::Client,
        id: &str,
        opts: &GatewayOptions,
        deliver: Deliver,
    ) -> Arc<Ready> {
        let js = jetstream::new(client.clone());
        let (shares_tx, shares) = watch::channel(None);
        let (leased_tx, leased) = watch::channel(false);
        let members = Arc::new(Mutex::new(None));
        tokio::spawn(learn_partitions(js.clone(), shares_tx));
        tokio::spawn(lease(
            js,
            id.to_owned(),
            opts.lease_ttl,
            opts.lease_every,
            leased_tx,
            members.clone(),
            deliver,
        ));
        Arc::new(Ready {
            shares,
            leased,
            members,
        })
    }

    /// P, once known.
    pub fn partitions(&self) -> Option<u32> {
        self.shares.borrow().as_ref().map(|s| s.partitions)
    }

    /// The partitions' buckets, once known.
    pub fn shares(&self) -> Option<Arc<Shares>> {
        self.shares.borrow().clone()
    }

    /// The leases bucket, once opened.
    pub fn members(&self) -> Option<kv::Store> {
        self.members.lock().ok()?.clone()
    }

    /// Waits until P is known and the lease written: a replica must never see a session
    /// of a gateway without a lease, or it would drop it at once.
    pub async fn publishable(&self) -> Arc<Shares> {
        let mut leased = self.leased.clone();
        let _ = leased.wait_for(|l| *l).await;
        let mut shares = self.shares.clone();
        loop {
            if let Some(s) = shares.borrow_and_update().clone() {
                return s;
            }
            if shares.changed().await.is_err() {
                // The task that learns P has ended (only at exit): wait for the end.
                std::future::pending::<()>().await;
            }
        }
    }
}

/// Reads key `partitions` until it holds a count, which is P for the gateway's life; then
/// now and then again, to say so if it changed. A direct get, not a watch: see `tail`.
async fn learn_partitions(js: jetstream::Context, shares: watch::Sender<Option<Arc<Shares>>>) {
    let config = ensure_retrying(&js, buckets::config_bucket()).await;
    let mut known: Option<u32> = None;
    let mut failing = false;
    loop {
        let wait = if known.is_some() { 10_000 } else { 250 };
        match config.entry(PARTITIONS_KEY).await {
            Err(e) => {
                if !failing {
                    tracing::warn!("read of the partition count: {e}; retrying");
                    failing = true;
                }
            }
            Ok(None) => failing = false,
            Ok(Some(entry)) if entry.operation != kv::Operation::Put => failing = false,
            Ok(Some(entry)) => {
                failing = false;
                match (known, parse_partitions(&entry.value)) {
                    (_, None) => tracing::warn!(
                        "key `partitions` holds {:?}, not a count: ignored",
                        String::from_utf8_lossy(&entry.value)
                    ),
                    (Some(k), Some(p)) if k == p => {}
                    (Some(k), Some(p)) => tracing::error!(
                        "the partition count changed from {k} to {p}: this gateway keeps {k}; \
                         restart every gateway and replica with one count"
                    ),
                    (None, Some(p)) => {
                        let mut stores = Vec::with_capacity(p as usize);
                        for k in 0..p {
                            stores.push(ensure_retrying(&js, buckets::shares_bucket(k)).await);
                        }
                        known = Some(p);
                        tracing::info!("the cluster has {p} partitions");
                        shares.send_replace(Some(Arc::new(Shares {
                            partitions: p,
                            stores,
                        })));
                    }
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(wait)).await;
    }
}

/// Refreshes the lease every `every`. After the lease could not be refreshed for `ttl`
/// it has expired and the replicas have dropped this gateway's sessions: the host is told
/// to share them again.
async fn lease(
    js: jetstream::Context,
    id: String,
    ttl: Duration,
    every: Duration,
    leased: watch::Sender<bool>,
    slot: Arc<Mutex<Option<kv::Store>>>,
    deliver: Deliver,
) {
    let members = ensure_retrying(&js, buckets::members_bucket(ttl)).await;
    if let Ok(mut slot) = slot.lock() {
        *slot = Some(members.clone());
    }
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last_ok: Option<Instant> = None;
    let mut failing = false;
    loop {
        tick.tick().await;
        match members.put(&id, "alive".into()).await {
            Ok(_) => {
                if failing {
                    tracing::info!("lease refreshed again");
                    failing = false;
                    if last_ok.is_some_and(|t| t.elapsed() >= ttl) {
                        tracing::warn!("the lease had expired: sharing every session again");
                        deliver(Delivery::Reconnected);
                    }
                }
                last_ok = Some(Instant::now());
                leased.send_replace(true);
            }
            Err(e) => {
                if !failing {
                    tracing::warn!("lease refresh failed: {e}");
                    failing = true;
                }
            }
        }
    }
}
