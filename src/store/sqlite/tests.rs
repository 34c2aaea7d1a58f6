//! The sqlite store against the behaviour suite every backend passes, and what only a
//! durable backend promises: restarts, schema versions, secrets at rest.

mod at_rest;
mod restart;
mod schema;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use zeroize::Zeroizing;

use super::SqliteStore;
use crate::config::{EncryptionConfig, StoreBackend, StoreConfig, StoreKey};
use crate::store::Sealer;
use crate::store::suite::{Subject, store_behaviour};

fn open() -> Subject {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("store.db"), sealer()).unwrap();
    Subject::new(Arc::new(store), dir)
}

store_behaviour!(open);

fn key(byte: u8) -> Zeroizing<[u8; 32]> {
    Zeroizing::new([byte; 32])
}

/// The sealer most tests use: key `k1` only.
fn sealer() -> Sealer {
    Sealer::new("k1", [("k1".to_string(), key(1))]).unwrap()
}

/// A fresh directory and the database path inside it.
fn temp_db() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    (dir, path)
}

fn reopen(path: &Path) -> SqliteStore {
    SqliteStore::open(path, sealer()).unwrap()
}

#[actix_web::test]
async fn the_configured_backend_opens() {
    let (_dir, path) = temp_db();
    let encryption = EncryptionConfig {
        key_id: "k1".into(),
        keys: [("k1".to_string(), StoreKey::new([1; 32]))].into(),
    };
    let sqlite = StoreConfig {
        backend: StoreBackend::Sqlite { path: path.clone() },
        encryption: Some(encryption),
        key_file: None,
    };
    let store = crate::store::open(&sqlite).unwrap();
    store
        .put_grant(crate::store::suite::grant("g1"))
        .await
        .unwrap();
    drop(store);
    assert!(reopen(&path).get_grant_blocking("g1").is_some());

    let memory = crate::store::open(&StoreConfig::default()).unwrap();
    assert_eq!(memory.count_clients().await.unwrap(), 0);
    let unsealed = StoreConfig {
        encryption: None,
        ..sqlite
    };
    assert!(crate::store::open(&unsealed).is_err());
}

#[actix_web::test]
async fn without_configured_keys_the_store_seals_with_a_key_file_made_once() {
    let (dir, path) = temp_db();
    let key_file = dir.path().join("store.db.store-key");
    let config = StoreConfig {
        backend: StoreBackend::Sqlite { path: path.clone() },
        encryption: None,
        key_file: Some(key_file.clone()),
    };
    let store = crate::store::open(&config).unwrap();
    store
        .put_grant(crate::store::suite::grant("g1"))
        .await
        .unwrap();
    drop(store);
    let key = std::fs::read(&key_file).unwrap();
    let again = crate::store::open(&config).unwrap();
    assert!(
        again.get_grant("g1").await.unwrap().is_some(),
        "opens what it sealed"
    );
    assert_eq!(std::fs::read(&key_file).unwrap(), key, "never regenerated");
    let sealed_under: String = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("SELECT upstream FROM grants", [], |r| {
            r.get::<_, Vec<u8>>(0)
        })
        .map(|sealed| Sealer::key_id_of(&sealed).unwrap().to_owned())
        .unwrap();
    assert!(sealed_under.starts_with("file-"), "{sealed_under}");
}

impl SqliteStore {
    /// A grant read on the calling thread (tests outside a runtime).
    fn get_grant_blocking(&self, grant_id: &str) -> Option<crate::store::Grant> {
        let conn = self.inner.conn.lock().unwrap();
        super::grants::get_grant(&conn, &self.inner.sealer, grant_id).unwrap()
    }
}

/// Two processes sharing the file (a restart overlapping the old process, an admin
/// command) each have their own connection: `BEGIN IMMEDIATE`, not the mutex, keeps
/// rotation atomic between them.
#[test]
fn connections_sharing_the_file_rotate_a_token_once() {
    use crate::store::suite::{record, with_token};
    use crate::store::{RotateOutcome, Store};
    use std::sync::Barrier;

    let (_dir, path) = temp_db();
    let runtime = || {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
    };
    let first = runtime().block_on(with_token(&reopen(&path)));
    let n = 8;
    let start = Arc::new(Barrier::new(n));
    let handles: Vec<_> = (0..n)
        .map(|_| {
            let (store, start) = (reopen(&path), start.clone());
            std::thread::spawn(move || {
                let next = record("g1", 5);
                start.wait();
                runtime().block_on(store.rotate_refresh(first, next, 5, std::time::Duration::ZERO))
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
    // The first loser revokes the grant; later ones find it revoked.
    assert!(
        outcomes
            .iter()
            .any(|o| matches!(o, RotateOutcome::Replayed { .. })),
        "{outcomes:?}"
    );
}

/// Two broker processes starting at once on one file (a restart overlapping the old
/// process): `BEGIN IMMEDIATE` lets only the first store its first signing key.
#[test]
fn connections_sharing_the_file_store_one_first_signing_key() {
    use crate::store::Store;
    use crate::store::suite::signing_key;
    use std::sync::Barrier;

    let (_dir, path) = temp_db();
    let n = 8;
    let start = Arc::new(Barrier::new(n));
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let (store, start) = (reopen(&path), start.clone());
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .unwrap();
                start.wait();
                runtime.block_on(
                    store.add_signing_keys_if_none(vec![signing_key(&format!("k{i}"), 0)]),
                )
            })
        })
        .collect();
    let stored = handles
        .into_iter()
        .map(|h| h.join().unwrap().unwrap())
        .filter(|stored| *stored)
        .count();
    assert_eq!(stored, 1);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    assert_eq!(
        runtime
            .block_on(reopen(&path).signing_keys())
            .unwrap()
            .len(),
        1
    );
}

#[actix_web::test]
async fn a_spent_assertion_stays_spent_across_a_restart() {
    use crate::store::Store as _;
    let (_dir, path) = temp_db();
    let store = reopen(&path);
    assert!(store.spend_assertion([9; 32], 1_000, 10).await.unwrap());
    drop(store);
    let restarted = reopen(&path);
    assert!(!restarted.spend_assertion([9; 32], 1_000, 20).await.unwrap());
}

/// The readiness probe takes the write lock: while another process holds it (past the
/// busy timeout), the store is not ready; once it lets go, it is.
#[actix_web::test]
async fn the_probe_fails_while_another_writer_holds_the_file() {
    use crate::store::Store;

    let (_dir, path) = temp_db();
    let store = reopen(&path);
    store.probe().await.unwrap();
    let other = rusqlite::Connection::open(&path).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    assert!(store.probe().await.is_err());
    other.execute_batch("ROLLBACK").unwrap();
    store.probe().await.unwrap();
}
