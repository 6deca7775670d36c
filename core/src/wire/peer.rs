//! Peer addresses as they appear in `JOIN` and `FILE` lines.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

/// The index server's classic port.
pub const CLASSIC_SERVER_PORT: u16 = 1234;
/// The classic port of every client's file server.
pub const CLASSIC_PEER_PORT: u16 = 1235;

/// Where a peer's file server listens.
///
/// Written as a bare `ip` when the port is the classic 1235 (so classic clients read it as
/// before) and as `ip:port` (`[v6]:port`) otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PeerAddr(pub SocketAddr);

impl PeerAddr {
    /// The address a peer's file server has, given the IP the server saw on its socket and
    /// the text the client sent in `JOIN`.
    pub fn from_join(seen_ip: IpAddr, join_text: &str) -> Self {
        let port = join_port(join_text).unwrap_or(CLASSIC_PEER_PORT);
        Self(SocketAddr::new(seen_ip.to_canonical(), port))
    }
}

/// The port in a `JOIN` text of the form `host:port`, `ip:port` or `[v6]:port`.
///
/// A bare IPv6 address such as `::1` has no port; neither has free text like a user name.
pub fn join_port(text: &str) -> Option<u16> {
    let text = text.trim();
    // Port 0 is no port at all: nothing listens there.
    if let Ok(sa) = SocketAddr::from_str(text) {
        return Some(sa.port()).filter(|p| *p != 0);
    }
    let (host, port) = text.rsplit_once(':')?;
    if host.is_empty() || host.contains(':') {
        return None;
    }
    port.parse().ok().filter(|p| *p != 0)
}

impl PeerAddr {
    /// Appends the address as [`fmt::Display`] writes it, without the formatting
    /// machinery for the common IPv4 case (a search reply writes one per result).
    pub fn write_text(&self, out: &mut Vec<u8>) {
        let IpAddr::V4(ip) = self.0.ip() else {
            use std::io::Write as _;
            // Writing to a Vec cannot fail.
            let _ = write!(out, "{self}");
            return;
        };
        for (i, octet) in ip.octets().into_iter().enumerate() {
            if i > 0 {
                out.push(b'.');
            }
            super::message::put_u64(out, u64::from(octet));
        }
        if self.0.port() != CLASSIC_PEER_PORT {
            out.push(b':');
            super::message::put_u64(out, u64::from(self.0.port()));
        }
    }
}

impl fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.port() == CLASSIC_PEER_PORT {
            write!(f, "{}", self.0.ip())
        } else {
            write!(f, "{}", self.0)
        }
    }
}

/// The peer text is neither `ip` nor `ip:port`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not an IP address or ip:port")]
pub struct BadPeerAddr;

impl FromStr for PeerAddr {
    type Err = BadPeerAddr;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Ok(sa) = SocketAddr::from_str(s) {
            return Ok(Self(sa));
        }
        IpAddr::from_str(s)
            .map(|ip| Self(SocketAddr::new(ip, CLASSIC_PEER_PORT)))
            .map_err(|_| BadPeerAddr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_text_ports() {
        assert_eq!(join_port("127.0.0.1"), None);
        assert_eq!(join_port("127.0.0.1:4000"), Some(4000));
        assert_eq!(join_port("alice"), None);
        assert_eq!(join_port("my-host:4000"), Some(4000));
        assert_eq!(join_port("::1"), None);
        assert_eq!(join_port("[::1]:4000"), Some(4000));
        assert_eq!(join_port("x:99999"), None);
        assert_eq!(join_port("10.0.0.1:0"), None);
    }

    #[test]
    fn display_round_trips_and_hides_the_classic_port() {
        for text in ["10.0.0.1", "10.0.0.1:4000", "::1", "[::1]:4000"] {
            let p: PeerAddr = text.parse().unwrap();
            assert_eq!(p.to_string(), text);
        }
        for text in [
            "0.0.0.0",
            "255.255.255.255:65535",
            "10.20.0.3:1",
            "1.2.3.4:1235",
        ] {
            let p: PeerAddr = text.parse().unwrap();
            let mut out = Vec::new();
            p.write_text(&mut out);
            assert_eq!(out, p.to_string().as_bytes());
        }
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(PeerAddr::from_join(mapped, "x").to_string(), "10.0.0.1");
    }
}
