//! A gateway's clean exit: its lease and its sessions leave KV at once, instead of when
//! the lease expires.

use std::time::Duration;

use async_nats::Client;
use futures_util::future::join_all;

use super::publish::Publishers;
use super::setup::Ready;

/// How long a clean exit may take before the rest is left to the lease's expiry.
const LIMIT: Duration = Duration::from_millis(900);

pub(crate) async fn clean_exit(client: &Client, id: &str, ready: &Ready, publish: Publishers) {
    let live = publish.stop();
    let work = async {
        if let Some(shares) = ready.shares() {
            let deletes = live
                .iter()
                .map(|(key, k)| shares.stores[*k as usize].delete(key));
            for (r, (key, _)) in join_all(deletes).await.into_iter().zip(&live) {
                if let Err(e) = r {
                    tracing::debug!("clean exit: KV delete {key}: {e}");
                }
            }
        }
        // The lease last: until it is gone, no replica drops the sessions by itself.
        if let Some(members) = ready.members() {
            if let Err(e) = members.delete(id).await {
                tracing::debug!("clean exit: lease delete: {e}");
            }
        }
        let _ = client.flush().await;
    };
    if tokio::time::timeout(LIMIT, work).await.is_err() {
        tracing::warn!("clean exit cut short: the lease's expiry drops the rest");
    }
}
