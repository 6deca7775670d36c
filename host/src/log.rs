//! Structured logs on standard error, filtered by `RUST_LOG` (default `info`): connections
//! opened and closed with their reason, limits hit; bad lines at `debug`. Nothing is logged
//! per request at the default level.

use std::io::IsTerminal;

use tracing::{debug, info, warn};

use napshare_core::server::ServerEvent;

/// Installs the log writer; call once at start.
pub fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .try_init();
}

/// Logs a connection accepted (it has `conn` until it closes).
pub fn log_opened(conn: napshare_core::ConnId, peer: std::net::SocketAddr) {
    info!(conn = conn.0, %peer, "connection opened");
}

/// Logs a connection closed as it came because the server is full.
pub fn log_no_room(peer: std::net::SocketAddr) {
    warn!(%peer, "connection refused: too many connections");
}

/// Logs what happened on the index server.
pub fn log_server_event(event: &ServerEvent) {
    match event {
        ServerEvent::Joined { conn, peer } => info!(conn = conn.0, %peer, "client joined"),
        ServerEvent::Left {
            conn,
            files,
            reason,
        } => info!(conn = conn.0, files, ?reason, "client left"),
        ServerEvent::BadLine { conn, error } => debug!(conn = conn.0, %error, "bad line"),
        ServerEvent::Refused { conn, limit } => warn!(conn = conn.0, limit, "limit reached"),
    }
}
