//! Grants and their refresh tokens outside rotation: revocation, the provider's
//! tokens, what a refresh token needs to be visible, and the sweep.

use super::{GRACE, grant, record, with_token};
use crate::domain::scope::Scopes;
use crate::store::{RefreshRecord, RotateOutcome, Rotation, Store, UpstreamTokens};

/// Rotates `presented` at `now`, expecting a rotation; returns the successor's hash.
async fn rotate(store: &dyn Store, presented: [u8; 32], now: u64) -> [u8; 32] {
    let next = record("g1", now);
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
pub async fn a_code_replay_revokes_every_token_issued_from_the_code(store: &dyn Store) {
    store.put_grant(grant("g1")).await.unwrap();
    store.put_grant(grant("g2")).await.unwrap();
    let first = record("g1", 0);
    let first_hash = first.hash;
    store.put_refresh(first).await.unwrap();
    let second = rotate(store, first_hash, 20).await;
    let third = rotate(store, second, 40).await;
    let other = record("g2", 0);
    let other_hash = other.hash;
    store.put_refresh(other).await.unwrap();

    let revoked = store.revoke_grant("g1", 50).await.unwrap().unwrap();
    assert_eq!(revoked.revoked_at, Some(50));
    for hash in [first_hash, second, third] {
        assert!(store.find_refresh(&hash).await.unwrap().is_none());
    }
    assert_eq!(
        store
            .rotate_refresh(third, record("g1", 51), 51, GRACE)
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

pub async fn upstream_tokens_change_only_on_a_live_grant(store: &dyn Store) {
    store.put_grant(grant("g1")).await.unwrap();
    let fresh = UpstreamTokens {
        access_token: "upstream-at-2".into(),
        refresh_token: None,
        expires_at: Some(200),
        scope: None,
        obtained_at: None,
        // A provider refresh replaces the identity with the tokens: a group gone.
        identity: Some(crate::domain::identity::Identity {
            groups: Some(vec!["staff".into()]),
            ..crate::domain::identity::Identity::default()
        }),
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

pub async fn grants_and_refresh_tokens_round_trip(store: &dyn Store) {
    let g = grant("g1");
    store.put_grant(g.clone()).await.unwrap();
    assert_eq!(store.get_grant("g1").await.unwrap(), Some(g));
    let bare = crate::store::Grant {
        resource: None,
        scopes: Scopes::of(["openid"]),
        upstream: UpstreamTokens {
            access_token: "at".into(),
            refresh_token: None,
            expires_at: None,
            scope: None,
            obtained_at: None,
            identity: None,
        },
        ..grant("g2")
    };
    store.put_grant(bare.clone()).await.unwrap();
    assert_eq!(store.get_grant("g2").await.unwrap(), Some(bare));
    assert!(store.get_grant("nobody").await.unwrap().is_none());
    // A record is stored as given, a rotation included.
    let spent = RefreshRecord {
        rotated: Some(Rotation {
            at: 3,
            successor: [5; 32],
        }),
        ..record("g1", 1)
    };
    store.put_refresh(spent.clone()).await.unwrap();
    assert_eq!(store.find_refresh(&spent.hash).await.unwrap(), Some(spent));
}

pub async fn replacing_a_grant_keeps_its_refresh_tokens(store: &dyn Store) {
    let first = with_token(store).await;
    let mut again = grant("g1");
    again.subject = "alice-renamed".into();
    store.put_grant(again.clone()).await.unwrap();
    assert_eq!(store.get_grant("g1").await.unwrap(), Some(again));
    assert!(store.find_refresh(&first).await.unwrap().is_some());
}

pub async fn refresh_tokens_need_a_live_grant(store: &dyn Store) {
    let orphan = record("nobody", 0);
    let orphan_hash = orphan.hash;
    store.put_refresh(orphan).await.unwrap();
    assert!(store.find_refresh(&orphan_hash).await.unwrap().is_none());
    assert!(store.revoke_grant("nobody", 1).await.unwrap().is_none());
}

pub async fn sweep_drops_expired_tokens_and_dead_grants(store: &dyn Store) {
    with_token(store).await;
    store.put_grant(grant("g2")).await.unwrap();
    store.revoke_grant("g2", 10).await.unwrap();
    assert_eq!(
        store.sweep_grants(500, 5, 0).await.unwrap(),
        0,
        "g1 has a live token"
    );
    assert_eq!(
        store.sweep_grants(500, 11, 0).await.unwrap(),
        1,
        "revoked g2 goes"
    );
    assert_eq!(
        store.sweep_grants(1_001, 11, 1).await.unwrap(),
        1,
        "g1's token expired"
    );
    assert!(store.get_grant("g1").await.unwrap().is_none());
}
