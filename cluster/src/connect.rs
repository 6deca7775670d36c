//! One way to connect for gateways and replicas: keep trying at start, reconnect forever,
//! and report losing and regaining the connection.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_nats::{Client, ConnectOptions, Event};

use crate::Error;

/// What the connection's owner hears about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Link {
    Lost,
    /// Connected again after a loss (not the first connect).
    Back,
}

/// Connects to `urls` in the background: the client returned queues what is sent until
/// a server answers, then reconnects without end. `on_link` runs on the runtime's
/// threads; it must not block.
pub(crate) async fn connect(
    urls: &[String],
    name: &str,
    on_link: impl Fn(Link) + Send + Sync + 'static,
) -> Result<Client, Error> {
    if urls.is_empty() {
        return Err(Error::NoUrls);
    }
    let on_link = Arc::new(on_link);
    // The first `Connected` is not a reconnect: only one after a `Disconnected` is.
    let lost = Arc::new(AtomicBool::new(false));
    ConnectOptions::new()
        .name(name)
        .retry_on_initial_connect()
        .max_reconnects(None)
        .event_callback(move |event| {
            let on_link = on_link.clone();
            let lost = lost.clone();
            async move {
                match event {
                    Event::Disconnected => {
                        lost.store(true, Ordering::Relaxed);
                        on_link(Link::Lost);
                    }
                    Event::Connected => {
                        if lost.swap(false, Ordering::Relaxed) {
                            on_link(Link::Back);
                        }
                    }
                    Event::SlowConsumer(sid) => {
                        tracing::warn!(
                            "NATS: slow consumer on subscription {sid}: messages dropped"
                        )
                    }
                    // Repeated at every failed reconnect attempt; the loss was logged once.
                    Event::ClientError(e) => tracing::debug!("NATS: {e}"),
                    other => tracing::info!("NATS: {other}"),
                }
            }
        })
        .connect(urls)
        .await
        .map_err(|e| Error::Connect(e.to_string()))
}
