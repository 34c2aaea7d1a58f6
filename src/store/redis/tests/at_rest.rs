//! A dump of Redis yields no usable secret: the provider's tokens and upstream client
//! credentials are sealed, refresh tokens and client secrets only hashed. Sealed
//! values are bound to their record, and unreadable values are `Corrupt`.

use ::redis::Connection;

use super::harness::RedisServer;
use super::{prefix, sealer, store_on};
use crate::domain::refresh;
use crate::store::suite::{client, grant};
use crate::store::{
    ClientOrigin, Grant, RedisStore, RefreshRecord, Sealer, Store, StoreError, StoredClient,
    UpstreamTokens,
};

/// Every key under `prefix` and every value in it, as raw bytes.
fn everything(conn: &mut Connection, prefix: &str) -> Vec<Vec<u8>> {
    let keys: Vec<String> = ::redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query(conn)
        .unwrap();
    assert!(!keys.is_empty());
    let mut out = Vec::new();
    for key in keys {
        let kind: String = ::redis::cmd("TYPE").arg(&key).query(conn).unwrap();
        let read = match kind.as_str() {
            "string" => "GET",
            "hash" => "HGETALL",
            "set" => "SMEMBERS",
            "zset" => "ZRANGE",
            other => panic!("unexpected {other} at {key}"),
        };
        let mut cmd = ::redis::cmd(read);
        cmd.arg(&key);
        if read == "ZRANGE" {
            cmd.arg(0).arg(-1).arg("WITHSCORES");
        }
        let values: Vec<Vec<u8>> = cmd.query(conn).unwrap();
        out.push(key.into_bytes());
        out.extend(values);
    }
    out
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[actix_web::test]
async fn a_scan_of_redis_finds_none_of_the_secrets_stored() {
    let server = RedisServer::shared();
    let prefix = prefix();
    let store = store_on(&server, &prefix);
    let (client_secret, secret_hash) = refresh::new_token();
    let proxied = StoredClient {
        secret_hash: Some(secret_hash),
        origin: ClientOrigin::Proxied {
            upstream_client_id: "up-1".into(),
            upstream_client_secret: Some("upstream-client-secret-3f9a".into()),
            registration_client_uri: Some("https://idp.example/reg/up-1".into()),
            registration_access_token: Some("registration-access-token-77c1".into()),
            upstream_secret_expires_at: None,
        },
        ..client("proxied", 1, None)
    };
    store.put_client(proxied.clone()).await.unwrap();
    let tokens = UpstreamTokens {
        access_token: "provider-access-token-e4d2".into(),
        refresh_token: Some("provider-refresh-token-91b0".into()),
        expires_at: Some(100),
        scope: Some("openid".into()),
        obtained_at: None,
        identity: None,
    };
    store
        .put_grant(Grant {
            upstream: tokens.clone(),
            ..grant("g1")
        })
        .await
        .unwrap();
    let refreshed = UpstreamTokens {
        access_token: "provider-access-token-after-refresh-5a6b".into(),
        ..tokens
    };
    store
        .set_upstream_tokens("g1", refreshed.clone())
        .await
        .unwrap();
    let (first, first_hash) = refresh::new_token();
    let (second, second_hash) = refresh::new_token();
    let record = |hash| RefreshRecord {
        hash,
        ..crate::store::suite::record("g1", 0)
    };
    store.put_refresh(record(first_hash)).await.unwrap();
    store
        .rotate_refresh(
            first_hash,
            record(second_hash),
            5,
            std::time::Duration::ZERO,
        )
        .await
        .unwrap();

    let secrets = [
        client_secret.as_str(),
        "upstream-client-secret-3f9a",
        "registration-access-token-77c1",
        "provider-access-token-e4d2",
        "provider-refresh-token-91b0",
        "provider-access-token-after-refresh-5a6b",
        first.as_str(),
        second.as_str(),
    ];
    let dump = everything(&mut server.connection(), &prefix);
    for secret in secrets {
        assert!(
            !dump.iter().any(|value| contains(value, secret)),
            "`{secret}` found in Redis"
        );
    }
    // What is not secret is stored plainly (the scan did read the records) ...
    assert!(
        dump.iter()
            .any(|v| contains(v, "https://idp.example/reg/up-1"))
    );
    // ... and the store opens what it sealed.
    assert_eq!(store.get_client("proxied").await.unwrap(), Some(proxied));
    assert_eq!(
        store.get_grant("g1").await.unwrap().unwrap().upstream,
        refreshed
    );
}

/// Copies `field` of one hash onto another.
fn copy_field(conn: &mut Connection, from: &str, to: &str, field: &str) {
    let value: Vec<u8> = ::redis::cmd("HGET")
        .arg(from)
        .arg(field)
        .query(conn)
        .unwrap();
    let _: i64 = ::redis::cmd("HSET")
        .arg(to)
        .arg(field)
        .arg(value)
        .query(conn)
        .unwrap();
}

fn corrupt<T: std::fmt::Debug>(result: Result<T, StoreError>) {
    assert!(matches!(result, Err(StoreError::Corrupt(_))), "{result:?}");
}

#[actix_web::test]
async fn a_sealed_value_moved_to_another_record_or_under_another_key_does_not_open() {
    let server = RedisServer::shared();
    let prefix = prefix();
    let store = store_on(&server, &prefix);
    let mut alice = grant("g1");
    alice.upstream.access_token = "alice-provider-token".into();
    store.put_grant(alice).await.unwrap();
    store.put_grant(grant("g2")).await.unwrap();
    let keys = super::super::keys::Keys::new(&prefix);
    let mut conn = server.connection();
    copy_field(&mut conn, &keys.grant("g1"), &keys.grant("g2"), "upstream");
    corrupt(store.get_grant("g2").await);
    assert!(store.get_grant("g1").await.is_ok());

    let other_key =
        Sealer::new("k2", [("k2".to_string(), zeroize::Zeroizing::new([2; 32]))]).unwrap();
    let stranger = RedisStore::open(&server.url(), &prefix, other_key).unwrap();
    corrupt(stranger.get_grant("g1").await);
    // A store that still has the retired key opens it.
    let rotated = Sealer::new(
        "k2",
        [
            ("k1".to_string(), zeroize::Zeroizing::new([1; 32])),
            ("k2".to_string(), zeroize::Zeroizing::new([2; 32])),
        ],
    )
    .unwrap();
    let after_rotation = RedisStore::open(&server.url(), &prefix, rotated).unwrap();
    assert!(after_rotation.get_grant("g1").await.unwrap().is_some());
    drop(sealer());
}

#[actix_web::test]
async fn values_of_the_wrong_shape_are_corrupt_not_a_panic() {
    let server = RedisServer::shared();
    let prefix = prefix();
    let store = store_on(&server, &prefix);
    let keys = super::super::keys::Keys::new(&prefix);
    let mut conn = server.connection();
    store.put_client(client("c1", 1, None)).await.unwrap();
    let _: i64 = ::redis::cmd("HSET")
        .arg(keys.client("c1"))
        .arg("issued_at")
        .arg("yesterday")
        .query(&mut conn)
        .unwrap();
    corrupt(store.get_client("c1").await);
    let _: () = ::redis::cmd("SET")
        .arg(keys.grant("g1"))
        .arg("not a hash")
        .query(&mut conn)
        .unwrap();
    corrupt(store.get_grant("g1").await);
    store.put_grant(grant("g2")).await.unwrap();
    let _: i64 = ::redis::cmd("HDEL")
        .arg(keys.grant("g2"))
        .arg("subject")
        .query(&mut conn)
        .unwrap();
    corrupt(store.get_grant("g2").await);

    // A script meeting an unreadable value stops before writing anything.
    let first = crate::store::suite::with_token(&store).await;
    let _: i64 = ::redis::cmd("HSET")
        .arg(keys.refresh(&first))
        .arg("expires_at")
        .arg("soon")
        .query(&mut conn)
        .unwrap();
    let next = crate::store::suite::record("g1", 5);
    let next_hash = next.hash;
    corrupt(
        store
            .rotate_refresh(first, next, 5, std::time::Duration::ZERO)
            .await,
    );
    corrupt(store.find_refresh(&first).await);
    assert!(store.find_refresh(&next_hash).await.unwrap().is_none());
    // The sweep leaves what it cannot read and goes on with the rest: idle g2 goes,
    // g1 keeps its unreadable token.
    assert_eq!(store.sweep_grants(5_000, 0, 1).await.unwrap(), 1);
    assert!(store.get_grant("g1").await.unwrap().is_some());
}

#[actix_web::test]
async fn a_scan_of_redis_finds_no_signing_key() {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;

    use crate::tokens::keypair::{KeyPair, SigningAlg};

    let server = RedisServer::shared();
    let prefix = prefix();
    let store = store_on(&server, &prefix);
    let pair = KeyPair::generate(SigningAlg::Es256).unwrap();
    let key = crate::store::StoredSigningKey {
        kid: pair.kid.clone(),
        alg: "ES256".into(),
        private_key: zeroize::Zeroizing::new(pair.pkcs8().to_vec()),
        created_at: 1,
        activates_at: 0,
    };
    store
        .add_signing_keys_if_none(vec![key.clone()])
        .await
        .unwrap();
    let dump = everything(&mut server.connection(), &prefix);
    let der = pair.pkcs8();
    assert!(
        !dump.iter().any(|v| v.windows(der.len()).any(|w| w == der)),
        "the PKCS#8 key is in Redis"
    );
    let encoded = STANDARD.encode(der);
    assert!(
        !dump.iter().any(|v| contains(v, &encoded)),
        "its base64 is in Redis"
    );
    assert!(
        dump.iter().any(|v| contains(v, &pair.kid)),
        "the scan read the record"
    );
    assert_eq!(store.signing_keys().await.unwrap(), vec![key]);
}
