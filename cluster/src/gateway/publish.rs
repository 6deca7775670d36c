//! Publishing share lists to KV without losing or reordering any.
//!
//! The command loop only drops each change into its shard's latest-value map, so it never
//! waits on NATS and a burst of changes to one session costs one put. Each shard has one
//! sequential publisher, and a session always maps to the same shard: a put and a later
//! delete of one key are never reordered, while the shards publish side by side.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::kv;
use napshare_core::cluster::{partition_of, session_key, ShareList};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::setup::{Ready, Shares};
use super::ShareUpdate;

/// The longest wait between two tries of one change. A change is tried until it is
/// written or a newer change of its session replaces it: a stream whose server died has
/// no leader for up to 9 s (raft's election), and a list given up then would be missing
/// from the index until the session changed again.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Sessions whose key may be in KV: session -> (key, partition). What a clean exit
/// deletes.
pub(crate) type Live = Arc<Mutex<BTreeMap<u64, (String, u32)>>>;

pub(crate) struct Publishers {
    shards: Vec<Arc<Shard>>,
    live: Live,
    tasks: Vec<JoinHandle<()>>,
}

/// One sequential publisher's waiting changes: the latest per session.
#[derive(Default)]
struct Shard {
    pending: Mutex<BTreeMap<u64, Option<ShareList>>>,
    wake: Notify,
}

impl Shard {
    fn take(&self) -> Option<(u64, Option<ShareList>)> {
        self.pending.lock().ok()?.pop_first()
    }

    fn has(&self, session: u64) -> bool {
        self.pending.lock().is_ok_and(|p| p.contains_key(&session))
    }
}

impl Publishers {
    /// Starts `n` publishers; they publish nothing until `ready` says so.
    pub fn start(id: &str, n: usize, ready: Arc<Ready>) -> Publishers {
        let live: Live = Arc::default();
        let shards: Vec<Arc<Shard>> = (0..n.max(1)).map(|_| Arc::default()).collect();
        let tasks = shards
            .iter()
            .map(|shard| {
                tokio::spawn(publish(
                    id.to_owned(),
                    shard.clone(),
                    ready.clone(),
                    live.clone(),
                ))
            })
            .collect();
        Publishers {
            shards,
            live,
            tasks,
        }
    }

    /// Queues `update`, replacing what its session had waiting.
    pub fn queue(&self, update: ShareUpdate) {
        let shard = &self.shards[(update.session % self.shards.len() as u64) as usize];
        if let Ok(mut pending) = shard.pending.lock() {
            pending.insert(update.session, update.list);
        }
        shard.wake.notify_one();
    }

    /// Stops publishing and returns the keys that may be in KV.
    pub fn stop(self) -> Vec<(String, u32)> {
        for task in &self.tasks {
            task.abort();
        }
        let live = self.live.lock().map(|l| l.values().cloned().collect());
        live.unwrap_or_default()
    }
}

/// One shard's publisher.
async fn publish(id: String, shard: Arc<Shard>, ready: Arc<Ready>, live: Live) {
    let shares = ready.publishable().await;
    loop {
        let Some((session, list)) = shard.take() else {
            shard.wake.notified().await;
            continue;
        };
        publish_one(&id, &shard, &shares, &live, session, list).await;
    }
}

async fn publish_one(
    id: &str,
    shard: &Shard,
    shares: &Shares,
    live: &Live,
    session: u64,
    list: Option<ShareList>,
) {
    let key = session_key(id, session);
    let k = partition_of(&key, shares.partitions);
    let store = &shares.stores[k as usize];
    let value = match &list {
        None => None,
        Some(list) => {
            let mut buf = Vec::new();
            if let Err(e) = list.encode(&mut buf) {
                tracing::error!("share list of session {session} not published: {e}");
                return;
            }
            Some(bytes::Bytes::from(buf))
        }
    };
    match &value {
        Some(_) => {
            if let Ok(mut live) = live.lock() {
                live.insert(session, (key.clone(), k));
            }
        }
        // Nothing of it was ever published: no delete marker to leave in the bucket.
        None if !live.lock().is_ok_and(|l| l.contains_key(&session)) => return,
        None => {}
    }
    let mut attempt: u32 = 0;
    loop {
        let result = match &value {
            Some(value) => put(store, &key, value.clone()).await,
            None => store.delete(&key).await.map_err(|e| e.to_string()),
        };
        match result {
            Ok(()) => {
                if attempt > 0 {
                    tracing::info!("KV {key}: written after {} tries", attempt + 1);
                }
                if value.is_none() {
                    if let Ok(mut live) = live.lock() {
                        live.remove(&session);
                    }
                }
                return;
            }
            Err(e) => {
                if attempt.is_multiple_of(10) {
                    tracing::warn!("KV {key}: {e}; trying again");
                }
                let backoff = Duration::from_millis(200u64 << attempt.min(4)).min(MAX_BACKOFF);
                tokio::time::sleep(backoff).await;
                attempt += 1;
                if shard.has(session) {
                    return; // a newer change of this session replaces this one
                }
            }
        }
    }
}

async fn put(store: &kv::Store, key: &str, value: bytes::Bytes) -> Result<(), String> {
    store
        .put(key, value)
        .await
        .map(drop)
        .map_err(|e| e.to_string())
}
