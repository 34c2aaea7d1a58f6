//! One refresh at the provider per grant, however many requests find its provider
//! token expired at once — on one broker or on several replicas sharing a store.
//!
//! Providers that rotate refresh tokens with reuse detection (Okta, Auth0, Keycloak's
//! "revoke refresh token"; the MCP specification requires rotation for public
//! clients) answer a second use of one refresh token with `invalid_grant` and end
//! the session. Two concurrent refreshes of one grant would therefore log its user
//! out for nothing. So:
//!
//! - In a process, concurrent callers for a grant share one flight: the first starts
//!   it, all of them wait for its outcome (the refreshed grant, or the failure). The
//!   flight is a task of its own — lock, provider call, store write, release — so it
//!   lands even when every caller went away: a provider that rotated the refresh
//!   token has its new one stored, and the lock is not let go while the old one is
//!   still on its way to the provider.
//! - Across replicas ([`RefreshLock`], Redis), a flight first takes the grant's
//!   short lock (`SET NX PX` with an owner token; released by compare-and-delete).
//!   The holder re-reads the grant — a previous holder may just have refreshed it —
//!   calls the provider, stores the new tokens on the grant and releases the lock.
//!   The grant in the store is the published outcome: a waiter polls, re-reading it
//!   (10 ms, doubling to 25 ms), and uses its provider token once it is fresh. A
//!   holder that died leaves the lock to expire (the upstream timeout and a margin);
//!   the next waiter to ask takes it and refreshes itself.
//! - A provider refusal (`invalid_grant`) revokes the grant before the lock goes,
//!   so waiters read a revoked grant and fail without calling the provider with the
//!   dead token. A provider that cannot be reached leaves the grant expired: the
//!   next flight (on this or another replica) tries again.
//!
//! When the lock cannot be used (the store is down) the refresh fails with the store
//! error (503): refreshing without the store would rotate the provider's refresh
//! token and then lose the new one, which ends the session at the next refresh.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::watch;

use crate::clock::Clock;
use crate::store::{Grant, Store, StoreError};

/// Added to the upstream timeout for the lock's life: the holder also reads the
/// client, the discovery snapshot and writes the grant before it lets go.
const LOCK_MARGIN: Duration = Duration::from_secs(2);
/// Pauses between a waiter's looks at the grant.
const POLL_FIRST: Duration = Duration::from_millis(10);
const POLL_MAX: Duration = Duration::from_millis(25);

