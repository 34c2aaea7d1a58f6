//! In one process: concurrent refreshes of a grant share one provider call, a grant
//! whose provider token is fresh costs none, and a flight whose callers go away still
//! lands — once. (Across replicas: `store::redis::tests::refresh_lock`.)

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::{LocalBoxFuture, join_all};
use tokio::sync::Semaphore;

use super::{RefreshError, Refreshes};
use crate::clock::Clock;
use crate::domain::scope::Scopes;
use crate::store::{Grant, MemoryStore, Store, UpstreamTokens};

/// A live grant whose provider token expired long ago (at 100) and can be refreshed
/// with `upstream-rt`.
pub(crate) fn grant(id: &str) -> Grant {
    Grant {
        grant_id: id.into(),
        subject: "alice".into(),
        client_id: "c1".into(),
        scopes: Scopes::of(["notes:read"]),
        resource: None,
        upstream: UpstreamTokens {
            access_token: "upstream-at".into(),
            refresh_token: Some("upstream-rt".into()),
            expires_at: Some(100),
            scope: None,
            obtained_at: None,
            identity: None,
        },
        created_at: 0,
        revoked_at: None,
    }
}

/// A provider that rotates refresh tokens and refuses reuse (as Keycloak with
/// "revoke refresh token"): a spent token ends the session, and the broker then
/// revokes the grant. Takes `latency` to answer, so concurrent flights overlap.
pub(crate) struct Provider {
    pub store: Arc<dyn Store>,
    pub clock: Clock,
    pub calls: AtomicUsize,
    current: Mutex<String>,
    latency: Duration,
    /// When set, a call answers only once the gate is opened.
    gate: Option<Semaphore>,
}

impl Provider {
    /// Holds `grant("…")`'s refresh token, `upstream-rt`.
    pub(crate) fn new(store: Arc<dyn Store>, clock: Clock, latency: Duration) -> Arc<Self> {
        Arc::new(Self {
            store,
            clock,
            calls: AtomicUsize::new(0),
            current: Mutex::new("upstream-rt".to_owned()),
            latency,
            gate: None,
        })
    }

    /// A provider that answers only after [`open`](Self::open).
    pub(crate) fn held(store: Arc<dyn Store>, clock: Clock) -> Arc<Self> {
        Arc::new(Self {
            store,
            clock,
            calls: AtomicUsize::new(0),
            current: Mutex::new("upstream-rt".to_owned()),
            latency: Duration::ZERO,
            gate: Some(Semaphore::new(0)),
        })
    }

    /// Lets a [`held`](Self::held) provider's calls answer.
    pub(crate) fn open(&self) {
        if let Some(gate) = &self.gate {
            gate.add_permits(Semaphore::MAX_PERMITS / 2);
        }
    }

    /// A provider that refuses every refresh token (the user logged out there).
    pub(crate) fn ended(store: Arc<dyn Store>, clock: Clock, latency: Duration) -> Arc<Self> {
        let provider = Self::new(store, clock, latency);
        *provider.current.lock().unwrap() = "nothing valid".to_owned();
        provider
    }

    /// [`refresh`](Self::refresh) as a flight's provider, owning this provider.
    pub(crate) fn refresher(
        self: &Arc<Self>,
    ) -> impl FnOnce(Grant) -> LocalBoxFuture<'static, Result<Grant, RefreshError>> + 'static {
        let provider = self.clone();
        move |g| Box::pin(async move { provider.refresh(g).await })
    }

    pub(crate) fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// One refresh, as `flows::grants` does it: new tokens stored on the
    /// grant, or the grant revoked on a refusal.
    pub(crate) async fn refresh(&self, grant: Grant) -> Result<Grant, RefreshError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        tokio::time::sleep(self.latency).await;
        if let Some(gate) = &self.gate {
            drop(gate.acquire().await.unwrap());
        }
        let presented = grant.upstream.refresh_token.clone().unwrap_or_default();
        let fresh = {
            let mut current = self.current.lock().unwrap();
            if *current != presented {
                None
            } else {
                *current = format!("upstream-rt-{n}");
                Some(current.clone())
            }
        };
        let Some(refresh_token) = fresh else {
            self.store
                .revoke_grant(&grant.grant_id, self.clock.unix())
                .await?;
            return Err(RefreshError::Ended);
        };
        let upstream = UpstreamTokens {
            access_token: format!("upstream-at-{n}"),
            refresh_token: Some(refresh_token),
            expires_at: Some(self.clock.unix() + 300),
            scope: grant.upstream.scope.clone(),
            obtained_at: None,
            identity: None,
        };
        self.store
            .set_upstream_tokens(&grant.grant_id, upstream.clone())
            .await?;
        Ok(Grant { upstream, ..grant })
    }
}

async fn stored(store: &Arc<dyn Store>, g: Grant) -> Grant {
    store.put_grant(g.clone()).await.unwrap();
    g
}

#[actix_web::test]
async fn fifty_concurrent_refreshes_of_one_grant_are_one_provider_call() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let clock = Clock::system();
    let expired = stored(&store, grant("g1")).await;
    let provider = Provider::new(store.clone(), clock.clone(), Duration::from_millis(50));
    let once = Refreshes::new(store.clone(), clock.clone()).start();

    let answers =
        join_all((0..50).map(|_| once.refreshed(expired.clone(), provider.refresher()))).await;

    assert_eq!(provider.calls(), 1);
    for answer in answers {
        assert_eq!(answer.unwrap().upstream.access_token, "upstream-at-1");
    }
    // Later callers holding the expired grant read the refreshed one: no call.
    let again = once.refreshed(expired, provider.refresher()).await.unwrap();
    assert_eq!(again.upstream.access_token, "upstream-at-1");
    assert_eq!(provider.calls(), 1);
}

