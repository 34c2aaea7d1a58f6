//! A copy of the database file yields no usable token, sealed values stay with their
//! rows, and key rotation keeps old values readable.

use std::path::Path;

use rusqlite::Connection;

use super::{key, reopen, temp_db};
use crate::store::suite::{client, grant};
use crate::store::{
    ClientOrigin, Grant, Sealer, SqliteStore, Store, StoreError, StoredClient, UpstreamTokens,
};

const SECRETS: [&str; 5] = [
    "upstream-access-SECRET-1",
    "upstream-refresh-SECRET-2",
    "proxied-client-SECRET-3",
    "registration-access-SECRET-4",
    "rotated-access-SECRET-5",
];
/// Stored in the clear on purpose, to show the scan reads the real data.
const VISIBLE: &str = "subject-in-the-clear-7";

fn secret_grant() -> Grant {
    Grant {
        subject: VISIBLE.into(),
        upstream: UpstreamTokens {
            access_token: SECRETS[0].into(),
            refresh_token: Some(SECRETS[1].into()),
            expires_at: Some(100),
            scope: Some("openid".into()),
            obtained_at: None,
            identity: None,
        },
        ..grant("g1")
    }
}

fn secret_client() -> StoredClient {
    StoredClient {
        origin: ClientOrigin::Proxied {
            upstream_client_id: "up-1".into(),
            upstream_client_secret: Some(SECRETS[2].into()),
            registration_client_uri: Some("https://idp.example/register/up-1".into()),
            registration_access_token: Some(SECRETS[3].into()),
            upstream_secret_expires_at: None,
        },
        ..client("c1", 10, None)
    }
}

/// Every byte of every file sqlite keeps in `dir` (database, WAL, shared memory).
fn raw_bytes(dir: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        all.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }
    all
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[actix_web::test]
async fn a_stolen_file_yields_no_usable_token() {
    let (dir, path) = temp_db();
    let store = reopen(&path);
    store.put_client(secret_client()).await.unwrap();
    store.put_grant(secret_grant()).await.unwrap();
    let rotated = UpstreamTokens {
        access_token: SECRETS[4].into(),
        ..secret_grant().upstream
    };
    store.set_upstream_tokens("g1", rotated).await.unwrap();
    // Still open: the data is in the WAL.
    let live = raw_bytes(dir.path());
    // Closed: checkpointed into the main file.
    drop(store);
    let closed = raw_bytes(dir.path());
    for bytes in [&live, &closed] {
        assert!(contains(bytes, VISIBLE), "the scan must see the data");
        for secret in SECRETS {
            assert!(!contains(bytes, secret), "{secret} is readable in the file");
        }
    }
}

#[actix_web::test]
async fn a_sealed_value_moved_to_another_row_does_not_open() {
    let (_dir, path) = temp_db();
    let store = reopen(&path);
    store.put_grant(secret_grant()).await.unwrap();
    store.put_grant(grant("g2")).await.unwrap();
    let raw = Connection::open(&path).unwrap();
    raw.execute(
        "UPDATE grants SET upstream = (SELECT upstream FROM grants WHERE grant_id = 'g1') \
         WHERE grant_id = 'g2'",
        [],
    )
    .unwrap();
    assert!(matches!(
        store.get_grant("g2").await,
        Err(StoreError::Corrupt(_))
    ));
    assert_eq!(store.get_grant("g1").await.unwrap(), Some(secret_grant()));
}

fn sealed_key_id(path: &Path, grant_id: &str) -> String {
    let raw = Connection::open(path).unwrap();
    let sealed: Vec<u8> = raw
        .query_row(
            "SELECT upstream FROM grants WHERE grant_id = ?1",
            [grant_id],
            |r| r.get(0),
        )
        .unwrap();
    Sealer::key_id_of(&sealed).unwrap().to_owned()
}

#[actix_web::test]
async fn values_sealed_under_a_retired_key_open_after_rotation() {
    let (_dir, path) = temp_db();
    let store = reopen(&path);
    store.put_client(secret_client()).await.unwrap();
    store.put_grant(secret_grant()).await.unwrap();
    drop(store);

    let both = [("k1".to_string(), key(1)), ("k2".to_string(), key(2))];
    let rotated = SqliteStore::open(&path, Sealer::new("k2", both).unwrap()).unwrap();
    assert_eq!(rotated.get_grant("g1").await.unwrap(), Some(secret_grant()));
    assert_eq!(
        rotated.get_client("c1").await.unwrap(),
        Some(secret_client())
    );
    rotated.put_grant(grant("g2")).await.unwrap();
    assert_eq!(sealed_key_id(&path, "g1"), "k1");
    assert_eq!(sealed_key_id(&path, "g2"), "k2");
    drop(rotated);

    // Dropping the old key too early makes its values unreadable, and says why.
    let only_new = SqliteStore::open(
        &path,
        Sealer::new("k2", [("k2".to_string(), key(2))]).unwrap(),
    )
    .unwrap();
    assert!(only_new.get_grant("g2").await.unwrap().is_some());
    match only_new.get_grant("g1").await {
        Err(StoreError::Corrupt(message)) => assert!(message.contains("`k1`"), "{message}"),
        other => panic!("expected a corrupt record, got {other:?}"),
    }
}

#[actix_web::test]
async fn a_stolen_file_holds_no_signing_key() {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;

    use crate::tokens::keypair::{KeyPair, SigningAlg};

    let (dir, path) = temp_db();
    let store = reopen(&path);
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
    let live = raw_bytes(dir.path());
    drop(store);
    let closed = raw_bytes(dir.path());
    let der = pair.pkcs8();
    let encoded = STANDARD.encode(der);
    for bytes in [&live, &closed] {
        assert!(contains(bytes, &pair.kid), "the scan must see the record");
        assert!(
            !bytes.windows(der.len()).any(|w| w == der),
            "the PKCS#8 key is in the file"
        );
        assert!(!contains(bytes, &encoded), "its base64 is in the file");
    }
    assert_eq!(reopen(&path).signing_keys().await.unwrap(), vec![key]);
}
