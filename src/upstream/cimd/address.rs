//! Which addresses a metadata document may be fetched from (public unicast only),
//! enforced in the resolver the fetcher connects through.

use super::*;

/// What kind of address an IP is, for the SSRF rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AddressClass {
    Public,
    Loopback,
    /// RFC 1918 and unique-local IPv6: reachable only with `allow_private`.
    Private,
    /// Special-use (RFC 6890 and the IANA registries): never fetched.
    Special(&'static str),
}

pub(super) use AddressClass::{Loopback, Private, Public, Special};

pub(super) const V4_RANGES: &[([u8; 4], u32, AddressClass)] = &[
    ([127, 0, 0, 0], 8, Loopback),
    ([10, 0, 0, 0], 8, Private),
    ([172, 16, 0, 0], 12, Private),
    ([192, 168, 0, 0], 16, Private),
    ([0, 0, 0, 0], 8, Special("unspecified")),
    ([100, 64, 0, 0], 10, Special("shared (CGNAT)")),
    ([169, 254, 0, 0], 16, Special("link-local")),
    ([192, 0, 0, 0], 24, Special("IETF protocol")),
    ([192, 0, 2, 0], 24, Special("documentation")),
    ([198, 51, 100, 0], 24, Special("documentation")),
    ([203, 0, 113, 0], 24, Special("documentation")),
    ([192, 88, 99, 0], 24, Special("6to4 relay")),
    ([198, 18, 0, 0], 15, Special("benchmarking")),
    ([224, 0, 0, 0], 4, Special("multicast")),
    ([255, 255, 255, 255], 32, Special("broadcast")),
    ([240, 0, 0, 0], 4, Special("reserved")),
];

pub(super) const V6_RANGES: &[(u128, u32, AddressClass)] = &[
    // AWS's IPv6 instance-metadata address lies inside fc00::/7.
    (
        0xfd00_0ec2_0000_0000_0000_0000_0000_0254,
        128,
        Special("instance metadata"),
    ),
    (0xfc00 << 112, 7, Private),
    (0x0064_ff9b_0001 << 80, 48, Special("local-use NAT64")),
    (0x0100 << 112, 64, Special("discard-only")),
    (0x2001_0db8 << 96, 32, Special("documentation")),
    (0x3fff << 112, 20, Special("documentation")),
    (0x2001 << 112, 23, Special("IETF protocol")),
    (0x2002 << 112, 16, Special("6to4")),
    (0xfe80 << 112, 10, Special("link-local")),
    (0xfec0 << 112, 10, Special("site-local")),
    (0xff00 << 112, 8, Special("multicast")),
];

pub(super) fn classify(ip: IpAddr) -> AddressClass {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

pub(super) fn classify_v4(ip: Ipv4Addr) -> AddressClass {
    let n = u32::from(ip);
    V4_RANGES
        .iter()
        .find(|(net, len, _)| n & prefix_mask32(*len) == u32::from_be_bytes(*net))
        .map_or(Public, |(_, _, class)| *class)
}

pub(super) fn classify_v6(ip: Ipv6Addr) -> AddressClass {
    let n = u128::from(ip);
    if let Some(v4) = ip.to_ipv4_mapped() {
        return classify_v4(v4);
    }
    // NAT64 (64:ff9b::/96) reaches the embedded IPv4 address: judge that one.
    if n >> 32 == 0x0064_ff9b_0000_0000_0000_0000 {
        return classify_v4(Ipv4Addr::from(n as u32));
    }
    if ip.is_unspecified() {
        return Special("unspecified");
    }
    if ip.is_loopback() {
        return Loopback;
    }
    if let Some((_, _, class)) = V6_RANGES
        .iter()
        .find(|(net, len, _)| n & prefix_mask128(*len) == *net)
    {
        return *class;
    }
    // Global unicast is 2000::/3; everything else (IPv4-compatible, unassigned) is not.
    if n >> 125 == 1 {
        Public
    } else {
        Special("reserved")
    }
}

pub(super) fn prefix_mask32(len: u32) -> u32 {
    u32::MAX.checked_shl(32 - len).unwrap_or(0)
}

pub(super) fn prefix_mask128(len: u32) -> u128 {
    u128::MAX.checked_shl(128 - len).unwrap_or(0)
}

/// Which address classes a fetch may reach.
#[derive(Debug, Clone, Copy)]
pub(super) struct AddressRules {
    pub(super) allow_loopback: bool,
    pub(super) allow_private: bool,
}

impl AddressRules {
    pub(super) fn check(self, ip: IpAddr) -> Result<(), &'static str> {
        match classify(ip) {
            Public => Ok(()),
            Loopback if self.allow_loopback => Ok(()),
            Private if self.allow_private => Ok(()),
            Loopback => Err("loopback"),
            Private => Err("private-network"),
            Special(kind) => Err(kind),
        }
    }
}

/// The fetcher's DNS: refuses the whole answer when any address is not allowed (a
/// mixed answer is how rebinding attacks look), and hands the connector exactly the
/// addresses it checked.
pub(super) struct GuardedResolver {
    pub(super) rules: AddressRules,
}

/// A resolver refusal, found again in reqwest's error chain.
#[derive(Debug, thiserror::Error)]
#[error("the host resolves to a {0} address")]
pub(super) struct AddressRefused(pub(super) &'static str);

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let rules = self.rules;
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            for addr in &addrs {
                rules.check(addr.ip()).map_err(AddressRefused)?;
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}
