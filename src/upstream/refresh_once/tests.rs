//! In one process: concurrent refreshes of a grant share one provider call, a grant
//! whose provider token is fresh costs none, and a flight whose caller goes away is
//! taken over. (Across replicas: `store::redis::tests::refresh_lock`.)

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::join_all;

use super::{RefreshError, RefreshOnce};
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
        })
    }

    /// A provider that refuses every refresh token (the user logged out there).
    pub(crate) fn ended(store: Arc<dyn Store>, clock: Clock, latency: Duration) -> Arc<Self> {
        let provider = Self::new(store, clock, latency);
        *provider.current.lock().unwrap() = "nothing valid".to_owned();
        provider
    }

    pub(crate) fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// One refresh, as `http::upstream_refresh` does it: new tokens stored on the
    /// grant, or the grant revoked on a refusal.
    pub(crate) async fn refresh(&self, grant: Grant) -> Result<Grant, RefreshError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        tokio::time::sleep(self.latency).await;
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
    let once = RefreshOnce::new(store.clone(), clock.clone());

    let answers = join_all((0..50).map(|_| {
        once.refreshed(expired.clone(), |g| {
            let provider = provider.clone();
            async move { provider.refresh(g).await }
        })
    }))
    .await;

    assert_eq!(provider.calls(), 1);
    for answer in answers {
        assert_eq!(answer.unwrap().upstream.access_token, "upstream-at-1");
    }
    // Later callers holding the expired grant read the refreshed one: no call.
    let again = once
        .refreshed(expired, |g| provider.refresh(g))
        .await
        .unwrap();
    assert_eq!(again.upstream.access_token, "upstream-at-1");
    assert_eq!(provider.calls(), 1);
}

#[actix_web::test]
async fn a_fresh_or_unrefreshable_provider_token_costs_no_call() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let clock = Clock::system();
    let provider = Provider::new(store.clone(), clock.clone(), Duration::ZERO);
    let once = RefreshOnce::new(store.clone(), clock.clone());
    let mut fresh = grant("fresh");
    fresh.upstream.expires_at = Some(clock.unix() + 60);
    let mut no_refresh_token = grant("plain");
    no_refresh_token.upstream.refresh_token = None;
    for g in [fresh, no_refresh_token] {
        let answer = once.refreshed(g.clone(), |g| provider.refresh(g)).await;
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
    let once = RefreshOnce::new(store.clone(), clock.clone());

    let answers = join_all((0..20).map(|_| {
        once.refreshed(expired.clone(), |g| {
            let provider = provider.clone();
            async move { provider.refresh(g).await }
        })
    }))
    .await;

    assert_eq!(provider.calls(), 1);
    assert!(
        answers
            .iter()
            .all(|a| matches!(a, Err(RefreshError::Ended)))
    );
    // The next caller reads the revoked grant: no call with the dead token.
    let next = once.refreshed(expired, |g| provider.refresh(g)).await;
    assert!(matches!(next, Err(RefreshError::Revoked)), "{next:?}");
    assert_eq!(provider.calls(), 1);
}

#[actix_web::test]
async fn a_flight_whose_caller_goes_away_is_taken_over_by_a_waiter() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let clock = Clock::system();
    let expired = stored(&store, grant("g1")).await;
    // The first caller's provider never answers; its request is then dropped.
    let stuck = Provider::new(store.clone(), clock.clone(), Duration::from_secs(3600));
    let provider = Provider::new(store.clone(), clock.clone(), Duration::ZERO);
    let once = RefreshOnce::new(store.clone(), clock.clone());

    let first = {
        let (once, expired, stuck) = (once.clone(), expired.clone(), stuck.clone());
        actix_web::rt::spawn(async move {
            let _ = once.refreshed(expired, |g| stuck.refresh(g)).await;
        })
    };
    while stuck.calls() == 0 {
        tokio::task::yield_now().await;
    }
    let waiter = {
        let (once, expired, provider) = (once.clone(), expired.clone(), provider.clone());
        actix_web::rt::spawn(async move { once.refreshed(expired, |g| provider.refresh(g)).await })
    };
    first.abort();
    let answer = waiter.await.unwrap().unwrap();
    assert_eq!(answer.upstream.access_token, "upstream-at-1");
    assert_eq!(provider.calls(), 1);
}
