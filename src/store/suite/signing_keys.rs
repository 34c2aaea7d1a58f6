//! The broker's signing keys: listed oldest activation first, the first set stored
//! only once — also when replicas race to store it — rotated and pruned.

use std::sync::{Arc, Barrier};

use zeroize::Zeroizing;

use crate::store::{Store, StoredSigningKey};

pub fn signing_key(kid: &str, activates_at: u64) -> StoredSigningKey {
    StoredSigningKey {
        kid: kid.into(),
        alg: "ES256".into(),
        private_key: Zeroizing::new(format!("pkcs8 of {kid}").into_bytes()),
        created_at: 7,
        activates_at,
    }
}

fn kids(keys: &[StoredSigningKey]) -> Vec<&str> {
    keys.iter().map(|k| k.kid.as_str()).collect()
}

pub async fn signing_keys_round_trip_oldest_activation_first(store: &dyn Store) {
    assert!(store.signing_keys().await.unwrap().is_empty());
    let first = signing_key("k-first", 0);
    assert!(
        store
            .add_signing_keys_if_none(vec![first.clone()])
            .await
            .unwrap()
    );
    let later = signing_key("a-later", 500);
    store.add_signing_key(later.clone()).await.unwrap();
    assert_eq!(store.signing_keys().await.unwrap(), vec![first, later]);
}

pub async fn only_the_first_set_of_signing_keys_is_kept(store: &dyn Store) {
    let set = vec![signing_key("k1", 0), signing_key("k2", 100)];
    assert!(store.add_signing_keys_if_none(set).await.unwrap());
    let other = vec![signing_key("k3", 0)];
    assert!(!store.add_signing_keys_if_none(other).await.unwrap());
    assert_eq!(kids(&store.signing_keys().await.unwrap()), ["k1", "k2"]);
}

pub async fn retired_signing_keys_are_deleted(store: &dyn Store) {
    store.add_signing_key(signing_key("old", 0)).await.unwrap();
    store
        .add_signing_key(signing_key("new", 100))
        .await
        .unwrap();
    let deleted = store
        .delete_signing_keys(&["old".to_owned(), "never-there".to_owned()])
        .await
        .unwrap();
    assert_eq!(deleted, 1);
    assert_eq!(kids(&store.signing_keys().await.unwrap()), ["new"]);
    assert_eq!(store.delete_signing_keys(&[]).await.unwrap(), 0);
}

/// Replicas starting together on an empty store, each with its own first key: one
/// key is kept, and each learns which.
pub fn replicas_starting_together_keep_one_first_key(store: Arc<dyn Store>) {
    let n = 16;
    let start = Arc::new(Barrier::new(n));
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let (store, start) = (store.clone(), start.clone());
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                start.wait();
                runtime.block_on(async {
                    let stored = store
                        .add_signing_keys_if_none(vec![signing_key(&format!("k{i}"), 0)])
                        .await
                        .unwrap();
                    (stored, store.signing_keys().await.unwrap())
                })
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(results.iter().filter(|(stored, _)| *stored).count(), 1);
    let kept = &results[0].1;
    assert_eq!(kept.len(), 1);
    for (_, seen) in &results {
        assert_eq!(seen, kept, "every replica sees the one key");
    }
}

/// The consent cookie key: the first candidate is kept, later ones only read it.
pub async fn the_first_consent_cookie_key_is_kept(store: &dyn Store) {
    let first = Zeroizing::new(vec![1u8; 32]);
    let kept = store.consent_cookie_key(first.clone()).await.unwrap();
    assert_eq!(kept, first);
    let again = store
        .consent_cookie_key(Zeroizing::new(vec![2u8; 32]))
        .await
        .unwrap();
    assert_eq!(again, first);
}
