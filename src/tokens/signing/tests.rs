use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::*;
use crate::store::MemoryStore;
use crate::tokens::key_file::rotate_file;

fn config(path: Option<&Path>) -> TokensConfig {
    TokensConfig {
        mode: crate::config::TokenMode::Issue,
        access_token_ttl: Duration::from_secs(900),
        algorithm: "ES256".to_owned(),
        key_file: path.map(Path::to_path_buf),
        key_grace: Duration::from_secs(3_600),
        identity_claims: false,
    }
}

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

fn published(keys: &SigningKeys, now: UnixSeconds) -> Vec<String> {
    keys.jwks(now)["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn the_key_file_is_created_once_private_and_reloaded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.json");
    let first = SigningKeys::load_or_create(&config(Some(&path)), 100).unwrap();
    let again = SigningKeys::load_or_create(&config(Some(&path)), 200).unwrap();
    assert_eq!(first.jwks(200), again.jwks(200));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let token = first.sign("at+jwt", &json!({"sub": "a"}), 200).unwrap();
    assert!(again.snapshot().find(&kid_of(&token), 200).is_some());
}

#[test]
fn rotation_publishes_first_activates_later_and_retires_after_the_grace() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.json");
    let old = SigningKeys::load_or_create(&config(Some(&path)), 0).unwrap();
    let old_kid = kid_of(&old.sign("JWT", &json!({}), 0).unwrap());
    let new_kid = rotate_file(&path, SigningAlg::Es256, 1_000, 2_000, 3_600).unwrap();
    let keys = SigningKeys::load_or_create(&config(Some(&path)), 1_000).unwrap();
    let signer = |now| kid_of(&keys.sign("JWT", &json!({}), now).unwrap());
    assert_eq!(published(&keys, 1_000).len(), 2);
    assert_eq!(signer(1_999), old_kid, "not active before its time");
    assert_eq!(signer(2_000), new_kid);
    let set = keys.snapshot();
    assert_eq!(set.find(&old_kid, 5_599).unwrap().1, Some(5_600));
    assert_eq!(set.find(&new_kid, 5_599).unwrap().1, None, "no successor");
    assert!(set.find(&old_kid, 5_600).is_none(), "after the grace");
    assert_eq!(published(&keys, 5_600), vec![new_kid]);
    // A later rotation drops the long-retired key from the file.
    rotate_file(&path, SigningAlg::Es256, 10_000, 10_000, 3_600).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains(&old_kid));
}

#[test]
fn a_damaged_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.json");
    std::fs::write(&path, "{\"version\":1,\"keys\":[]}").unwrap();
    let error = SigningKeys::load_or_create(&config(Some(&path)), 0)
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("holds no keys"), "{error}");
    std::fs::write(&path, "not json").unwrap();
    assert!(SigningKeys::load_or_create(&config(Some(&path)), 0).is_err());
}

#[test]
fn without_a_file_one_key_lives_in_memory() {
    let keys = SigningKeys::load_or_create(&config(None), 0).unwrap();
    assert_eq!(keys.jwks(0)["keys"].as_array().unwrap().len(), 1);
    assert_eq!(keys.jwks(0)["keys"][0]["alg"], "ES256");
    assert!(keys.jwks(0)["keys"][0].get("d").is_none(), "public only");
}

#[test]
fn brokers_on_one_store_share_the_key_created_by_the_first() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let a = SigningKeys::in_store(store.clone(), &config(None), 0).unwrap();
    let b = SigningKeys::in_store(store.clone(), &config(None), 10).unwrap();
    assert_eq!(published(&a, 10).len(), 1);
    assert_eq!(published(&a, 10), published(&b, 10));
    let token = a.sign("at+jwt", &json!({}), 10).unwrap();
    assert!(b.snapshot().find(&kid_of(&token), 10).is_some());
}

#[actix_web::test]
async fn a_rotation_in_the_store_is_published_on_reload_and_the_old_key_pruned_after_the_grace() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let running = SigningKeys::in_store(store.clone(), &config(None), 0).unwrap();
    let old = published(&running, 0);
    let new_kid = key_store::rotate(store.as_ref(), &config(None), 100, 1_000)
        .await
        .unwrap();
    assert_eq!(published(&running, 100), old, "not before the reload");
    running.reload(100).await.unwrap();
    assert_eq!(published(&running, 100).len(), 2);
    assert_eq!(
        kid_of(&running.sign("JWT", &json!({}), 999).unwrap()),
        old[0]
    );
    assert_eq!(
        kid_of(&running.sign("JWT", &json!({}), 1_000).unwrap()),
        new_kid
    );
    // Retired at 1 000 with a grace of 3 600 s: pruned by the first reload after.
    running.reload(4_599).await.unwrap();
    assert_eq!(store.signing_keys().await.unwrap().len(), 2);
    running.reload(4_600).await.unwrap();
    let left: Vec<String> = store
        .signing_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.kid)
        .collect();
    assert_eq!(left, vec![new_kid.clone()]);
    assert_eq!(published(&running, 4_600), vec![new_kid]);
}

#[test]
fn a_key_file_is_imported_once_and_the_store_wins_afterwards() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.json");
    let from_file = SigningKeys::load_or_create(&config(Some(&path)), 0).unwrap();
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let imported = SigningKeys::in_store(store.clone(), &config(Some(&path)), 5).unwrap();
    assert_eq!(published(&imported, 5), published(&from_file, 5));
    // A different file later changes nothing: the store's keys are used.
    std::fs::remove_file(&path).unwrap();
    let other = SigningKeys::load_or_create(&config(Some(&path)), 0).unwrap();
    assert_ne!(published(&other, 5), published(&from_file, 5));
    let again = SigningKeys::in_store(store, &config(Some(&path)), 5).unwrap();
    assert_eq!(published(&again, 5), published(&from_file, 5));
}
