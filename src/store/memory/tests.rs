use super::*;
use std::sync::{Arc, Barrier};

use crate::domain::refresh;
use crate::domain::scope::Scopes;
use crate::store::ClientOrigin;

fn client(id: &str, issued_at: u64, last_used_at: Option<u64>) -> StoredClient {
    StoredClient {
        client_id: id.into(),
        secret_hash: None,
        metadata: serde_json::json!({}),
        fingerprint: [0; 32],
        issued_at,
        last_used_at,
        origin: ClientOrigin::Local,
    }
}

#[actix_web::test]
async fn stale_clients_are_the_unused_and_the_idle() {
    let store = MemoryStore::new();
    store
        .put_client(client("never-used-old", 10, None))
        .await
        .unwrap();
    store
        .put_client(client("never-used-new", 100, None))
        .await
        .unwrap();
    store
        .put_client(client("idle", 10, Some(20)))
        .await
        .unwrap();
    store
        .put_client(client("active", 10, Some(95)))
        .await
        .unwrap();
    let mut stale: Vec<String> = store
        .stale_clients(50, 90)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.client_id)
        .collect();
    stale.sort();
    assert_eq!(stale, ["idle", "never-used-old"]);
    store.touch_client("never-used-old", 60).await.unwrap();
    assert_eq!(store.stale_clients(50, 50).await.unwrap().len(), 1);
    assert!(store.delete_client("idle").await.unwrap());
    assert!(!store.delete_client("idle").await.unwrap());
    assert_eq!(store.count_clients().await.unwrap(), 3);
}

const GRACE: Duration = Duration::from_secs(10);

fn grant(id: &str) -> Grant {
    Grant {
        grant_id: id.into(),
        subject: "alice".into(),
        client_id: "c1".into(),
        scopes: Scopes::of(["notes:read", "offline_access"]),
        resource: Some("https://mcp.example/mcp".into()),
        upstream: UpstreamTokens {
            access_token: "upstream-at".into(),
            refresh_token: Some("upstream-rt".into()),
            expires_at: Some(100),
            scope: Some("openid".into()),
        },
        created_at: 0,
        revoked_at: None,
    }
}

fn refresh_record(grant_id: &str, now: u64) -> RefreshRecord {
    let (_, hash) = refresh::new_token();
    RefreshRecord {
        hash,
        grant_id: grant_id.into(),
        scopes: Scopes::of(["notes:read"]),
        issued_at: now,
        expires_at: now + 1_000,
        rotated: None,
    }
}

/// Rotates `presented` at `now`, expecting a rotation; returns the successor's hash.
async fn rotate(store: &MemoryStore, presented: [u8; 32], now: u64) -> [u8; 32] {
    let next = refresh_record("g1", now);
    let hash = next.hash;
    let outcome = store.rotate_refresh(presented, next, now, GRACE).await;
    assert!(
        matches!(outcome, Ok(RotateOutcome::Rotated { .. })),
        "{outcome:?}"
    );
    hash
}

/// A code maps to its grant, so revoking the grant on a code replay kills every token
/// issued from that code: the first refresh token, every rotation since, and (through
/// the verifier's revocation list, keyed by the same grant id) the access tokens.
#[actix_web::test]
async fn a_code_replay_revokes_every_token_issued_from_the_code() {
    let store = MemoryStore::new();
    store.put_grant(grant("g1")).await.unwrap();
    store.put_grant(grant("g2")).await.unwrap();
    let first = refresh_record("g1", 0);
    let first_hash = first.hash;
    store.put_refresh(first).await.unwrap();
    let second = rotate(&store, first_hash, 20).await;
    let third = rotate(&store, second, 40).await;
    let other = refresh_record("g2", 0);
    let other_hash = other.hash;
    store.put_refresh(other).await.unwrap();

    let revoked = store.revoke_grant("g1", 50).await.unwrap().unwrap();
    assert_eq!(revoked.revoked_at, Some(50));
    for hash in [first_hash, second, third] {
        assert!(store.find_refresh(&hash).await.unwrap().is_none());
    }
    assert_eq!(
        store
            .rotate_refresh(third, refresh_record("g1", 51), 51, GRACE)
            .await
            .unwrap(),
        RotateOutcome::Unknown
    );
    // Idempotent: a second replay keeps the first revocation time.
    let again = store.revoke_grant("g1", 60).await.unwrap().unwrap();
    assert_eq!(again.revoked_at, Some(50));
    // Another login of the same user and client is untouched.
    assert!(store.find_refresh(&other_hash).await.unwrap().is_some());
    assert!(
        store
            .get_grant("g2")
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .is_none()
    );
}

#[test]
fn concurrent_tasks_presenting_one_token_rotate_it_once() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let runtime = || {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
    };
    let first = refresh_record("g1", 0);
    let first_hash = first.hash;
    runtime().block_on(async {
        store.put_grant(grant("g1")).await.unwrap();
        store.put_refresh(first).await.unwrap();
    });
    let n = 64;
    let start = Arc::new(Barrier::new(n));
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let (store, start) = (store.clone(), start.clone());
            std::thread::spawn(move || {
                let next = refresh_record("g1", 5);
                start.wait();
                runtime().block_on(store.rotate_refresh(first_hash, next, 5, Duration::ZERO))
            })
        })
        .collect();
    let outcomes: Vec<RotateOutcome> = tasks
        .into_iter()
        .map(|t| t.join().unwrap().unwrap())
        .collect();
    let rotated = outcomes
        .iter()
        .filter(|o| matches!(o, RotateOutcome::Rotated { .. }))
        .count();
    assert_eq!(rotated, 1, "{outcomes:?}");
}

#[actix_web::test]
async fn upstream_tokens_change_only_on_a_live_grant() {
    let store = MemoryStore::new();
    store.put_grant(grant("g1")).await.unwrap();
    let fresh = UpstreamTokens {
        access_token: "upstream-at-2".into(),
        refresh_token: None,
        expires_at: Some(200),
        scope: None,
    };
    store
        .set_upstream_tokens("g1", fresh.clone())
        .await
        .unwrap();
    assert_eq!(
        store.get_grant("g1").await.unwrap().unwrap().upstream,
        fresh
    );
    store.revoke_grant("g1", 10).await.unwrap();
    store
        .set_upstream_tokens("g1", grant("g1").upstream)
        .await
        .unwrap();
    assert_eq!(
        store.get_grant("g1").await.unwrap().unwrap().upstream,
        fresh
    );
    store.set_upstream_tokens("nobody", fresh).await.unwrap();
    assert!(store.get_grant("nobody").await.unwrap().is_none());
}
