//! Numbers, peers and lines as bytes: what requests are built from and replies parsed
//! with, without going through `str` where it matters.

use std::net::IpAddr;

/// Appends `n` in decimal, with no `format!`: every request the mix sends has one.
pub(super) fn push_num(out: &mut Vec<u8>, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// Parses `ip`, `ip:port`, `[v6]:port` (port 1235 when absent, as napshare lists it).
pub(super) fn parse_peer(peer: &str) -> Option<(IpAddr, u16)> {
    if let Some(rest) = peer.strip_prefix('[') {
        let (ip, port) = rest.split_once("]:")?;
        return Some((ip.parse().ok()?, port.parse().ok()?));
    }
    if let Ok(ip) = peer.parse::<IpAddr>() {
        return Some((ip, 1235));
    }
    let (ip, port) = peer.rsplit_once(':')?;
    Some((ip.parse().ok()?, port.parse().ok()?))
}

/// An IPv4-mapped IPv6 address as the IPv4 one, so the forms a server may list compare equal.
pub(super) fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// A decimal `u64`, without going through `str`.
pub(super) fn parse_num(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &d| {
        if d.is_ascii_digit() {
            n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        } else {
            None
        }
    })
}

/// Where `needle` first occurs in `hay`.
pub(super) fn memfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A reply line for an error message, cut at 200 bytes.
pub(super) fn show(line: &[u8]) -> String {
    let mut s = String::from_utf8_lossy(&line[..line.len().min(200)]).into_owned();
    if line.len() > 200 {
        s.push_str("...");
    }
    format!("{s:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers() {
        assert_eq!(
            parse_peer("127.0.0.1:20001"),
            Some(("127.0.0.1".parse().unwrap(), 20001))
        );
        assert_eq!(
            parse_peer("127.0.0.1"),
            Some(("127.0.0.1".parse().unwrap(), 1235))
        );
        assert_eq!(
            parse_peer("[::1]:5000"),
            Some(("::1".parse().unwrap(), 5000))
        );
        assert_eq!(parse_peer("::1"), Some(("::1".parse().unwrap(), 1235)));
        assert_eq!(parse_peer("host:x"), None);
        let mut v = Vec::new();
        push_num(&mut v, 0);
        v.push(b' ');
        push_num(&mut v, 18446744073709551615);
        assert_eq!(v, b"0 18446744073709551615");
        assert_eq!(parse_num(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_num(b"18446744073709551616"), None);
        assert_eq!(parse_num(b"007"), Some(7));
        for bad in [&b""[..], b"-1", b"1x", b" 1", b"+1"] {
            assert_eq!(parse_num(bad), None, "{bad:?}");
        }
    }
}
