//! Who is the client? The TCP peer, unless the peer is a trusted proxy (an ingress controller
//! listed in `trusted_proxies`), in which case `X-Forwarded-For` is walked from the right,
//! skipping trusted hops, and the first untrusted address is the client. Headers from an
//! untrusted peer are ignored: anyone can send them, and the audit trail records this address.

use std::net::{IpAddr, SocketAddr};

use http::HeaderMap;
use ipnet::IpNet;

/// The client as the platform sees it, after proxy handling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientInfo {
    pub address: IpAddr,
    /// Whether the client reached us over HTTPS (directly, or through a trusted proxy that says so).
    pub https: bool,
}

fn is_trusted(ip: IpAddr, trusted: &[IpNet]) -> bool {
    // An IPv4 peer may show up as an IPv4-mapped IPv6 address on a dual-stack socket.
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    };
    trusted.iter().any(|net| net.contains(&ip))
}

fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    // Accept "1.2.3.4", "1.2.3.4:5678", "2001:db8::1" and "[2001:db8::1]:443".
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip()))
}

pub fn client_info(
    peer: SocketAddr,
    peer_over_tls: bool,
    headers: &HeaderMap,
    trusted: &[IpNet],
) -> ClientInfo {
    let direct = ClientInfo {
        address: peer.ip(),
        https: peer_over_tls,
    };
    if trusted.is_empty() || !is_trusted(peer.ip(), trusted) {
        return direct;
    }
    let mut address = peer.ip();
    // Several X-Forwarded-For headers are one comma-separated list, in order.
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect();
    for hop in hops.iter().rev() {
        match parse_hop(hop) {
            Some(ip) if is_trusted(ip, trusted) => address = ip,
            Some(ip) => {
                address = ip;
                break;
            }
            // A garbled hop: stop at the last address we could trust.
            None => break,
        }
    }
    let https = match headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
    {
        Some(proto) => proto
            .split(',')
            .next()
            .is_some_and(|p| p.trim().eq_ignore_ascii_case("https")),
        None => peer_over_tls,
    };
    ClientInfo { address, https }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use proptest::prelude::*;

    fn headers(xff: &[&str], proto: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in xff {
            h.append("x-forwarded-for", HeaderValue::from_str(v).unwrap());
        }
        if let Some(p) = proto {
            h.insert("x-forwarded-proto", HeaderValue::from_str(p).unwrap());
        }
        h
    }

    fn nets(s: &[&str]) -> Vec<IpNet> {
        s.iter().map(|n| n.parse().unwrap()).collect()
    }

    #[test]
    fn table() {
        let ingress: SocketAddr = "10.1.2.3:40000".parse().unwrap();
        let stranger: SocketAddr = "203.0.113.9:40000".parse().unwrap();
        let trusted = nets(&["10.0.0.0/8"]);
        let cases: Vec<(SocketAddr, HeaderMap, Vec<IpNet>, &str, bool)> = vec![
            // No proxies configured: headers ignored.
            (
                ingress,
                headers(&["198.51.100.1"], Some("https")),
                vec![],
                "10.1.2.3",
                false,
            ),
            // Untrusted peer: headers ignored (spoofing attempt).
            (
                stranger,
                headers(&["198.51.100.1"], Some("https")),
                trusted.clone(),
                "203.0.113.9",
                false,
            ),
            // Trusted peer: rightmost untrusted hop.
            (
                ingress,
                headers(&["6.6.6.6, 198.51.100.1"], Some("https")),
                trusted.clone(),
                "198.51.100.1",
                true,
            ),
            // Several trusted hops are skipped.
            (
                ingress,
                headers(&["198.51.100.1, 10.9.9.9"], None),
                trusted.clone(),
                "198.51.100.1",
                false,
            ),
            // Headers split across lines are one list.
            (
                ingress,
                headers(&["6.6.6.6", "198.51.100.2"], Some("http")),
                trusted.clone(),
                "198.51.100.2",
                false,
            ),
            // Ports and IPv6 brackets.
            (
                ingress,
                headers(&["[2001:db8::1]:443"], None),
                trusted.clone(),
                "2001:db8::1",
                false,
            ),
            (
                ingress,
                headers(&["198.51.100.3:1234"], None),
                trusted.clone(),
                "198.51.100.3",
                false,
            ),
            // Garbage stops the walk at the last trusted address.
            (
                ingress,
                headers(&["198.51.100.1, garbage"], None),
                trusted.clone(),
                "10.1.2.3",
                false,
            ),
            // No header from a trusted peer: the peer itself.
            (
                ingress,
                HeaderMap::new(),
                trusted.clone(),
                "10.1.2.3",
                false,
            ),
        ];
        for (peer, h, trusted, expected, https) in cases {
            let info = client_info(peer, false, &h, &trusted);
            assert_eq!(info.address.to_string(), expected, "{h:?}");
            assert_eq!(info.https, https, "{h:?}");
        }
    }

    proptest! {
        // Whatever an untrusted client sends, it cannot choose the recorded address.
        #[test]
        fn untrusted_peers_cannot_spoof(xff in "[ -~]{0,200}", proto in "[ -~]{0,20}") {
            let peer: SocketAddr = "203.0.113.9:1".parse().unwrap();
            let mut h = HeaderMap::new();
            if let Ok(v) = HeaderValue::from_str(&xff) { h.insert("x-forwarded-for", v); }
            if let Ok(v) = HeaderValue::from_str(&proto) { h.insert("x-forwarded-proto", v); }
            let info = client_info(peer, true, &h, &nets(&["10.0.0.0/8"]));
            prop_assert_eq!(info.address, peer.ip());
            prop_assert!(info.https);
        }

        // From a trusted proxy, any header yields either the peer or an address in the header.
        #[test]
        fn trusted_peers_yield_a_listed_address(xff in "[0-9a-f.:, \\[\\]]{0,120}") {
            let peer: SocketAddr = "10.0.0.1:1".parse().unwrap();
            let mut h = HeaderMap::new();
            if let Ok(v) = HeaderValue::from_str(&xff) { h.insert("x-forwarded-for", v); }
            let info = client_info(peer, false, &h, &nets(&["10.0.0.0/8"]));
            let listed = xff.split(',').filter_map(parse_hop).any(|ip| ip == info.address);
            prop_assert!(info.address == peer.ip() || listed);
        }
    }
}
