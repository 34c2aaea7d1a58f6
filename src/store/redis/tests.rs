//! The Redis store against the behaviour suite every backend passes, and what only a
//! store shared by replicas promises: several stores on one Redis, outages,
//! invalidations between peers, secrets at rest. Every test runs against a real
//! `redis-server` the harness starts (see `tests/harness.rs`).

mod at_rest;
mod decide;
#[cfg(feature = "dev-idp")]
mod exchange_lock;
mod harness;
mod late;
mod listing;
mod login_state;
mod lost_reply;
mod outage;
mod peers;
mod rate_limits;
mod recent_clients;
mod refresh_lock;
#[allow(dead_code)] // `hold_from` and `holding`: for the integration tests
mod relay;
mod shared;
mod tls;

use std::sync::Arc;

use zeroize::Zeroizing;

use self::harness::RedisServer;
use super::RedisStore;
use crate::store::suite::{Subject, store_behaviour};
use crate::store::{Sealer, Store};

/// The sealer most tests use: key `k1` only.
fn sealer() -> Sealer {
    Sealer::new("k1", [("k1".to_string(), Zeroizing::new([1; 32]))]).unwrap()
}

/// A fresh key prefix, so tests sharing a server never see each other's keys.
fn prefix() -> String {
    format!("tb-test-{}:", uuid::Uuid::new_v4().simple())
}

/// A store on `server` under `prefix`.
fn store_on(server: &RedisServer, prefix: &str) -> RedisStore {
    RedisStore::open(&server.url(), prefix, sealer()).unwrap()
}

fn open() -> Subject {
    let server = RedisServer::shared();
    let store = store_on(&server, &prefix());
    Subject::new(Arc::new(store), server)
}

store_behaviour!(open);

#[actix_web::test]
async fn the_configured_backend_opens_with_its_peers() {
    use crate::config::{Environment, load_str};

    let server = RedisServer::shared();
    let prefix = prefix();
    let text = format!(
        "[server]\npublic_url = \"https://broker.example.com\"\n\
         [upstream]\nissuer = \"https://idp.example.com\"\nclient_id = \"b\"\nclient_secret = \"s\"\n\
         [store]\nbackend = \"redis\"\nurl = \"env:REDIS_URL\"\nkey_prefix = \"{prefix}\"\n\
         [store.encryption]\nkey_id = \"k1\"\nkeys = {{ k1 = \"{}\" }}\n",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [1u8; 32]),
    );
    let env = Environment::from_pairs([("REDIS_URL".to_owned(), server.url())]);
    let config = load_str(&text, &env).unwrap();
    let opened = crate::store::open_shared(&config.store, None).unwrap();
    assert!(opened.peers.is_some());
    assert!(opened.exchange_lock.is_some());
    opened
        .store
        .put_grant(crate::store::suite::grant("g1"))
        .await
        .unwrap();
    // The same records through a store opened by hand: same prefix, same key.
    let by_hand = store_on(&server, &prefix);
    assert!(by_hand.get_grant("g1").await.unwrap().is_some());

    let memory = crate::store::open_shared(&crate::config::StoreConfig::default(), None).unwrap();
    assert!(memory.peers.is_none());
    assert!(memory.exchange_lock.is_none());
}
