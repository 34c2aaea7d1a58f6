//! Grants and refresh tokens in memory, behind one lock so every operation —
//! rotation above all — is atomic.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use super::poisoned;
use crate::clock::UnixSeconds;
use crate::domain::refresh::{self, Decision, TokenState};
use crate::store::{
    Grant, GrantFilter, GrantRow, Listing, Page, PassthroughToken, RefreshRecord, RotateOutcome,
    Rotation, StoreError, UpstreamTokens,
};

#[derive(Default)]
struct Tables {
    grants: HashMap<String, Grant>,
    refresh: HashMap<[u8; 32], RefreshRecord>,
    passthrough: HashMap<[u8; 32], PassthroughToken>,
}

impl Tables {
    fn live(&self, grant_id: &str) -> bool {
        self.grants
            .get(grant_id)
            .is_some_and(|g| g.revoked_at.is_none())
    }

    fn row(&self, grant: &Grant) -> GrantRow {
        let last_refreshed_at = self
            .refresh
            .values()
            .filter(|r| r.grant_id == grant.grant_id)
            .filter_map(|r| r.rotated.map(|rotation| rotation.at))
            .max();
        GrantRow {
            grant: grant.clone(),
            last_refreshed_at,
        }
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

    pub fn list(&self, filter: &GrantFilter, page: &Page) -> Result<Listing<GrantRow>, StoreError> {
        let t = self.0.lock().map_err(poisoned)?;
        let mut found: Vec<&Grant> = t
            .grants
            .values()
            .filter(|g| page.admits(&g.grant_id) && filter.matches(g))
            .collect();
        found.sort_by(|a, b| a.grant_id.cmp(&b.grant_id));
        found.truncate(page.size() + 1);
        let rows = found.into_iter().map(|g| t.row(g)).collect();
        Ok(page.cut(rows, |r: &GrantRow| &r.grant.grant_id))
    }

    pub fn row(&self, grant_id: &str) -> Result<Option<GrantRow>, StoreError> {
        let t = self.0.lock().map_err(poisoned)?;
        Ok(t.grants.get(grant_id).map(|g| t.row(g)))
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

    pub fn delete_refresh(&self, hash: &[u8; 32]) -> Result<bool, StoreError> {
        Ok(self
            .0
            .lock()
            .map_err(poisoned)?
            .refresh
            .remove(hash)
            .is_some())
    }

    pub fn rotate_refresh(
        &self,
        presented: [u8; 32],
        mut successor: RefreshRecord,
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
            successor_spent: record
                .rotated
                .and_then(|r| t.refresh.get(&r.successor))
                .is_some_and(|s| s.rotated.is_some()),
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
                // The successor the retrying client never received is superseded, so
                // one chain remains — kept as spent, so that if the retry was a thief,
                // the legitimate holder presenting it ends the grant.
                if let Some(previous) = record.rotated
                    && let Some(lost) = t.refresh.get_mut(&previous.successor)
                {
                    lost.rotated = Some(Rotation::superseded(previous.successor, now));
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
        successor.grant_id.clone_from(&record.grant_id);
        successor.rotated = None;
        t.refresh.insert(successor.hash, successor);
        Ok(RotateOutcome::Rotated {
            previous: record,
            retried,
        })
    }

    pub fn put_passthrough(&self, token: PassthroughToken) -> Result<(), StoreError> {
        let mut t = self.0.lock().map_err(poisoned)?;
        t.passthrough.insert(token.digest, token);
        Ok(())
    }

    pub fn find_passthrough(
        &self,
        digest: &[u8; 32],
        now: UnixSeconds,
    ) -> Result<Option<PassthroughToken>, StoreError> {
        let t = self.0.lock().map_err(poisoned)?;
        Ok(t.passthrough
            .get(digest)
            .filter(|p| now < p.expires_at)
            .cloned())
    }

    pub fn sweep(
        &self,
        now: UnixSeconds,
        revoked_before: UnixSeconds,
        idle_before: UnixSeconds,
    ) -> Result<u64, StoreError> {
        let mut t = self.0.lock().map_err(poisoned)?;
        t.refresh.retain(|_, r| now < r.expires_at);
        t.passthrough.retain(|_, p| now < p.expires_at);
        let Tables {
            grants, refresh, ..
        } = &mut *t;
        let holding: HashSet<&str> = refresh.values().map(|r| r.grant_id.as_str()).collect();
        let before = grants.len();
        grants.retain(|id, g| match g.revoked_at {
            Some(at) => at >= revoked_before,
            None => g.created_at >= idle_before || holding.contains(id.as_str()),
        });
        Ok((before - grants.len()) as u64)
    }
}
