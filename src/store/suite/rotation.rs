//! Refresh-token rotation, one presentation at a time (`domain::refresh` decides;
//! the store applies the decision atomically).

use super::{GRACE, grant, record, unspent, with_token};
use crate::store::{RotateOutcome, Store};

pub async fn rotation_spends_the_token_and_stores_its_successor(store: &dyn Store) {
    let first = with_token(store).await;
    let next = record("g1", 5);
    let next_hash = next.hash;
    let outcome = store.rotate_refresh(first, next, 5, GRACE).await.unwrap();
    assert!(matches!(
        outcome,
        RotateOutcome::Rotated { retried: false, .. }
    ));
    assert!(store.find_refresh(&next_hash).await.unwrap().is_some());
    let spent = store.find_refresh(&first).await.unwrap().unwrap();
    assert_eq!(spent.rotated.unwrap().successor, next_hash);
}

pub async fn a_retry_within_the_grace_replaces_the_lost_successor(store: &dyn Store) {
    let first = with_token(store).await;
    let lost = record("g1", 5);
    let lost_hash = lost.hash;
    store.rotate_refresh(first, lost, 5, GRACE).await.unwrap();
    let again = record("g1", 9);
    let again_hash = again.hash;
    let outcome = store.rotate_refresh(first, again, 9, GRACE).await.unwrap();
    assert!(matches!(
        outcome,
        RotateOutcome::Rotated { retried: true, .. }
    ));
    // The lost successor is kept, spent: no longer presentable without a replay.
    assert_eq!(
        unspent(store, "g1", &[lost_hash, again_hash]).await,
        [again_hash]
    );
    // The grace counts from the first rotation: it does not slide with retries.
    let late = record("g1", 15);
    assert!(matches!(
        store.rotate_refresh(first, late, 15, GRACE).await.unwrap(),
        RotateOutcome::Replayed { .. }
    ));
}

pub async fn a_successor_superseded_by_a_retry_presented_later_revokes_the_grant(
    store: &dyn Store,
) {
    let first = with_token(store).await;
    // The legitimate client rotates and keeps the successor ...
    let kept = record("g1", 5);
    let kept_hash = kept.hash;
    store.rotate_refresh(first, kept, 5, GRACE).await.unwrap();
    // ... a thief replays the spent token within the grace and gets another ...
    let stolen = record("g1", 6);
    let stolen_hash = stolen.hash;
    assert!(matches!(
        store.rotate_refresh(first, stolen, 6, GRACE).await.unwrap(),
        RotateOutcome::Rotated { retried: true, .. }
    ));
    // ... and the legitimate client's next refresh ends the grant, the thief's chain
    // with it — within the grace as well as after it.
    assert_eq!(
        store
            .rotate_refresh(kept_hash, record("g1", 7), 7, GRACE)
            .await
            .unwrap(),
        RotateOutcome::Replayed {
            grant_id: "g1".into()
        }
    );
    assert_eq!(
        store.get_grant("g1").await.unwrap().unwrap().revoked_at,
        Some(7)
    );
    assert!(store.find_refresh(&stolen_hash).await.unwrap().is_none());
    assert_eq!(
        store
            .rotate_refresh(stolen_hash, record("g1", 8), 8, GRACE)
            .await
            .unwrap(),
        RotateOutcome::Unknown
    );
}

pub async fn a_superseded_successor_is_a_replay_after_the_grace_too(store: &dyn Store) {
    let first = with_token(store).await;
    let lost = record("g1", 5);
    let lost_hash = lost.hash;
    store.rotate_refresh(first, lost, 5, GRACE).await.unwrap();
    let again = record("g1", 6);
    let again_hash = again.hash;
    store.rotate_refresh(first, again, 6, GRACE).await.unwrap();
    // The retried chain goes on as usual ...
    let next = record("g1", 100);
    assert!(matches!(
        store
            .rotate_refresh(again_hash, next, 100, GRACE)
            .await
            .unwrap(),
        RotateOutcome::Rotated { retried: false, .. }
    ));
    // ... until the superseded token turns up, long after.
    assert!(matches!(
        store
            .rotate_refresh(lost_hash, record("g1", 500), 500, GRACE)
            .await
            .unwrap(),
        RotateOutcome::Replayed { .. }
    ));
    assert!(
        store
            .get_grant("g1")
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .is_some()
    );
}

