//! Creating the cluster's KV buckets, by whichever process comes first.
//!
//! Gateways and replicas all ensure the buckets they use, so none has to start first.
//! Two processes may create one bucket at once: JetStream accepts a second create with
//! the same settings, and when the settings differ (one fell back to one replica) the
//! loser opens the bucket the winner made.

use std::time::Duration;

use async_nats::jetstream::{kv, Context};

use crate::{Error, CONFIG_BUCKET, MEMBERS_BUCKET};

/// Replicas asked for each bucket: survives one NATS server lost out of three or five.
const REPLICAS: usize = 3;

/// Opens bucket `config.bucket`, creating it when absent with [`REPLICAS`] replicas, or
/// one when the server is a single node (a dev setup).
pub(crate) async fn ensure(js: &Context, mut config: kv::Config) -> Result<kv::Store, Error> {
    if let Ok(store) = js.get_key_value(&config.bucket).await {
        return Ok(store);
    }
    config.num_replicas = REPLICAS;
    let err = match js.create_key_value(config.clone()).await {
        Ok(store) => return Ok(store),
        Err(err) => err,
    };
    let text = format!("{err:?}");
    let err = if single_node(&text) {
        tracing::warn!(
            "KV bucket {}: the NATS server is not clustered ({err}); created with 1 \
             replica, so its data is lost with that server (fine for a one-node dev setup)",
            config.bucket
        );
        config.num_replicas = 1;
        match js.create_key_value(config.clone()).await {
            Ok(store) => return Ok(store),
            Err(err) => err,
        }
    } else {
        err
    };
    // Another process may have created it meanwhile, with other settings.
    js.get_key_value(&config.bucket)
        .await
        .map_err(|_| Error::Bucket {
            bucket: config.bucket.clone(),
            message: format!("{err} ({err:?})"),
        })
}

/// The server's refusal of a replicated stream on one node. nats-server 2.9 says
/// "replicas > 1 not supported in non-clustered mode" (10074); a cluster with too few
/// peers says "insufficient resources" (10023).
fn single_node(error: &str) -> bool {
    let error = error.to_ascii_lowercase();
    [
        "non-clustered",
        "not clustered",
        "insufficient resources",
        "10074",
        "10023",
    ]
    .iter()
    .any(|s| error.contains(s))
}

/// The settings bucket (holds P).
pub(crate) fn config_bucket() -> kv::Config {
    kv::Config {
        bucket: CONFIG_BUCKET.into(),
        history: 1,
        ..Default::default()
    }
}

/// The leases bucket: a key lives `ttl` after its last put.
pub(crate) fn members_bucket(ttl: Duration) -> kv::Config {
    kv::Config {
        bucket: MEMBERS_BUCKET.into(),
        history: 1,
        max_age: ttl,
        ..Default::default()
    }
}

/// Partition `k`'s share lists: one value per session, only its latest kept.
pub(crate) fn shares_bucket(k: u32) -> kv::Config {
    kv::Config {
        bucket: crate::shares_bucket(k),
        history: 1,
        ..Default::default()
    }
}

/// Retries `ensure` until it succeeds: at start NATS may not be up yet.
pub(crate) async fn ensure_retrying(js: &Context, config: kv::Config) -> kv::Store {
    let mut delay = Duration::from_millis(100);
    loop {
        match ensure(js, config.clone()).await {
            Ok(store) => return store,
            Err(e) => {
                tracing::warn!("{e}; retrying in {delay:?}");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn single_node_refusals_are_recognised() {
        assert!(super::single_node(
            "replicas > 1 not supported in non-clustered mode (10074)"
        ));
        assert!(super::single_node("insufficient resources"));
        assert!(!super::single_node("stream name already in use"));
    }
}
