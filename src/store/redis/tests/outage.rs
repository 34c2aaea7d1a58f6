//! Redis going away and coming back: calls fail as `Unavailable` (answered 503) —
//! quickly, without a panic — and the same store serves again once Redis is back.

use std::time::{Duration, Instant};

use super::harness::RedisServer;
use super::{prefix, store_on};
use crate::store::suite::{client, grant, record};
use crate::store::{RateLimits, RecentClients, RedisStore, Store, StoreError};

/// Well above the store's connect and reconnect budget, well below a test timeout.
const ANSWER_WITHIN: Duration = Duration::from_secs(10);

fn unavailable<T: std::fmt::Debug>(result: Result<T, StoreError>) {
    assert!(
        matches!(result, Err(StoreError::Unavailable(_))),
        "{result:?}"
    );
}

/// Every kind of call — reads, `MULTI` writes, scripts — while Redis is down.
async fn every_call_is_unavailable(store: &RedisStore) {
    let started = Instant::now();
    unavailable(store.get_grant("g1").await);
    unavailable(store.put_grant(grant("g2")).await);
    unavailable(store.put_client(client("c2", 1, None)).await);
    unavailable(store.count_clients().await);
    unavailable(store.probe().await);
    unavailable(
        store
            .rotate_refresh([1; 32], record("g1", 5), 5, Duration::ZERO)
            .await,
    );
    unavailable(store.revoke_grant("g1", 5).await);
    unavailable(store.sweep_grants(5, 0, 0).await);
    let rate = crate::domain::rate_limit::Rate {
        count: 1,
        period_ms: 60_000,
        burst: 1,
    };
    unavailable(
        store
            .admit("registration", "203.0.113.9", rate, 5_000)
            .await,
    );
    unavailable(store.recall(&[1; 32]).await);
    unavailable(
        store
            .remember(&[1; 32], "c1", Duration::from_secs(60))
            .await,
    );
    assert!(started.elapsed() < ANSWER_WITHIN, "{:?}", started.elapsed());
}

/// Retries `op` until it succeeds (the first call after a restart may meet the dead
/// connection), within `ANSWER_WITHIN`.
async fn eventually<T, F, Fut>(mut op: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    let deadline = Instant::now() + ANSWER_WITHIN;
    loop {
        match op().await {
            Ok(value) => return value,
            Err(e) if Instant::now() > deadline => panic!("store never came back: {e}"),
            Err(StoreError::Unavailable(_)) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("unexpected error after a restart: {e}"),
        }
    }
}

#[actix_web::test]
async fn a_stopped_redis_makes_calls_unavailable_and_a_restarted_one_serves_again() {
    let server = RedisServer::start();
    let store = store_on(&server, &prefix());
    store.put_grant(grant("g1")).await.unwrap();

    server.stop();
    every_call_is_unavailable(&store).await;
    // Still down on a second round: the store keeps answering, not hanging.
    every_call_is_unavailable(&store).await;

    server.restart();
    // Nothing was persisted, so Redis comes back empty; the same store writes again.
    eventually(|| store.put_grant(grant("g3"))).await;
    assert_eq!(store.get_grant("g3").await.unwrap(), Some(grant("g3")));
    assert!(store.get_grant("g1").await.unwrap().is_none());
}

#[actix_web::test]
async fn a_store_opened_while_redis_is_down_works_once_it_is_up() {
    let server = RedisServer::start();
    server.stop();
    // Opening never connects, so a broker starts — and answers 503 — without Redis.
    let store = store_on(&server, &prefix());
    unavailable(store.get_client("c1").await);
    server.restart();
    eventually(|| store.put_client(client("c1", 1, None))).await;
    assert_eq!(store.count_clients().await.unwrap(), 1);
}
