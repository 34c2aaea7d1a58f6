//! The exchanges' side of the actor as callers see it: [`Exchanges`] sets it up,
//! [`Exchanger`] is the handle (a hit read straight from the cache, a miss sent to
//! the actor, the actor's absence mapped once).

use std::sync::Arc;
use std::time::Duration;

use actix::{Addr, MailboxError};

use super::actor::ExchangeActor;
use super::cache::ExchangeCache;
use super::fetch::Fetcher;
use super::messages::{Abandon, Fetch, Waiting};
use super::replicas::Replicas;
use super::{Answer, ExchangeError, ExchangeRequest, Exchanged};
use crate::actors::discovery::DiscoveryHandle;
use crate::clock::Clock;
use crate::domain::invalidation::Invalidation;
use crate::store::ExchangeLock;
use crate::telemetry::cache_metrics::CacheName;
use crate::telemetry::metrics::Metrics;
use crate::upstream::http::UpstreamHttp;

/// How exchanges are done: the cache and what a provider call needs.
#[derive(Clone)]
pub struct Exchanges {
    pub(super) cache: ExchangeCache,
    pub(super) fetcher: Fetcher,
}

impl Exchanges {
    pub fn new(
        http: UpstreamHttp,
        discovery: DiscoveryHandle,
        clock: Clock,
        capacity: u64,
        skew: Duration,
    ) -> Self {
        let cache = ExchangeCache::new(clock.clone(), capacity, skew);
        Self {
            fetcher: Fetcher {
                http,
                discovery,
                clock,
                skew: cache.skew(),
                replicas: None,
                metrics: None,
            },
            cache,
        }
    }

    /// Coalesces misses with the other replicas through `lock`; a holder keeps it
    /// for `upstream_timeout` plus a margin.
    pub fn with_replicas(
        mut self,
        lock: Arc<dyn ExchangeLock>,
        upstream_timeout: Duration,
    ) -> Self {
        self.fetcher.replicas = Some(Replicas::new(lock, upstream_timeout));
        self
    }

    /// Counts coalesced misses and lock failures, and the cache's hits and misses.
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.cache.counters = metrics.cache(CacheName::Exchange);
        self.fetcher.metrics = Some(metrics);
        self
    }

    /// Starts an actor for exchanges alone (no provider refreshes).
    pub fn start(self) -> Exchanger {
        let addr = ExchangeActor::launch(Some(&self), None);
        self.handle(addr)
    }

    pub(super) fn handle(self, addr: Addr<ExchangeActor>) -> Exchanger {
        Exchanger {
            cache: self.cache,
            addr,
        }
    }
}

/// The handle every worker shares. Cheap to clone.
#[derive(Clone)]
pub struct Exchanger {
    cache: ExchangeCache,
    addr: Addr<ExchangeActor>,
}

impl Exchanger {
    /// A downstream token for `request`: cached, or from the provider (one call for
    /// any number of identical concurrent requests — on a shared store, across
    /// replicas too).
    pub async fn exchange(&self, request: ExchangeRequest) -> Answer {
        let key = request.key;
        // Not counted: callers count their own look first (`cached`).
        if let Some(hit) = self.cache.cached(&key) {
            return Ok(hit);
        }
        // Armed before asking, so a caller that goes away from here on tells the actor.
        let mut waiting = Abandoning {
            addr: &self.addr,
            key,
            answer: None,
            armed: true,
        };
        let answer = match self
            .addr
            .send(Fetch {
                request,
                span: tracing::Span::current(),
            })
            .await
            .map_err(gone)?
        {
            Waiting::Ready(answer) => answer,
            Waiting::Pending(answer) => {
                let answer = waiting.answer.insert(answer);
                answer.await.unwrap_or_else(|_| {
                    Err(ExchangeError::Unavailable(
                        "the exchange stopped before it ended".to_owned(),
                    ))
                })
            }
        };
        waiting.armed = false;
        answer
    }

    /// The cached downstream token under `key`, while fresh: callers look here before
    /// gathering what a provider call needs (the grant's tokens), so a hit touches
    /// nothing but the cache. Counted in `token_broker_cache_requests_total`.
    pub fn cached(&self, key: &[u8; 32]) -> Option<Arc<Exchanged>> {
        self.cache.looked_up(key)
    }

    /// Forgets the exchanged tokens `what` covers.
    pub fn invalidate(&self, what: &Invalidation) {
        self.cache.invalidate(what);
    }
}

/// The actor is gone (the system is stopping): the one place its absence is mapped.
fn gone(error: MailboxError) -> ExchangeError {
    ExchangeError::Unavailable(format!("the exchange actor is gone: {error}"))
}

/// A caller waiting for a miss. Dropped while armed — the caller went away — it lets
/// go of its answer, then tells the actor, which calls the miss off once nobody waits.
struct Abandoning<'a> {
    addr: &'a Addr<ExchangeActor>,
    key: [u8; 32],
    answer: Option<tokio::sync::oneshot::Receiver<Answer>>,
    armed: bool,
}

impl Drop for Abandoning<'_> {
    fn drop(&mut self) {
        if self.armed {
            // Closed first, so the actor sees this waiter gone.
            drop(self.answer.take());
            self.addr.do_send(Abandon { key: self.key });
        }
    }
}
