use std::sync::{Arc, Barrier};

use super::*;
use crate::domain::scope::Scopes;

const GRACE: Duration = Duration::from_secs(10);

fn grant(id: &str) -> Grant {
    Grant {
        grant_id: id.into(),
        subject: "alice".into(),
        client_id: "c1".into(),
        scopes: Scopes::of(["notes:read"]),
        resource: None,
        upstream: UpstreamTokens {
            access_token: "upstream-at".into(),
            refresh_token: Some("upstream-rt".into()),
            expires_at: Some(100),
            scope: None,
        },
        created_at: 0,
        revoked_at: None,
    }
}

fn record(grant_id: &str, now: u64) -> (String, RefreshRecord) {
    let (token, hash) = refresh::new_token();
    (
        token,
        RefreshRecord {
            hash,
            grant_id: grant_id.into(),
            scopes: Scopes::of(["notes:read"]),
            issued_at: now,
            expires_at: now + 1_000,
            rotated: None,
        },
    )
}

fn tables_with_token() -> (GrantTables, [u8; 32]) {
    let tables = GrantTables::default();
    tables.put_grant(grant("g1")).unwrap();
    let (_, first) = record("g1", 0);
    let hash = first.hash;
    tables.put_refresh(first).unwrap();
    (tables, hash)
}

#[test]
fn rotation_spends_the_token_and_stores_its_successor() {
    let (tables, first) = tables_with_token();
    let (_, next) = record("g1", 5);
    let next_hash = next.hash;
    let outcome = tables.rotate_refresh(first, next, 5, GRACE).unwrap();
    assert!(matches!(
        outcome,
        RotateOutcome::Rotated { retried: false, .. }
    ));
    assert!(tables.find_refresh(&next_hash).unwrap().is_some());
    let spent = tables.find_refresh(&first).unwrap().unwrap();
    assert_eq!(spent.rotated.unwrap().successor, next_hash);
}

#[test]
fn a_retry_within_the_grace_replaces_the_lost_successor() {
    let (tables, first) = tables_with_token();
    let (_, lost) = record("g1", 5);
    let lost_hash = lost.hash;
    tables.rotate_refresh(first, lost, 5, GRACE).unwrap();
    let (_, again) = record("g1", 9);
    let again_hash = again.hash;
    let outcome = tables.rotate_refresh(first, again, 9, GRACE).unwrap();
    assert!(matches!(
        outcome,
        RotateOutcome::Rotated { retried: true, .. }
    ));
    assert!(tables.find_refresh(&lost_hash).unwrap().is_none());
    assert!(tables.find_refresh(&again_hash).unwrap().is_some());
    // The grace counts from the first rotation: it does not slide with retries.
    let (_, late) = record("g1", 15);
    assert!(matches!(
        tables.rotate_refresh(first, late, 15, GRACE).unwrap(),
        RotateOutcome::Replayed { .. }
    ));
}

#[test]
fn a_replay_outside_the_grace_revokes_the_grant_and_its_chain() {
    let (tables, first) = tables_with_token();
    let (_, next) = record("g1", 5);
    let next_hash = next.hash;
    tables.rotate_refresh(first, next, 5, GRACE).unwrap();
    let (_, thief) = record("g1", 100);
    assert_eq!(
        tables.rotate_refresh(first, thief, 100, GRACE).unwrap(),
        RotateOutcome::Replayed {
            grant_id: "g1".into()
        }
    );
    assert!(tables.get_grant("g1").unwrap().unwrap().revoked_at == Some(100));
    assert!(tables.find_refresh(&next_hash).unwrap().is_none());
    let (_, after) = record("g1", 101);
    assert_eq!(
        tables.rotate_refresh(next_hash, after, 101, GRACE).unwrap(),
        RotateOutcome::Unknown
    );
}

#[test]
fn expired_unknown_and_revoked_change_nothing() {
    let (tables, first) = tables_with_token();
    let (_, next) = record("g1", 2_000);
    assert_eq!(
        tables
            .rotate_refresh(first, next.clone(), 2_000, GRACE)
            .unwrap(),
        RotateOutcome::Expired
    );
    assert!(tables.find_refresh(&next.hash).unwrap().is_none());
    assert_eq!(
        tables
            .rotate_refresh([7; 32], next.clone(), 5, GRACE)
            .unwrap(),
        RotateOutcome::Unknown
    );
    tables.revoke_grant("g1", 6).unwrap();
    assert_eq!(
        tables.rotate_refresh(first, next, 7, GRACE).unwrap(),
        RotateOutcome::Unknown
    );
    // Revoked grants get no new refresh tokens and keep their first revocation time.
    let (_, late) = record("g1", 8);
    let late_hash = late.hash;
    tables.put_refresh(late).unwrap();
    assert!(tables.find_refresh(&late_hash).unwrap().is_none());
    assert_eq!(
        tables.revoke_grant("g1", 9).unwrap().unwrap().revoked_at,
        Some(6)
    );
}

