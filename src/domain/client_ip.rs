//! The client's address for rate limiting: the socket peer, or — only when the peer
//! is a configured trusted proxy — the nearest untrusted address in `X-Forwarded-For`.
//! Anything else would let a client choose its own rate-limit key.

use std::net::IpAddr;

use ipnet::IpNet;

/// Walks `X-Forwarded-For` from the right (the hop closest to us), skipping trusted
/// proxies; stops at the first untrusted or unparsable entry. IPv4-mapped IPv6
/// addresses (a dual-stack listener's peers) count as the IPv4 address they carry.
pub fn client_ip(peer: IpAddr, forwarded_for: Option<&str>, trusted: &[IpNet]) -> IpAddr {
    let peer = peer.to_canonical();
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let Some(header) = forwarded_for else {
        return peer;
    };
    let mut client = peer;
    for hop in header.rsplit(',') {
        match hop.trim().parse::<IpAddr>().map(|ip| ip.to_canonical()) {
            Ok(ip) => {
                client = ip;
                if !is_trusted(&ip) {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    #[test]
    fn forwarded_for_counts_only_behind_a_trusted_proxy() {
        let trusted = nets(&["10.0.0.0/8"]);
        let peer: IpAddr = "10.0.0.5".parse().unwrap();
        let outsider: IpAddr = "203.0.113.9".parse().unwrap();
        assert_eq!(
            client_ip(peer, Some("198.51.100.7, 10.0.0.9"), &trusted).to_string(),
            "198.51.100.7"
        );
        assert_eq!(
            client_ip(outsider, Some("198.51.100.7"), &trusted),
            outsider
        );
        assert_eq!(client_ip(peer, None, &trusted), peer);
        // A client-supplied left-most entry cannot hide the real hop.
        assert_eq!(
            client_ip(peer, Some("1.2.3.4, 198.51.100.7"), &trusted).to_string(),
            "198.51.100.7"
        );
        assert_eq!(client_ip(peer, Some("garbage"), &trusted), peer);
    }
}