/// Why a grant's provider tokens could not be made fresh. Cloned to every caller
/// that shared the flight.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RefreshError {
    /// The grant is revoked or gone — possibly just now, by the provider's refusal.
    #[error("the grant was revoked")]
    Revoked,
    /// The provider ended the session (`invalid_grant`); the grant is revoked.
    #[error("the identity provider ended this session")]
    Ended,
    /// The client the grant belongs to no longer exists.
    #[error("the client no longer exists")]
    ClientGone,
    /// The provider could not be reached, or another replica kept the lock too long.
    #[error("{0}")]
    Unavailable(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The replicas' per-grant refresh lock (Redis: `store::redis::refresh_lock`).
#[async_trait]
pub trait RefreshLock: Send + Sync + 'static {
    /// Takes the lock on `grant_id` for `ttl`, writing `owner` (a random token), when
    /// it is free; `true` then.
    async fn try_lock(
        &self,
        grant_id: &str,
        owner: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError>;

    /// Releases the lock if `owner` still holds it (it may have expired and been
    /// taken over).
    async fn unlock(&self, grant_id: &str, owner: &str) -> Result<(), StoreError>;
}

type Outcome = Result<Grant, RefreshError>;

/// A flight's outcome once its task has it (`None` until then), awaited by every
/// caller that shares the flight.
type Flight = watch::Receiver<Option<Outcome>>;

/// The flights in progress and, for replicas, the lock. Cheap to clone.
#[derive(Clone)]
pub struct RefreshOnce {
    store: Arc<dyn Store>,
    clock: Clock,
    flights: Arc<Mutex<HashMap<String, Flight>>>,
    replicas: Option<(Arc<dyn RefreshLock>, Duration)>,
    /// `refresh.max_upstream_staleness`: when a provider token without expiry is due.
    max_staleness: Duration,
}

impl RefreshOnce {
    pub fn new(store: Arc<dyn Store>, clock: Clock) -> Self {
        Self {
            store,
            clock,
            flights: Arc::default(),
            replicas: None,
            max_staleness: Duration::MAX,
        }
    }

    /// A provider token without expiry is refreshed once `bound` has run since it was
    /// obtained (without this, never).
    pub fn with_max_staleness(mut self, bound: Duration) -> Self {
        self.max_staleness = bound;
        self
    }

    /// Coordinates with other replicas through `lock`, held at most the upstream
    /// timeout and a margin.
    pub fn with_lock(self, lock: Arc<dyn RefreshLock>, upstream_timeout: Duration) -> Self {
        self.with_lock_ttl(lock, upstream_timeout + LOCK_MARGIN)
    }

    /// [`with_lock`](Self::with_lock) with the lock's whole life given.
    pub fn with_lock_ttl(mut self, lock: Arc<dyn RefreshLock>, ttl: Duration) -> Self {
        self.replicas = Some((lock, ttl));
        self
    }

    /// Whether `grant`'s provider token has expired (or, without expiry, gone
    /// unconfirmed for the bound) and can be refreshed.
    pub fn due(&self, grant: &Grant) -> bool {
        grant
            .provider_session()
            .refresh_due(self.clock.unix(), self.max_staleness)
    }

    /// `grant` with fresh provider tokens: as it is when they are, else refreshed by
    /// `provider` — which calls the provider and stores the new tokens on the grant,
    /// or revokes it on `invalid_grant` — once for every concurrent caller here and
    /// on the other replicas. `provider` runs only if this caller starts the flight,
    /// in a task of the flight's own (on this thread: call it inside an actix or
    /// `LocalSet` runtime), which runs to its end even if the caller goes away.
    pub async fn refreshed<F, Fut>(&self, grant: Grant, provider: F) -> Outcome
    where
        F: FnOnce(Grant) -> Fut + 'static,
        Fut: Future<Output = Outcome> + 'static,
    {
        if !self.due(&grant) {
            return Ok(grant);
        }
        let mut flight = self.join(grant.grant_id, provider);
        let landed = match flight.wait_for(Option::is_some).await {
            Ok(outcome) => outcome.clone(),
            // The task was stopped (its runtime is shutting down).
            Err(_) => None,
        };
        landed.unwrap_or_else(|| {
            Err(RefreshError::Unavailable(
                "the refresh stopped before it ended".to_owned(),
            ))
        })
    }

    /// The flight in progress for `grant_id`, or a new one started with `provider`.
    fn join<F, Fut>(&self, grant_id: String, provider: F) -> Flight
    where
        F: FnOnce(Grant) -> Fut + 'static,
        Fut: Future<Output = Outcome> + 'static,
    {
        let mut flights = self
            .flights
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // A flight whose task was stopped before it began (its runtime shutting
        // down) is not joined: its outcome never comes.
        if let Some(flight) = flights.get(&grant_id)
            && flight.has_changed().is_ok()
        {
            return flight.clone();
        }
        let (outcome, flight) = watch::channel(None);
        let this = self.clone();
        let id = grant_id.clone();
        actix_web::rt::spawn(async move {
            // Forgets the flight when it ends, however it ends: a later caller starts
            // afresh, reading the grant first.
            let landed = Landed {
                flights: this.flights.clone(),
                grant_id: id.clone(),
            };
            let ended = this.fly(&id, provider).await;
            drop(landed);
            outcome.send_replace(Some(ended));
        });
        flights.insert(grant_id, flight.clone());
        flight
    }

    async fn fly<F, Fut>(&self, grant_id: &str, provider: F) -> Outcome
    where
        F: FnOnce(Grant) -> Fut,
        Fut: Future<Output = Outcome>,
    {
        let Some((lock, ttl)) = &self.replicas else {
            // The previous flight here may have refreshed it since the caller read it.
            let grant = self.live(grant_id).await?;
            return if self.due(&grant) {
                provider(grant).await
            } else {
                Ok(grant)
            };
        };
        // A holder lets go within the lock's life, a dead one's lock expires after
        // it, and a waiter taking over has as long again; past that, waiting no
        // longer helps.
        let give_up = Instant::now() + 2 * *ttl;
        let mut pause = POLL_FIRST;
        loop {
            let grant = self.live(grant_id).await?;
            if !self.due(&grant) {
                return Ok(grant);
            }
            // Armed before asking: a flight stopped while the claim is on its way
            // (its runtime shutting down) may hold the lock without knowing, and
            // must release it all the same.
            let owner = uuid::Uuid::new_v4().simple().to_string();
            let held = Held::armed(lock.clone(), grant_id, owner.clone());
            match lock.try_lock(grant_id, &owner, *ttl).await {
                Ok(true) => {
                    // The lock's previous holder may have stored fresh tokens between
                    // the read above and the claim.
                    let outcome = match self.live(grant_id).await {
                        Ok(grant) if self.due(&grant) => provider(grant).await,
                        other => other,
                    };
                    held.release().await;
                    return outcome;
                }
                Ok(false) => held.disarm(),
                Err(e) => {
                    held.disarm();
                    return Err(e.into());
                }
            }
            if Instant::now() >= give_up {
                return Err(RefreshError::Unavailable(
                    "another replica held the grant's refresh lock too long".to_owned(),
                ));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(POLL_MAX);
        }
    }

    /// The grant as stored, if it is live.
    async fn live(&self, grant_id: &str) -> Result<Grant, RefreshError> {
        match self.store.get_grant(grant_id).await? {
            Some(grant) if grant.revoked_at.is_none() => Ok(grant),
            _ => Err(RefreshError::Revoked),
        }
    }
}

/// A replica's hold on a grant's lock. Dropped before [`release`](Self::release) —
/// its flight was stopped mid-refresh, as its runtime shut down — it releases in the
/// background if it still can, so a waiter takes over at once instead of when the
/// lock expires.
struct Held {
    lock: Arc<dyn RefreshLock>,
    grant_id: String,
    owner: Option<String>,
}

impl Held {
    fn armed(lock: Arc<dyn RefreshLock>, grant_id: &str, owner: String) -> Self {
        Self {
            lock,
            grant_id: grant_id.to_owned(),
            owner: Some(owner),
        }
    }

    /// The lock was not taken: nothing to release.
    fn disarm(mut self) {
        self.owner = None;
    }

    async fn release(mut self) {
        if let Some(owner) = self.owner.take()
            && let Err(e) = self.lock.unlock(&self.grant_id, &owner).await
        {
            tracing::warn!(error = %e, "grant refresh lock not released; it expires");
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let Some(owner) = self.owner.take() else {
            return;
        };
        let (lock, grant_id) = (self.lock.clone(), std::mem::take(&mut self.grant_id));
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    if let Err(e) = lock.unlock(&grant_id, &owner).await {
                        tracing::warn!(error = %e, "abandoned grant refresh lock not released; it expires");
                    }
                });
            }
            Err(_) => tracing::warn!("abandoned grant refresh lock not released; it expires"),
        }
    }
}

/// Removes a flight from the flights in progress when its task ends.
struct Landed {
    flights: Arc<Mutex<HashMap<String, Flight>>>,
    grant_id: String,
}

impl Drop for Landed {
    fn drop(&mut self) {
        self.flights
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&self.grant_id);
    }
}

#[cfg(test)]
pub(crate) mod tests;
