//! Identical exchange misses on different replicas, coalesced into one provider call.
//!
//! Within a process the actor already makes identical concurrent misses one call;
//! across replicas that share a store, the one local miss per replica then asks the
//! shared [`ExchangeLock`] (`store::exchange_lock`):
//!
//! - the outcome another replica published for the key → answered with it (no call);
//! - the lock, free until now → this replica calls the provider, publishes the
//!   outcome for a short while and releases the lock;
//! - the lock, held by another replica → ask again after a short pause (10 ms,
//!   doubling to 25 ms) until the outcome appears or the lock goes. A lock that goes
//!   without an outcome — its holder died (the lock expired), or had nothing to share
//!   — is taken by the next waiter to ask, which calls the provider itself. A holder
//!   whose miss is called off (every caller went away) before it settles releases
//!   the lock in the background.
//!
//! What is shared, and for how long: a downstream token for at most
//! [`SHARED_WINDOW`] and never past its expiry minus the skew (a token with less
//! left is not shared, as it is not cached); a provider refusal for
//! [`REFUSAL_WINDOW`], so waiters get the same refusal instead of each asking again.
//! Nothing else is: a provider that could not be reached, or a strategy that cannot
//! run, leaves the next waiter to try for itself. The window is seconds because an
//! invalidation clears each replica's own cache but cannot reach a shared entry (it
//! names holders; the entry is keyed by a hash): after an operator invalidates a
//! subject or client, a miss may still be answered from the shared entry for at
//! most that window. A revocation is not affected: a revoked grant's token is
//! refused by the verifier before any cache is consulted.
//!
//! When the lock cannot be used (the store is down), the provider is called without
//! it — still once per process. The exchange needs the provider, not the store; a
//! store outage must not turn every exchange into a 503 when the only loss is a few
//! duplicate calls. Each such miss is logged and counted.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::fetch::Fetcher;
use super::{Answer, ExchangeError, ExchangeRequest, Exchanged};
use crate::domain::scope::Scopes;
use crate::store::{Claim, ExchangeLock, Lease, Shared, StoreError};

/// How long a downstream token stays published for the other replicas.
pub const SHARED_WINDOW: Duration = Duration::from_secs(5);
/// How long a provider's refusal stays published.
pub const REFUSAL_WINDOW: Duration = Duration::from_secs(2);
/// Added to the upstream timeout for the lock's life: the holder also reads the
/// discovery snapshot and publishes before it lets go.
const LOCK_MARGIN: Duration = Duration::from_secs(2);
/// Pauses between a waiter's questions.
const POLL_FIRST: Duration = Duration::from_millis(10);
const POLL_MAX: Duration = Duration::from_millis(25);

/// The lock and how long a holder keeps it.
#[derive(Clone)]
pub(super) struct Replicas {
    lock: Arc<dyn ExchangeLock>,
    lock_ttl: Duration,
}

impl Replicas {
    pub(super) fn new(lock: Arc<dyn ExchangeLock>, upstream_timeout: Duration) -> Self {
        Self {
            lock,
            lock_ttl: upstream_timeout + LOCK_MARGIN,
        }
    }
}

