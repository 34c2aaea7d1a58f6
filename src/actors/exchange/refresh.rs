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
//!   flight is the exchange actor's ([`Refresh`](super::Refresh)), a future of its
//!   own on the actor's context — lock, provider call, store write, release — so it
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

mod flight;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use actix::{Addr, MailboxError};
use futures_util::future::LocalBoxFuture;

use super::actor::ExchangeActor;
use super::messages::Refresh;
use crate::clock::Clock;
use crate::store::{Grant, RefreshLock, Store, StoreError};

/// Added to the upstream timeout for the lock's life: the holder also reads the
/// client, the discovery snapshot and writes the grant before it lets go.
const LOCK_MARGIN: Duration = Duration::from_secs(2);

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

/// A flight's outcome, handed to every caller that shared it.
pub type Outcome = Result<Grant, RefreshError>;

/// The provider call of a flight: new tokens stored on the grant, or the grant
/// revoked on `invalid_grant`. Runs on the actor's thread, so its future need not
/// be `Send`.
pub type Provider = Box<dyn FnOnce(Grant) -> LocalBoxFuture<'static, Outcome> + Send>;

/// How grants are refreshed: the store they are read from and, for replicas, the
/// lock. Cheap to clone.
#[derive(Clone)]
pub struct Refreshes {
    store: Arc<dyn Store>,
    clock: Clock,
    replicas: Option<(Arc<dyn RefreshLock>, Duration)>,
    /// `refresh.max_upstream_staleness`: when a provider token without expiry is due.
    max_staleness: Duration,
}

impl Refreshes {
    pub fn new(store: Arc<dyn Store>, clock: Clock) -> Self {
        Self {
            store,
            clock,
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

    /// Starts an actor for refreshes alone (no exchanges).
    pub fn start(self) -> RefreshOnce {
        let addr = ExchangeActor::launch(None, Some(&self));
        self.handle(addr)
    }

    pub(super) fn handle(self, addr: Addr<ExchangeActor>) -> RefreshOnce {
        RefreshOnce {
            addr,
            clock: self.clock,
            max_staleness: self.max_staleness,
        }
    }

    /// Whether `grant`'s provider token has expired (or, without expiry, gone
    /// unconfirmed for the bound) and can be refreshed.
    fn due(&self, grant: &Grant) -> bool {
        due(&self.clock, self.max_staleness, grant)
    }
}

fn due(clock: &Clock, max_staleness: Duration, grant: &Grant) -> bool {
    grant
        .provider_session()
        .refresh_due(clock.unix(), max_staleness)
}

/// The handle: one provider refresh per grant, here and on the other replicas.
/// Cheap to clone.
#[derive(Clone)]
pub struct RefreshOnce {
    addr: Addr<ExchangeActor>,
    clock: Clock,
    max_staleness: Duration,
}

impl RefreshOnce {
    /// Whether `grant`'s provider token has expired (or, without expiry, gone
    /// unconfirmed for the bound) and can be refreshed.
    pub fn due(&self, grant: &Grant) -> bool {
        due(&self.clock, self.max_staleness, grant)
    }

    /// `grant` with fresh provider tokens: as it is when they are, else refreshed by
    /// `provider` — which calls the provider and stores the new tokens on the grant,
    /// or revokes it on `invalid_grant` — once for every concurrent caller here and
    /// on the other replicas. `provider` runs only if this caller starts the flight,
    /// on the exchange actor's thread, and runs to its end even if the caller goes
    /// away.
    pub async fn refreshed<F, Fut>(&self, grant: Grant, provider: F) -> Outcome
    where
        F: FnOnce(Grant) -> Fut + Send + 'static,
        Fut: Future<Output = Outcome> + 'static,
    {
        if !self.due(&grant) {
            return Ok(grant);
        }
        let provider: Provider = Box::new(move |grant| Box::pin(provider(grant)));
        let refresh = Refresh {
            grant_id: grant.grant_id,
            provider,
            span: tracing::Span::current(),
        };
        let outcome = self.addr.send(refresh).await.map_err(gone)?;
        // Closed without an outcome: the actor stopped (its runtime shutting down).
        outcome.await.unwrap_or_else(|_| {
            Err(RefreshError::Unavailable(
                "the refresh stopped before it ended".to_owned(),
            ))
        })
    }
}

/// The actor is gone (the system is stopping): the one place its absence is mapped.
fn gone(error: MailboxError) -> RefreshError {
    RefreshError::Unavailable(format!("the refresh stopped before it ended: {error}"))
}

#[cfg(test)]
pub(crate) mod tests;