pub async fn a_replay_outside_the_grace_revokes_the_grant_and_its_chain(store: &dyn Store) {
    let first = with_token(store).await;
    let next = record("g1", 5);
    let next_hash = next.hash;
    store.rotate_refresh(first, next, 5, GRACE).await.unwrap();
    let thief = record("g1", 100);
    assert_eq!(
        store
            .rotate_refresh(first, thief, 100, GRACE)
            .await
            .unwrap(),
        RotateOutcome::Replayed {
            grant_id: "g1".into()
        }
    );
    assert!(store.get_grant("g1").await.unwrap().unwrap().revoked_at == Some(100));
    assert!(store.find_refresh(&next_hash).await.unwrap().is_none());
    let after = record("g1", 101);
    assert_eq!(
        store
            .rotate_refresh(next_hash, after, 101, GRACE)
            .await
            .unwrap(),
        RotateOutcome::Unknown
    );
}

pub async fn expired_unknown_and_revoked_change_nothing(store: &dyn Store) {
    let first = with_token(store).await;
    let next = record("g1", 2_000);
    assert_eq!(
        store
            .rotate_refresh(first, next.clone(), 2_000, GRACE)
            .await
            .unwrap(),
        RotateOutcome::Expired
    );
    assert!(store.find_refresh(&next.hash).await.unwrap().is_none());
    assert_eq!(
        store
            .rotate_refresh([7; 32], next.clone(), 5, GRACE)
            .await
            .unwrap(),
        RotateOutcome::Unknown
    );
    store.revoke_grant("g1", 6).await.unwrap();
    assert_eq!(
        store.rotate_refresh(first, next, 7, GRACE).await.unwrap(),
        RotateOutcome::Unknown
    );
    // Revoked grants get no new refresh tokens and keep their first revocation time.
    let late = record("g1", 8);
    let late_hash = late.hash;
    store.put_refresh(late).await.unwrap();
    assert!(store.find_refresh(&late_hash).await.unwrap().is_none());
    assert_eq!(
        store
            .revoke_grant("g1", 9)
            .await
            .unwrap()
            .unwrap()
            .revoked_at,
        Some(6)
    );
}

pub async fn a_retry_after_the_successor_was_used_is_a_replay(store: &dyn Store) {
    let first = with_token(store).await;
    let second = record("g1", 5);
    let second_hash = second.hash;
    store.rotate_refresh(first, second, 5, GRACE).await.unwrap();
    // The client got its answer and already used the successor ...
    let third = record("g1", 6);
    let third_hash = third.hash;
    store
        .rotate_refresh(second_hash, third, 6, GRACE)
        .await
        .unwrap();
    // ... so the first token coming back, even within the grace, is someone else.
    let thief = record("g1", 7);
    let thief_hash = thief.hash;
    assert_eq!(
        store.rotate_refresh(first, thief, 7, GRACE).await.unwrap(),
        RotateOutcome::Replayed {
            grant_id: "g1".into()
        }
    );
    let every = [first, second_hash, third_hash, thief_hash];
    assert!(unspent(store, "g1", &every).await.is_empty());
    assert_eq!(
        store.get_grant("g1").await.unwrap().unwrap().revoked_at,
        Some(7)
    );
}

pub async fn the_successor_joins_the_presented_tokens_grant(store: &dyn Store) {
    let first = with_token(store).await;
    store.put_grant(grant("g2")).await.unwrap();
    let stray = record("g2", 5);
    let stray_hash = stray.hash;
    store.rotate_refresh(first, stray, 5, GRACE).await.unwrap();
    let stored = store.find_refresh(&stray_hash).await.unwrap().unwrap();
    assert_eq!(stored.grant_id, "g1");
}

pub async fn a_deleted_token_is_unknown(store: &dyn Store) {
    let first = with_token(store).await;
    assert!(store.delete_refresh(&first).await.unwrap());
    assert!(!store.delete_refresh(&first).await.unwrap());
    let next = record("g1", 5);
    assert_eq!(
        store.rotate_refresh(first, next, 5, GRACE).await.unwrap(),
        RotateOutcome::Unknown
    );
    assert!(
        store
            .get_grant("g1")
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .is_none()
    );
}

pub async fn a_spent_token_presented_after_its_expiry_is_expired_not_a_replay(store: &dyn Store) {
    let first = with_token(store).await;
    let next = record("g1", 5);
    store.rotate_refresh(first, next, 5, GRACE).await.unwrap();
    let late = record("g1", 1_000);
    assert_eq!(
        store
            .rotate_refresh(first, late, 1_000, GRACE)
            .await
            .unwrap(),
        RotateOutcome::Expired
    );
    assert!(
        store
            .get_grant("g1")
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .is_none()
    );
}