impl Fetcher {
    /// The provider's answer for `request`, fetched by one replica for all of them.
    pub(super) async fn across_replicas(
        &self,
        replicas: &Replicas,
        request: ExchangeRequest,
    ) -> Answer {
        let key = request.key;
        // A holder lets go within the lock's life, a dead one's lock expires after
        // it, and a waiter taking over has as long again; past that, waiting no
        // longer helps.
        let give_up = Instant::now() + 2 * replicas.lock_ttl;
        let mut pause = POLL_FIRST;
        loop {
            match claim(replicas, key).await {
                Ok(Claimed::Settled(shared)) => {
                    self.count_coalesced("replica");
                    return answer_from(shared, request);
                }
                Ok(Claimed::Won(held)) => {
                    let answer = self.fetch_upstream(request).await;
                    let outcome = self.shareable(&answer);
                    let Some(lease) = held.settling() else {
                        return answer;
                    };
                    if let Err(e) = replicas.lock.settle(lease, outcome).await {
                        // The others wait until the lock expires, then ask for themselves.
                        tracing::warn!(error = %e, "exchange outcome not published to other replicas");
                        self.count_lock_failure();
                    }
                    return answer;
                }
                Ok(Claimed::Held) if Instant::now() < give_up => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(POLL_MAX);
                }
                Ok(Claimed::Held) => {
                    tracing::warn!(
                        "another replica held the exchange lock too long; calling the provider"
                    );
                    return self.fetch_upstream(request).await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "exchange lock unavailable; calling the provider without it");
                    self.count_lock_failure();
                    return self.fetch_upstream(request).await;
                }
            }
        }
    }

    /// What of `answer` the other replicas may reuse, and for how long.
    fn shareable(&self, answer: &Answer) -> Option<(Shared, Duration)> {
        match answer {
            Ok(token) => {
                let left = token
                    .expires_at
                    .saturating_sub(self.skew)
                    .saturating_sub(self.clock.unix());
                let keep = SHARED_WINDOW.min(Duration::from_secs(left));
                (!keep.is_zero()).then(|| {
                    let shared = Shared::Token {
                        access_token: token.access_token.clone(),
                        issued_token_type: token.issued_token_type.clone(),
                        expires_at: token.expires_at,
                        scope: token.scope.to_string(),
                    };
                    (shared, keep)
                })
            }
            Err(ExchangeError::Refused { error, description }) => Some((
                Shared::Refused {
                    error: error.clone(),
                    description: description.clone(),
                },
                REFUSAL_WINDOW,
            )),
            Err(ExchangeError::Unavailable(_) | ExchangeError::NotPossible(_)) => None,
        }
    }
}

/// A claim's outcome, a won lease already in its guard.
enum Claimed {
    Settled(Shared),
    Won(Unsettled),
    Held,
}

/// Claims the lock in a task of its own, which turns a won lease into its guard: a
/// request dropped while Redis answers cannot lose a lease Redis has granted (the
/// lock would then stay until it expires, and every waiter with it); the guard,
/// dropped with the task's unread output, releases it.
async fn claim(replicas: &Replicas, key: [u8; 32]) -> Result<Claimed, StoreError> {
    let (lock, ttl) = (replicas.lock.clone(), replicas.lock_ttl);
    let task = tokio::spawn(async move {
        Ok(match lock.claim(&key, ttl).await? {
            Claim::Settled(shared) => Claimed::Settled(shared),
            Claim::Won(lease) => Claimed::Won(Unsettled {
                lock,
                lease: Some(lease),
            }),
            Claim::Held => Claimed::Held,
        })
    });
    task.await
        .map_err(|e| StoreError::Unavailable(format!("exchange lock claim: {e}")))?
}

/// A lease while its holder asks the provider. Dropped before
/// [`settling`](Self::settling) — the miss was called off, its every caller gone,
/// or the actor stopped — it releases the lock in the background, so waiters take
/// over at once instead of waiting for the lock to expire.
struct Unsettled {
    lock: Arc<dyn ExchangeLock>,
    lease: Option<Lease>,
}

impl Unsettled {
    /// The lease, to settle: nothing is released on drop any more.
    fn settling(mut self) -> Option<Lease> {
        self.lease.take()
    }
}

impl Drop for Unsettled {
    fn drop(&mut self) {
        let Some(lease) = self.lease.take() else {
            return;
        };
        let lock = self.lock.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    if let Err(e) = lock.settle(lease, None).await {
                        tracing::warn!(error = %e, "abandoned exchange lock not released; it expires");
                    }
                });
            }
            Err(_) => tracing::warn!("abandoned exchange lock not released; it expires"),
        }
    }
}

/// Another replica's outcome as this replica's answer to `request`.
fn answer_from(shared: Shared, request: ExchangeRequest) -> Answer {
    match shared {
        Shared::Token {
            access_token,
            issued_token_type,
            expires_at,
            scope,
        } => Ok(Arc::new(Exchanged {
            access_token,
            issued_token_type,
            expires_at,
            // As `downstream` reads the provider's scope: what was asked when the
            // text says nothing usable.
            scope: Scopes::parse(&scope)
                .ok()
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| request.scopes.clone()),
            rotated_refresh_token: None,
            holder: request.holder,
        })),
        Shared::Refused { error, description } => {
            Err(ExchangeError::Refused { error, description })
        }
    }
}