/// Presents `first` from `n` threads at once, each with its own successor.
fn present_concurrently(
    tables: &Arc<GrantTables>,
    first: [u8; 32],
    n: usize,
    grace: Duration,
) -> Vec<RotateOutcome> {
    let start = Arc::new(Barrier::new(n));
    let handles: Vec<_> = (0..n)
        .map(|_| {
            let (tables, start) = (tables.clone(), start.clone());
            std::thread::spawn(move || {
                let (_, next) = record("g1", 5);
                start.wait();
                tables.rotate_refresh(first, next, 5, grace).unwrap()
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

/// The tokens of `grant_id` that can still be presented without being spent.
fn unspent(tables: &GrantTables, grant_id: &str) -> Vec<[u8; 32]> {
    let t = tables.0.lock().unwrap();
    t.refresh
        .values()
        .filter(|r| r.grant_id == grant_id && r.rotated.is_none())
        .map(|r| r.hash)
        .collect()
}

#[test]
fn concurrent_presentations_rotate_exactly_once() {
    let (tables, first) = tables_with_token();
    let tables = Arc::new(tables);
    let outcomes = present_concurrently(&tables, first, 32, Duration::ZERO);
    let rotated = outcomes
        .iter()
        .filter(|o| matches!(o, RotateOutcome::Rotated { .. }))
        .count();
    assert_eq!(rotated, 1, "{outcomes:?}");
    // Every loser presented a spent token outside the (zero) grace: the grant is gone.
    assert!(outcomes.contains(&RotateOutcome::Replayed {
        grant_id: "g1".into()
    }));
    assert!(unspent(&tables, "g1").is_empty());
}

#[test]
fn concurrent_retries_within_the_grace_leave_one_live_chain() {
    let (tables, first) = tables_with_token();
    let tables = Arc::new(tables);
    let outcomes = present_concurrently(&tables, first, 32, GRACE);
    let fresh = outcomes
        .iter()
        .filter(|o| matches!(o, RotateOutcome::Rotated { retried: false, .. }))
        .count();
    let retries = outcomes
        .iter()
        .filter(|o| matches!(o, RotateOutcome::Rotated { retried: true, .. }))
        .count();
    assert_eq!((fresh, retries), (1, 31), "{outcomes:?}");
    let spent = tables.find_refresh(&first).unwrap().unwrap();
    assert_eq!(unspent(&tables, "g1"), [spent.rotated.unwrap().successor]);
}

#[test]
fn a_retry_after_the_successor_was_used_is_a_replay() {
    let (tables, first) = tables_with_token();
    let (_, second) = record("g1", 5);
    let second_hash = second.hash;
    tables.rotate_refresh(first, second, 5, GRACE).unwrap();
    // The client got its answer and already used the successor ...
    let (_, third) = record("g1", 6);
    tables.rotate_refresh(second_hash, third, 6, GRACE).unwrap();
    // ... so the first token coming back, even within the grace, is someone else.
    let (_, thief) = record("g1", 7);
    assert_eq!(
        tables.rotate_refresh(first, thief, 7, GRACE).unwrap(),
        RotateOutcome::Replayed {
            grant_id: "g1".into()
        }
    );
    assert!(unspent(&tables, "g1").is_empty());
    assert_eq!(tables.get_grant("g1").unwrap().unwrap().revoked_at, Some(7));
}

#[test]
fn the_successor_joins_the_presented_tokens_grant() {
    let (tables, first) = tables_with_token();
    tables.put_grant(grant("g2")).unwrap();
    let (_, stray) = record("g2", 5);
    let stray_hash = stray.hash;
    tables.rotate_refresh(first, stray, 5, GRACE).unwrap();
    let stored = tables.find_refresh(&stray_hash).unwrap().unwrap();
    assert_eq!(stored.grant_id, "g1");
}

#[test]
fn a_deleted_token_is_unknown() {
    let (tables, first) = tables_with_token();
    assert!(tables.delete_refresh(&first).unwrap());
    assert!(!tables.delete_refresh(&first).unwrap());
    let (_, next) = record("g1", 5);
    assert_eq!(
        tables.rotate_refresh(first, next, 5, GRACE).unwrap(),
        RotateOutcome::Unknown
    );
    assert!(
        tables
            .get_grant("g1")
            .unwrap()
            .unwrap()
            .revoked_at
            .is_none()
    );
}

#[test]
fn a_spent_token_presented_after_its_expiry_is_expired_not_a_replay() {
    let (tables, first) = tables_with_token();
    let (_, next) = record("g1", 5);
    tables.rotate_refresh(first, next, 5, GRACE).unwrap();
    let (_, late) = record("g1", 1_000);
    assert_eq!(
        tables.rotate_refresh(first, late, 1_000, GRACE).unwrap(),
        RotateOutcome::Expired
    );
    assert!(
        tables
            .get_grant("g1")
            .unwrap()
            .unwrap()
            .revoked_at
            .is_none()
    );
}

#[test]
fn refresh_tokens_need_a_live_grant() {
    let tables = GrantTables::default();
    let (_, orphan) = record("nobody", 0);
    let orphan_hash = orphan.hash;
    tables.put_refresh(orphan).unwrap();
    assert!(tables.find_refresh(&orphan_hash).unwrap().is_none());
    assert!(tables.revoke_grant("nobody", 1).unwrap().is_none());
}

#[test]
fn sweep_drops_expired_tokens_and_dead_grants() {
    let (tables, _) = tables_with_token();
    tables.put_grant(grant("g2")).unwrap();
    tables.revoke_grant("g2", 10).unwrap();
    assert_eq!(tables.sweep(500, 5, 0).unwrap(), 0, "g1 has a live token");
    assert_eq!(tables.sweep(500, 11, 0).unwrap(), 1, "revoked g2 goes");
    assert_eq!(tables.sweep(1_001, 11, 1).unwrap(), 1, "g1's token expired");
    assert!(tables.get_grant("g1").unwrap().is_none());
}
