//! `token_broker_cache_requests_total{cache,outcome}`: lookups in the broker's caches,
//! `hit` or `miss`. Each cache holds its two counters resolved once (the label lookup
//! and its allocation happen at start-up), so counting on the hot path is one atomic
//! add.

use prometheus::{IntCounter, IntCounterVec, Opts, Registry};

/// The caches counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheName {
    /// Verified JWTs by digest (`tokens::verify`).
    VerifiedToken,
    /// Downstream tokens of token exchange (`actors::exchange::cache`).
    Exchange,
    /// Each grant's scopes and revocation (`tokens::grant_standing`).
    GrantStanding,
    /// The provider's answers about opaque tokens (`tokens::introspect`).
    Introspection,
}

impl CacheName {
    pub const ALL: [Self; 4] = [
        Self::VerifiedToken,
        Self::Exchange,
        Self::GrantStanding,
        Self::Introspection,
    ];

    /// The `cache` label.
    pub fn label(self) -> &'static str {
        match self {
            Self::VerifiedToken => "verified_token",
            Self::Exchange => "exchange",
            Self::GrantStanding => "grant_standing",
            Self::Introspection => "introspection",
        }
    }
}

/// The counter family, registered in `registry`, every series made (at 0) so that
/// dashboards see each cache before its first lookup.
pub(super) fn register(registry: &Registry) -> Result<IntCounterVec, prometheus::Error> {
    let requests = IntCounterVec::new(
        Opts::new(
            "cache_requests_total",
            "Cache lookups by cache (verified_token, exchange, grant_standing, introspection) and outcome (hit, miss)",
        )
        .namespace("token_broker"),
        &["cache", "outcome"],
    )?;
    registry.register(Box::new(requests.clone()))?;
    for cache in CacheName::ALL {
        counters(&requests, cache);
    }
    Ok(requests)
}

pub(super) fn counters(family: &IntCounterVec, cache: CacheName) -> CacheCounters {
    CacheCounters(Some(Pair {
        hit: family.with_label_values(&[cache.label(), "hit"]),
        miss: family.with_label_values(&[cache.label(), "miss"]),
    }))
}

#[derive(Clone)]
struct Pair {
    hit: IntCounter,
    miss: IntCounter,
}

/// One cache's hit and miss counters; the default counts nothing (a cache built
/// without metrics, in unit tests).
#[derive(Clone, Default)]
pub struct CacheCounters(Option<Pair>);

impl CacheCounters {
    /// Counts one lookup: a hit when `found`.
    pub fn lookup(&self, found: bool) {
        if let Some(pair) = &self.0 {
            if found {
                pair.hit.inc();
            } else {
                pair.miss.inc();
            }
        }
    }
}
