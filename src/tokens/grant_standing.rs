//! Each grant's standing — its scopes, or that it is revoked or unknown — as the
//! verifier needs it on every use of a broker token (verified-token cache hits too),
//! so a revocation or a scope change recorded in the store takes effect on the next
//! request: at once when an invalidation arrives, within `scope_cache.ttl` when it
//! does not.
//!
//! A shared handle rather than an actor: a moka lookup on the hot path, one store
//! read per grant per TTL, concurrent misses coalesced. The Invalidator
//! (`actors::scopes`) drops entries through [`ScopeCache::invalidate`].

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use moka::future::Cache;

use crate::clock::{Clock, UnixSeconds};
use crate::config::ScopeCacheConfig;
use crate::domain::identity::Identity;
use crate::domain::invalidation::{Invalidation, Owner};
use crate::domain::scope::Scopes;
use crate::store::{Store, StoreError};
use crate::telemetry::cache_metrics::CacheCounters;

/// A grant's standing, as last read from the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effective {
    /// `None` when the store does not know the grant.
    pub subject: Option<String>,
    pub client_id: Option<String>,
    /// What tokens of the grant may carry; `None` when it is revoked or unknown.
    pub scopes: Option<Scopes>,
    /// What the provider last said of the user (`None`: nothing).
    pub identity: Option<Arc<Identity>>,
    loaded_at: UnixSeconds,
}

impl Effective {
    fn owner<'a>(&'a self, grant_id: &'a str) -> Option<Owner<'a>> {
        Some(Owner {
            subject: self.subject.as_deref()?,
            client_id: self.client_id.as_deref(),
            grant_id: Some(grant_id),
        })
    }
}

/// The shared read side. Cheap to clone.
#[derive(Clone)]
pub struct ScopeCache {
    cache: Cache<Arc<str>, Arc<Effective>>,
    store: Arc<dyn Store>,
    clock: Clock,
    ttl: u64,
    counters: CacheCounters,
}

impl ScopeCache {
    pub fn new(store: Arc<dyn Store>, clock: Clock, config: &ScopeCacheConfig) -> Self {
        Self {
            cache: Cache::builder()
                .max_capacity(config.capacity)
                // Memory is reclaimed on real time; freshness is judged by the broker's
                // clock below, so tests move time without sleeping.
                .time_to_live(config.ttl + Duration::from_secs(1))
                .support_invalidation_closures()
                .build(),
            store,
            clock,
            ttl: config.ttl.as_secs(),
            counters: CacheCounters::default(),
        }
    }

    /// Counts the cache's hits and misses.
    pub fn counting(mut self, counters: CacheCounters) -> Self {
        self.counters = counters;
        self
    }

    /// The grant's standing: cached while fresh, else read from the store (one read
    /// for any number of concurrent callers).
    pub async fn effective(&self, grant_id: &str) -> Result<Arc<Effective>, StoreError> {
        if let Some(hit) = self.cache.get(grant_id).await {
            if self.clock.unix() < hit.loaded_at + self.ttl {
                self.counters.lookup(true);
                return Ok(hit);
            }
            self.cache.invalidate(grant_id).await;
        }
        self.counters.lookup(false);
        self.cache
            .try_get_with(Arc::from(grant_id), self.load(grant_id))
            .await
            .map_err(|e| (*e).clone())
    }

    async fn load(&self, grant_id: &str) -> Result<Arc<Effective>, StoreError> {
        let loaded_at = self.clock.unix();
        let effective = match self.store.get_grant(grant_id).await? {
            Some(grant) => Effective {
                scopes: grant.revoked_at.is_none().then_some(grant.scopes),
                identity: grant.upstream.identity.map(Arc::new),
                subject: Some(grant.subject),
                client_id: Some(grant.client_id),
                loaded_at,
            },
            None => Effective {
                subject: None,
                client_id: None,
                scopes: None,
                identity: None,
                loaded_at,
            },
        };
        Ok(Arc::new(effective))
    }

    /// Drops the entries `what` covers; they are read again on their next use.
    pub async fn invalidate(&self, what: &Invalidation) {
        match what {
            Invalidation::GrantId(id) => self.cache.invalidate(id.as_str()).await,
            Invalidation::All(_) => self.cache.invalidate_all(),
            other => {
                let what = other.clone();
                let registered = self.cache.invalidate_entries_if(move |grant_id, entry| {
                    // A grant the store did not know stays unknown: nothing to re-read.
                    entry
                        .owner(grant_id)
                        .is_some_and(|owner| what.covers(owner))
                });
                if let Err(error) = registered {
                    tracing::error!(%error, "scope cache: predicate refused; dropping everything");
                    self.cache.invalidate_all();
                }
            }
        }
    }
}
