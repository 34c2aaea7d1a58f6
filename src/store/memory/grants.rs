//! Grants and refresh tokens in memory, behind one lock so every operation —
//! rotation above all — is atomic.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use super::poisoned;
use crate::clock::UnixSeconds;
use crate::domain::refresh::{self, Decision, TokenState};
use crate::store::{Grant, RefreshRecord, RotateOutcome, Rotation, StoreError, UpstreamTokens};

#[derive(Default)]
struct Tables {
    grants: HashMap<String, Grant>,
    refresh: HashMap<[u8; 32], RefreshRecord>,
}

impl Tables {
    fn live(&self, grant_id: &str) -> bool {
        self.grants
            .get(grant_id)
            .is_some_and(|g| g.revoked_at.is_none())
    }

    fn revoke(&mut self, grant_id: &str, now: UnixSeconds) -> Option<Grant> {
        self.refresh.retain(|_, r| r.grant_id != grant_id);
        let grant = self.grants.get_mut(grant_id)?;
        grant.revoked_at.get_or_insert(now);
        Some(grant.clone())
    }
}

#[derive(Default)]
pub struct GrantTables(Mutex<Tables>);

impl GrantTables {
    pub fn put_grant(&self, grant: Grant) -> Result<(), StoreError> {
        let mut t = self.0.lock().map_err(poisoned)?;
        t.grants.insert(grant.grant_id.clone(), grant);
        Ok(())
    }

    pub fn get_grant(&self, grant_id: &str) -> Result<Option<Grant>, StoreError> {
        Ok(self
            .0
            .lock()
            .map_err(poisoned)?
            .grants
            .get(grant_id)
            .cloned())
    }

    pub fn set_upstream_tokens(
        &self,
        grant_id: &str,
        tokens: UpstreamTokens,
    ) -> Result<(), StoreError> {
        let mut t = self.0.lock().map_err(poisoned)?;
        if let Some(grant) = t.grants.get_mut(grant_id)
            && grant.revoked_at.is_none()
        {
            grant.upstream = tokens;
        }
        Ok(())
    }

    pub fn revoke_grant(
        &self,
        grant_id: &str,
        now: UnixSeconds,
    ) -> Result<Option<Grant>, StoreError> {
        Ok(self.0.lock().map_err(poisoned)?.revoke(grant_id, now))
    }

    pub fn put_refresh(&self, record: RefreshRecord) -> Result<(), StoreError> {
        let mut t = self.0.lock().map_err(poisoned)?;
        if t.live(&record.grant_id) {
            t.refresh.insert(record.hash, record);
        }
        Ok(())
    }

    pub fn find_refresh(&self, hash: &[u8; 32]) -> Result<Option<RefreshRecord>, StoreError> {
        let t = self.0.lock().map_err(poisoned)?;
        Ok(t.refresh.get(hash).filter(|r| t.live(&r.grant_id)).cloned())
    }

    pub fn rotate_refresh(
        &self,
        presented: [u8; 32],
        successor: RefreshRecord,
        now: UnixSeconds,
        grace: Duration,
    ) -> Result<RotateOutcome, StoreError> {
        let mut t = self.0.lock().map_err(poisoned)?;
        let Some(record) = t.refresh.get(&presented).cloned() else {
            return Ok(RotateOutcome::Unknown);
        };
        if !t.live(&record.grant_id) {
            return Ok(RotateOutcome::Unknown);
        }
        let state = TokenState {
            expires_at: record.expires_at,
            rotated_at: record.rotated.map(|r| r.at),
        };
        let retried = match refresh::decide(state, now, grace) {
            Decision::Expired => return Ok(RotateOutcome::Expired),
            Decision::Replay => {
                t.revoke(&record.grant_id, now);
                return Ok(RotateOutcome::Replayed {
                    grant_id: record.grant_id,
                });
            }
            Decision::Rotate => false,
            Decision::Retry => {
                if let Some(previous) = record.rotated {
                    t.refresh.remove(&previous.successor);
                }
                true
            }
        };
        let rotation = Rotation {
            // A retry keeps the first rotation time: the grace does not slide.
            at: record.rotated.map_or(now, |r| r.at),
            successor: successor.hash,
        };
        if let Some(stored) = t.refresh.get_mut(&presented) {
            stored.rotated = Some(rotation);
        }
        t.refresh.insert(successor.hash, successor);
        Ok(RotateOutcome::Rotated {
            previous: record,
            retried,
        })
    }

    pub fn sweep(
        &self,
        now: UnixSeconds,
        revoked_before: UnixSeconds,
        idle_before: UnixSeconds,
    ) -> Result<u64, StoreError> {
        let mut t = self.0.lock().map_err(poisoned)?;
        t.refresh.retain(|_, r| now < r.expires_at);
        let Tables { grants, refresh } = &mut *t;
        let before = grants.len();
        grants.retain(|id, g| match g.revoked_at {
            Some(at) => at >= revoked_before,
            None => g.created_at >= idle_before || refresh.values().any(|r| &r.grant_id == id),
        });
        Ok((before - grants.len()) as u64)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

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

    #[test]
    fn concurrent_presentations_rotate_exactly_once() {
        let (tables, first) = tables_with_token();
        let tables = Arc::new(tables);
        let handles: Vec<_> = (0..32)
            .map(|_| {
                let tables = tables.clone();
                std::thread::spawn(move || {
                    let (_, next) = record("g1", 5);
                    tables
                        .rotate_refresh(first, next, 5, Duration::ZERO)
                        .unwrap()
                })
            })
            .collect();
        let outcomes: Vec<RotateOutcome> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let rotated = outcomes
            .iter()
            .filter(|o| matches!(o, RotateOutcome::Rotated { .. }))
            .count();
        assert_eq!(rotated, 1, "{outcomes:?}");
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

    #[test]
    fn debug_output_never_shows_the_providers_tokens() {
        let text = format!("{:?}", grant("g1"));
        assert!(!text.contains("upstream-at") && !text.contains("upstream-rt"));
    }
}
