//! Who may reach the broker at all, by address: the client IP of a request (the one
//! place it is worked out, for the address lists and the rate limits alike) and the
//! address lists of the OAuth endpoints (`[server.oauth_addresses]`) and of each
//! protected resource (`[resources.addresses]`). Judged before anything else of the
//! request is read — no token parsed, no body read, no budget spent — so a refused
//! address learns nothing and changes nothing.
//!
//! The client IP is the socket peer, or — only when the peer is one of
//! `server.trusted_proxies` — the nearest untrusted hop of `X-Forwarded-For`
//! (`domain::client_ip`). Behind a proxy that is not trusted, every client has the
//! proxy's address: the first request that shows it (an `X-Forwarded-For` from an
//! untrusted peer) is logged as a warning.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use ipnet::IpNet;

use crate::domain::address_list::AddressList;
use crate::domain::client_ip::client_ip;
use crate::telemetry::metrics::Metrics;

/// The metric's target for the OAuth endpoints (resources are named by their URI).
pub const OAUTH: &str = "oauth";

/// Where a request came from: the socket peer and, believed only from a trusted
/// proxy, `X-Forwarded-For`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Origin<'r> {
    pub peer: Option<IpAddr>,
    pub forwarded_for: Option<&'r str>,
    /// `Host`, and `X-Forwarded-Host`, believed only from a trusted proxy: which
    /// resource a request is for when several share a path (`flows::access`).
    pub host: Option<&'r str>,
    pub forwarded_host: Option<&'r str>,
}

/// A request refused for its address: 403 `access_denied`, nothing else done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("requests from this address are not allowed")]
pub struct AddressRefused;

/// The client-IP rule and the OAuth endpoints' list.
pub struct Addresses {
    trusted_proxies: Arc<[IpNet]>,
    oauth: AddressList,
    metrics: Metrics,
    /// Whether the untrusted-proxy warning was logged (once per process).
    warned: AtomicBool,
}

impl Addresses {
    pub fn new(trusted_proxies: Arc<[IpNet]>, oauth: AddressList, metrics: Metrics) -> Self {
        Self {
            trusted_proxies,
            oauth,
            metrics,
            warned: AtomicBool::new(false),
        }
    }

    /// Says at start-up what cannot be detected later: with address lists but no
    /// trusted proxy, the lists judge the socket peer — behind a proxy, the proxy.
    pub fn warn_untrusted_lists(&self, resources: &[crate::config::ResourceConfig]) {
        let lists = !self.oauth.is_open() || resources.iter().any(|r| !r.addresses.is_open());
        if lists && self.trusted_proxies.is_empty() {
            tracing::warn!(
                "address lists are configured but server.trusted_proxies is empty: they judge the socket peer, which behind a proxy (forward-auth always) is the proxy for every client"
            );
        }
    }

    /// The client IP of a request from `origin` (no peer: `0.0.0.0`, which no sane
    /// allow list names).
    pub fn client_ip(&self, origin: Origin<'_>) -> IpAddr {
        let peer = origin.peer.unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let ip = client_ip(peer, origin.forwarded_for, &self.trusted_proxies);
        if origin.forwarded_for.is_some()
            && ip == peer.to_canonical()
            && !self.trusted_proxies.iter().any(|n| n.contains(&ip))
            && !self.warned.swap(true, Ordering::Relaxed)
        {
            tracing::warn!(
                peer = %ip,
                "X-Forwarded-For from a peer outside server.trusted_proxies is ignored: address lists and IP-keyed rate limits see this peer's address for every client behind it; list the proxy in server.trusted_proxies"
            );
        }
        ip
    }

    /// The host a request from `origin` was sent to: `X-Forwarded-Host` when the peer is
    /// one of `server.trusted_proxies` and sent one (the last entry of a list: the one
    /// the nearest proxy saw), else `Host`. From any other peer `X-Forwarded-Host` is
    /// ignored: the client would pick the resource, and with it the rules it is judged by.
    pub fn host<'r>(&self, origin: Origin<'r>) -> Option<&'r str> {
        let trusted = |_: &&str| {
            origin.peer.is_some_and(|peer| {
                let peer = peer.to_canonical();
                self.trusted_proxies.iter().any(|n| n.contains(&peer))
            })
        };
        let forwarded = origin
            .forwarded_host
            .filter(trusted)
            .and_then(|list| list.rsplit(',').next())
            .map(str::trim)
            .filter(|host| !host.is_empty());
        forwarded.or(origin.host)
    }

    /// The OAuth endpoints' list (`[server.oauth_addresses]`).
    pub fn oauth(&self, origin: Origin<'_>) -> Result<(), AddressRefused> {
        self.check(&self.oauth, OAUTH, origin)
    }

    /// `list` on a request from `origin`; `target` names what it guards in the metric
    /// and the log (a configured resource URI, or [`OAUTH`]).
    pub fn check(
        &self,
        list: &AddressList,
        target: &str,
        origin: Origin<'_>,
    ) -> Result<(), AddressRefused> {
        // An open list needs no address (the hot path without lists works none out).
        if list.is_open() {
            return Ok(());
        }
        let verdict = list.judge(self.client_ip(origin));
        let Some(which) = verdict.list() else {
            return Ok(());
        };
        self.metrics.address_refused(target, which);
        self.metrics
            .audit(crate::telemetry::audit::AuditEvent::AddressRefused {
                target,
                list: which,
            });
        tracing::info!(target, list = which, "request refused: client address");
        Err(AddressRefused)
    }
}
