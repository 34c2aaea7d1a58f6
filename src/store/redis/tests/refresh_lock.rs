//! Concurrent refreshes of one grant's provider tokens on two "replicas" — two
//! `RefreshOnce` (each an exchange actor), with its own Redis store on one redis-server — against a
//! provider that rotates refresh tokens and refuses reuse (a reuse would revoke the
//! grant, so any second call shows).

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;

use super::harness::RedisServer;
use super::{prefix, store_on};
use crate::actors::exchange::refresh_tests::{Provider, grant};
use crate::actors::exchange::{RefreshError, RefreshOnce, Refreshes};
use crate::clock::Clock;
use crate::store::RefreshLock;
use crate::store::Store;
use crate::store::redis::RedisStore;

const LATENCY: Duration = Duration::from_millis(100);

/// Two replicas' stores on one Redis, and a refresher on each with a lock of `ttl`.
fn replicas(server: &RedisServer, ttl: Duration) -> [(Arc<RedisStore>, RefreshOnce); 2] {
    let prefix = prefix();
    [(), ()].map(|_| {
        let store = Arc::new(store_on(server, &prefix));
        let once = Refreshes::new(store.clone(), Clock::system())
            .with_lock_ttl(store.clone(), ttl)
            .start();
        (store, once)
    })
}

/// `n` refreshes of `g1`, alternating between the replicas, all at once.
async fn burst(
    replicas: &[(Arc<RedisStore>, RefreshOnce)],
    provider: &Arc<Provider>,
    n: usize,
) -> Vec<Result<crate::store::Grant, RefreshError>> {
    join_all((0..n).map(|i| {
        let (_, once) = &replicas[i % replicas.len()];
        let provider = provider.clone();
        async move { once.refreshed(grant("g1"), provider.refresher()).await }
    }))
    .await
}

#[actix_web::test]
async fn fifty_concurrent_refreshes_of_one_grant_on_two_replicas_are_one_provider_call() {
    let server = RedisServer::shared();
    let replicas = replicas(&server, Duration::from_secs(5));
    let store: Arc<dyn Store> = replicas[0].0.clone();
    store.put_grant(grant("g1")).await.unwrap();
    let provider = Provider::new(store.clone(), Clock::system(), LATENCY);

    let answers = burst(&replicas, &provider, 50).await;

    assert_eq!(provider.calls(), 1);
    for answer in answers {
        assert_eq!(answer.unwrap().upstream.access_token, "upstream-at-1");
    }
    let stored = replicas[1].0.get_grant("g1").await.unwrap().unwrap();
    assert_eq!(
        stored.upstream.refresh_token.as_deref(),
        Some("upstream-rt-1")
    );
    assert!(stored.revoked_at.is_none());
}

#[actix_web::test]
async fn a_dead_holders_lock_expires_and_a_waiter_refreshes() {
    let server = RedisServer::shared();
    let ttl = Duration::from_millis(300);
    let [(a, _), (b, refresher_b)] = replicas(&server, ttl);
    a.put_grant(grant("g1")).await.unwrap();
    // Replica A took the lock, then died: nothing releases it.
    assert!(a.try_lock("g1", "dead replica", ttl).await.unwrap());
    let provider = Provider::new(b.clone() as Arc<dyn Store>, Clock::system(), Duration::ZERO);

    let answer = refresher_b
        .refreshed(grant("g1"), provider.refresher())
        .await
        .unwrap();

    assert_eq!(answer.upstream.access_token, "upstream-at-1");
    assert_eq!(provider.calls(), 1);
}

#[actix_web::test]
async fn a_refusal_seen_by_the_holder_sends_no_waiter_to_the_provider() {
    let server = RedisServer::shared();
    let replicas = replicas(&server, Duration::from_secs(5));
    let store: Arc<dyn Store> = replicas[0].0.clone();
    store.put_grant(grant("g1")).await.unwrap();
    let provider = Provider::ended(store.clone(), Clock::system(), LATENCY);

    let answers = burst(&replicas, &provider, 50).await;

    assert_eq!(provider.calls(), 1);
    for answer in answers {
        assert!(
            matches!(answer, Err(RefreshError::Ended | RefreshError::Revoked)),
            "{answer:?}"
        );
    }
}

#[actix_web::test]
async fn redis_down_is_a_store_error_and_no_provider_call() {
    let server = RedisServer::start();
    let replicas = replicas(&server, Duration::from_secs(5));
    let store: Arc<dyn Store> = replicas[0].0.clone();
    store.put_grant(grant("g1")).await.unwrap();
    let provider = Provider::new(store.clone(), Clock::system(), Duration::ZERO);
    drop(server);

    let answers = burst(&replicas, &provider, 2).await;

    assert_eq!(provider.calls(), 0);
    for answer in answers {
        assert!(matches!(answer, Err(RefreshError::Store(_))), "{answer:?}");
    }
}

#[actix_web::test]
async fn a_holder_whose_request_is_dropped_keeps_its_lock_until_the_refresh_is_stored() {
    use ::redis::Commands;

    let server = RedisServer::shared();
    let prefix = prefix();
    let store = Arc::new(store_on(&server, &prefix));
    store.put_grant(grant("g1")).await.unwrap();
    // A lock that would outlive the test: only a release removes it.
    let once = Refreshes::new(store.clone(), Clock::system())
        .with_lock_ttl(store.clone(), Duration::from_secs(600))
        .start();
    let slow = Provider::held(store.clone(), Clock::system());
    let lock = crate::store::redis::keys::Keys::new(&prefix).refresh_lock("g1");
    let mut raw = server.connection();

    let holder = {
        let (once, slow) = (once.clone(), slow.clone());
        actix_web::rt::spawn(async move { once.refreshed(grant("g1"), slow.refresher()).await })
    };
    while slow.calls() == 0 {
        actix_web::rt::time::sleep(Duration::from_millis(5)).await;
    }
    holder.abort();
    assert!(holder.await.unwrap_err().is_cancelled());
    // Its refresh is still at the provider: another replica must not start one
    // with the refresh token the provider is rotating.
    actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    assert!(raw.exists::<_, bool>(&lock).unwrap());
    slow.open();

    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while raw.exists::<_, bool>(&lock).unwrap() {
        assert!(
            std::time::Instant::now() < deadline,
            "the lock was not released after the refresh"
        );
        actix_web::rt::time::sleep(Duration::from_millis(10)).await;
    }
    let stored = store.get_grant("g1").await.unwrap().unwrap();
    assert!(stored.revoked_at.is_none());
    assert_eq!(
        stored.upstream.refresh_token.as_deref(),
        Some("upstream-rt-1")
    );
    assert_eq!(slow.calls(), 1);
}