#[actix_web::test]
async fn a_fresh_or_unrefreshable_provider_token_costs_no_call() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let clock = Clock::system();
    let provider = Provider::new(store.clone(), clock.clone(), Duration::ZERO);
    let once = Refreshes::new(store.clone(), clock.clone()).start();
    let mut fresh = grant("fresh");
    fresh.upstream.expires_at = Some(clock.unix() + 60);
    let mut no_refresh_token = grant("plain");
    no_refresh_token.upstream.refresh_token = None;
    for g in [fresh, no_refresh_token] {
        let answer = once.refreshed(g.clone(), provider.refresher()).await;
        assert_eq!(answer.unwrap(), g);
    }
    assert_eq!(provider.calls(), 0);
}

#[actix_web::test]
async fn a_refusal_reaches_every_caller_of_the_flight_and_revokes_the_grant() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let clock = Clock::system();
    let expired = stored(&store, grant("g1")).await;
    let provider = Provider::ended(store.clone(), clock.clone(), Duration::from_millis(50));
    let once = Refreshes::new(store.clone(), clock.clone()).start();

    let answers =
        join_all((0..20).map(|_| once.refreshed(expired.clone(), provider.refresher()))).await;

    assert_eq!(provider.calls(), 1);
    assert!(
        answers
            .iter()
            .all(|a| matches!(a, Err(RefreshError::Ended)))
    );
    // The next caller reads the revoked grant: no call with the dead token.
    let next = once.refreshed(expired, provider.refresher()).await;
    assert!(matches!(next, Err(RefreshError::Revoked)), "{next:?}");
    assert_eq!(provider.calls(), 1);
}

/// A grant's refresh token as stored (the grant live).
async fn stored_refresh_token(store: &Arc<dyn Store>, id: &str) -> Option<String> {
    let grant = store.get_grant(id).await.unwrap().unwrap();
    assert!(grant.revoked_at.is_none(), "the grant was revoked");
    grant.upstream.refresh_token
}

#[actix_web::test]
async fn a_flight_whose_caller_goes_away_still_lands_for_its_waiters_with_one_call() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let clock = Clock::system();
    let expired = stored(&store, grant("g1")).await;
    // The first caller's provider answers only after its request was dropped.
    let slow = Provider::held(store.clone(), clock.clone());
    let other = Provider::new(store.clone(), clock.clone(), Duration::ZERO);
    let once = Refreshes::new(store.clone(), clock.clone()).start();

    let first = {
        let (once, expired, slow) = (once.clone(), expired.clone(), slow.clone());
        actix_web::rt::spawn(async move { once.refreshed(expired, slow.refresher()).await })
    };
    while slow.calls() == 0 {
        tokio::task::yield_now().await;
    }
    let waiter = {
        let (once, expired, other) = (once.clone(), expired.clone(), other.clone());
        actix_web::rt::spawn(async move { once.refreshed(expired, other.refresher()).await })
    };
    first.abort();
    assert!(first.await.unwrap_err().is_cancelled());
    slow.open();

    let answer = waiter.await.unwrap().unwrap();
    assert_eq!(answer.upstream.access_token, "upstream-at-1");
    assert_eq!(slow.calls(), 1);
    assert_eq!(other.calls(), 0, "the flight was flown again");
    assert_eq!(
        stored_refresh_token(&store, "g1").await.as_deref(),
        Some("upstream-rt-1")
    );
}

#[actix_web::test]
async fn a_flight_whose_only_caller_goes_away_stores_the_rotated_refresh_token() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let clock = Clock::system();
    let expired = stored(&store, grant("g1")).await;
    let slow = Provider::held(store.clone(), clock.clone());
    let once = Refreshes::new(store.clone(), clock.clone()).start();

    let caller = {
        let (once, expired, slow) = (once.clone(), expired.clone(), slow.clone());
        actix_web::rt::spawn(async move { once.refreshed(expired, slow.refresher()).await })
    };
    while slow.calls() == 0 {
        tokio::task::yield_now().await;
    }
    caller.abort();
    assert!(caller.await.unwrap_err().is_cancelled());
    // The provider rotates the refresh token after the caller went away.
    slow.open();

    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while stored_refresh_token(&store, "g1").await.as_deref() != Some("upstream-rt-1") {
        assert!(
            std::time::Instant::now() < deadline,
            "the rotated refresh token was lost"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // The next refresh, once the provider token expired again, presents the
    // rotated refresh token: the provider accepts it.
    let mut upstream = store.get_grant("g1").await.unwrap().unwrap().upstream;
    upstream.expires_at = Some(100);
    store.set_upstream_tokens("g1", upstream).await.unwrap();
    let next = once
        .refreshed(
            store.get_grant("g1").await.unwrap().unwrap(),
            slow.refresher(),
        )
        .await
        .unwrap();
    assert_eq!(next.upstream.access_token, "upstream-at-2");
    assert_eq!(slow.calls(), 2);
}
