//! One search scattered to every partition and gathered by a deadline.

use std::time::Duration;

use async_nats::{Client, Request};
use bytes::Bytes;
use napshare_core::cluster::{merge, Answer, Merged, SearchRequest};
use napshare_core::server::SearchToken;
use tokio::time::Instant;

use super::{Deliver, Delivery};
use crate::search_subject;

/// What a search needs from the gateway.
pub(crate) struct Ask {
    pub client: Client,
    pub partitions: u32,
    pub deadline: Duration,
    pub deliver: Deliver,
}

impl Ask {
    /// Asks every partition at once, waits at most the deadline, merges what came in
    /// partition order and delivers it. A partition without an answer makes the result
    /// partial; nothing here waits past the deadline.
    pub async fn run(self, token: SearchToken, pattern: String, limit: usize) {
        let request = SearchRequest {
            pattern,
            limit: u32::try_from(limit).unwrap_or(u32::MAX),
        };
        let mut payload = Vec::new();
        let merged = match request.encode(&mut payload) {
            Ok(()) => {
                let payload = Bytes::from(payload);
                let until = Instant::now() + self.deadline;
                let asks =
                    (0..self.partitions).map(|k| ask(&self.client, k, payload.clone(), until));
                let answers = futures_util::future::join_all(asks).await;
                let missing: Vec<usize> = (answers.iter().enumerate())
                    .filter_map(|(k, a)| a.is_none().then_some(k))
                    .collect();
                if !missing.is_empty() {
                    tracing::warn!(
                        "partial search result: partitions {missing:?} did not answer within {:?}",
                        self.deadline
                    );
                }
                merge(answers, limit)
            }
            Err(e) => {
                tracing::warn!("search {:?} not sent: {e}", request.pattern);
                Merged::default()
            }
        };
        (self.deliver)(Delivery::Answered { token, merged });
    }
}

/// Partition `k`'s answer, or `None` when it gave none in time or a malformed one.
async fn ask(client: &Client, k: u32, payload: Bytes, until: Instant) -> Option<Answer> {
    let left = until
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(1));
    let request = Request::new().payload(payload).timeout(Some(left));
    let reply = tokio::time::timeout_at(until, client.send_request(search_subject(k), request));
    match reply.await {
        Err(_) => {
            tracing::debug!("partition {k}: no answer by the deadline");
            None
        }
        Ok(Err(e)) => {
            tracing::debug!("partition {k}: {e}");
            None
        }
        Ok(Ok(message)) => match Answer::decode(&message.payload) {
            Ok(answer) => Some(answer),
            Err(e) => {
                tracing::warn!("partition {k}: malformed answer ({e}): counted as none");
                None
            }
        },
    }
}
