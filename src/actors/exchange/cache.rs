//! The exchanged tokens, shared by every worker and the actor: hits are read here
//! directly; only the actor writes (when a miss lands).

use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::sync::Cache;

use super::Exchanged;
use crate::clock::Clock;
use crate::domain::invalidation::Invalidation;
use crate::telemetry::cache_metrics::CacheCounters;

/// Entries expire `skew` before the token does.
struct BeforeExpiry {
    clock: Clock,
    skew: u64,
}

impl moka::Expiry<[u8; 32], Arc<Exchanged>> for BeforeExpiry {
    fn expire_after_create(
        &self,
        _: &[u8; 32],
        value: &Arc<Exchanged>,
        _: Instant,
    ) -> Option<Duration> {
        let until = value.expires_at.saturating_sub(self.skew);
        Some(Duration::from_secs(until.saturating_sub(self.clock.unix())))
    }
}

/// Downstream tokens by `domain::exchange::cache_key`, fresh by the broker's clock.
#[derive(Clone)]
pub(super) struct ExchangeCache {
    cache: Cache<[u8; 32], Arc<Exchanged>>,
    clock: Clock,
    skew: u64,
    /// Counts the lookups callers make ([`ExchangeCache::looked_up`]).
    pub(super) counters: CacheCounters,
}

impl ExchangeCache {
    pub(super) fn new(clock: Clock, capacity: u64, skew: Duration) -> Self {
        Self {
            cache: Cache::builder()
                .max_capacity(capacity)
                .expire_after(BeforeExpiry {
                    clock: clock.clone(),
                    skew: skew.as_secs(),
                })
                .support_invalidation_closures()
                .build(),
            clock,
            skew: skew.as_secs(),
            counters: CacheCounters::default(),
        }
    }

    /// [`cached`](Self::cached), counted: the one look a request makes (`Exchanger::cached`);
    /// the looks after it, on the way to the actor, are not requests of their own.
    pub(super) fn looked_up(&self, key: &[u8; 32]) -> Option<Arc<Exchanged>> {
        let hit = self.cached(key);
        self.counters.lookup(hit.is_some());
        hit
    }

    /// The skew, in seconds: what a token must have left to be cached or shared.
    pub(super) fn skew(&self) -> u64 {
        self.skew
    }

    /// The cached downstream token under `key`, while fresh.
    pub(super) fn cached(&self, key: &[u8; 32]) -> Option<Arc<Exchanged>> {
        let hit = self.cache.get(key)?;
        // Moka's timer runs on real time; the broker's clock decides freshness, so a
        // hit past `expires_at - skew` by that clock is dropped and fetched again.
        if self.clock.unix() + self.skew < hit.expires_at {
            return Some(hit);
        }
        self.cache.invalidate(key);
        None
    }

    /// Keeps a token the provider just issued (one with less than the skew left
    /// expires at once).
    pub(super) fn insert(&self, key: [u8; 32], token: Arc<Exchanged>) {
        self.cache.insert(key, token);
    }

    /// Forgets the exchanged tokens `what` covers.
    pub(super) fn invalidate(&self, what: &Invalidation) {
        if let Invalidation::All(_) = what {
            return self.cache.invalidate_all();
        }
        let what = what.clone();
        let registered = self
            .cache
            .invalidate_entries_if(move |_, exchanged| what.covers(exchanged.holder.owner()));
        if registered.is_err() {
            self.cache.invalidate_all();
        }
    }
}
