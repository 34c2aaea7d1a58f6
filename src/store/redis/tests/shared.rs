//! Several stores — as several replicas hold them — on one Redis.

use std::sync::{Arc, Barrier};
use std::time::Duration;

use super::harness::RedisServer;
use super::{prefix, store_on};
use crate::store::suite::{client, grant, record};
use crate::store::{RotateOutcome, Store};

#[actix_web::test]
async fn two_stores_on_one_redis_see_each_others_writes() {
    let server = RedisServer::shared();
    let prefix = prefix();
    let (a, b) = (store_on(&server, &prefix), store_on(&server, &prefix));
    a.put_client(client("c1", 10, None)).await.unwrap();
    a.put_grant(grant("g1")).await.unwrap();
    let token = record("g1", 0);
    a.put_refresh(token.clone()).await.unwrap();

    assert_eq!(
        b.get_client("c1").await.unwrap(),
        Some(client("c1", 10, None))
    );
    assert_eq!(b.count_clients().await.unwrap(), 1);
    assert_eq!(
        b.find_refresh(&token.hash).await.unwrap(),
        Some(token.clone())
    );
    b.touch_client("c1", 20).await.unwrap();
    assert_eq!(
        a.get_client("c1").await.unwrap().unwrap().last_used_at,
        Some(20)
    );
    // Revoked on one replica, gone on the other.
    b.revoke_grant("g1", 30).await.unwrap();
    assert!(a.find_refresh(&token.hash).await.unwrap().is_none());
    assert_eq!(
        a.get_grant("g1").await.unwrap().unwrap().revoked_at,
        Some(30)
    );
    // Another prefix is another broker: it sees none of it.
    let other = store_on(&server, &super::prefix());
    assert!(other.get_client("c1").await.unwrap().is_none());
    assert!(other.get_grant("g1").await.unwrap().is_none());
    assert_eq!(other.count_clients().await.unwrap(), 0);
}

/// Replicas presenting one refresh token at once, half through each store (its own
/// connection): Redis runs the rotation script once at a time, so one rotation wins.
#[test]
fn concurrent_rotation_from_two_stores_rotates_once() {
    let server = RedisServer::shared();
    let prefix = prefix();
    let stores: [Arc<dyn Store>; 2] = [
        Arc::new(store_on(&server, &prefix)),
        Arc::new(store_on(&server, &prefix)),
    ];
    let runtime = || {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
    };
    let first = runtime().block_on(crate::store::suite::with_token(&*stores[0]));
    let n = 32;
    let start = Arc::new(Barrier::new(n));
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let (store, start) = (stores[i % 2].clone(), start.clone());
            std::thread::spawn(move || {
                let next = record("g1", 5);
                start.wait();
                runtime().block_on(store.rotate_refresh(first, next, 5, Duration::ZERO))
            })
        })
        .collect();
    let outcomes: Vec<RotateOutcome> = handles
        .into_iter()
        .map(|h| h.join().unwrap().unwrap())
        .collect();
    let rotated = outcomes
        .iter()
        .filter(|o| matches!(o, RotateOutcome::Rotated { .. }))
        .count();
    assert_eq!(rotated, 1, "{outcomes:?}");
    assert!(
        outcomes.contains(&RotateOutcome::Replayed {
            grant_id: "g1".into()
        }),
        "{outcomes:?}"
    );
    let grant = runtime()
        .block_on(stores[1].get_grant("g1"))
        .unwrap()
        .unwrap();
    assert_eq!(grant.revoked_at, Some(5));
}

/// Refresh tokens carry a native TTL — their remaining life on the broker's clock
/// when written — so Redis drops them on its own; grants and clients have none.
#[actix_web::test]
async fn refresh_tokens_expire_natively_with_their_remaining_life() {
    let server = RedisServer::shared();
    let prefix = prefix();
    let store = store_on(&server, &prefix);
    let first = crate::store::suite::with_token(&store).await;
    let next = record("g1", 400); // expires at 1 400, presented at 400
    let next_hash = next.hash;
    store
        .rotate_refresh(first, next, 400, Duration::ZERO)
        .await
        .unwrap();
    store.put_client(client("c1", 10, None)).await.unwrap();
    let mut conn = server.connection();
    let ttl = |conn: &mut ::redis::Connection, key: String| -> i64 {
        ::redis::cmd("TTL").arg(key).query(conn).unwrap()
    };
    let keys = super::super::keys::Keys::new(&prefix);
    let first_ttl = ttl(&mut conn, keys.refresh(&first));
    assert!((990..=1_000).contains(&first_ttl), "{first_ttl}");
    let next_ttl = ttl(&mut conn, keys.refresh(&next_hash));
    assert!((990..=1_000).contains(&next_ttl), "{next_ttl}");
    assert_eq!(ttl(&mut conn, keys.grant("g1")), -1);
    assert_eq!(ttl(&mut conn, keys.client("c1")), -1);
    // What Redis expired is gone for the store too, and the sweep tidies the index.
    let _: () = ::redis::cmd("DEL")
        .arg(keys.refresh(&first))
        .query(&mut conn)
        .unwrap();
    assert!(store.find_refresh(&first).await.unwrap().is_none());
    store.sweep_grants(500, 0, 0).await.unwrap();
    let members: Vec<String> = ::redis::cmd("SMEMBERS")
        .arg(keys.grant_tokens("g1"))
        .query(&mut conn)
        .unwrap();
    assert_eq!(members, [super::super::keys::hex(&next_hash)]);
}

/// Two replicas' first starts on an empty Redis, at once: both end up signing with
/// the one key that was stored.
#[test]
fn two_replicas_starting_together_end_with_one_signing_key() {
    let server = RedisServer::shared();
    let prefix = prefix();
    let config = crate::config::TokensConfig {
        mode: crate::config::TokenMode::Issue,
        access_token_ttl: Duration::from_secs(900),
        algorithm: "ES256".to_owned(),
        key_file: None,
        key_grace: Duration::from_secs(3_600),
        identity_claims: false,
    };
    for _ in 0..5 {
        let prefix = format!("{prefix}{}:", uuid::Uuid::new_v4().simple());
        let start = Arc::new(Barrier::new(2));
        let replicas: Vec<_> = (0..2)
            .map(|_| {
                let store: Arc<dyn Store> = Arc::new(store_on(&server, &prefix));
                let (start, config) = (start.clone(), config.clone());
                std::thread::spawn(move || {
                    start.wait();
                    let keys =
                        crate::tokens::signing::SigningKeys::in_store(store, &config, 0).unwrap();
                    keys.jwks(0)
                })
            })
            .collect();
        let published: Vec<_> = replicas.into_iter().map(|r| r.join().unwrap()).collect();
        assert_eq!(published[0]["keys"].as_array().unwrap().len(), 1);
        assert_eq!(published[0], published[1]);
    }
}
