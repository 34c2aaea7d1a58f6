//! The in-memory store: tests and the default demo. Forgets everything on restart.

mod grants;
mod login_state;
mod packed;
mod rate_limits;
mod recent_clients;

use std::collections::{BTreeMap, HashMap};
use std::sync::RwLock;
use std::time::Duration;

use async_trait::async_trait;

pub use self::login_state::MemoryLoginState;
pub use self::rate_limits::MemoryRateLimits;
pub use self::recent_clients::MemoryRecentClients;

use super::{
    Grant, GrantFilter, GrantRow, Listing, Page, PassthroughToken, RefreshRecord, RotateOutcome,
    Store, StoreError, StoredClient, StoredSigningKey, UpstreamTokens,
};
use crate::clock::UnixSeconds;

#[derive(Default)]
pub struct MemoryStore {
    clients: RwLock<HashMap<String, StoredClient>>,
    grants: grants::GrantTables,
    signing_keys: RwLock<BTreeMap<String, StoredSigningKey>>,
    consent_cookie_key: RwLock<Option<zeroize::Zeroizing<Vec<u8>>>>,
    /// Spent assertions by digest, with the time their record lives until.
    spent_assertions: RwLock<HashMap<[u8; 32], UnixSeconds>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }
}

fn poisoned<T>(_: T) -> StoreError {
    StoreError::Unavailable("memory store lock poisoned".to_owned())
}

#[async_trait]
impl Store for MemoryStore {
    async fn put_client(&self, client: StoredClient) -> Result<(), StoreError> {
        self.clients
            .write()
            .map_err(poisoned)?
            .insert(client.client_id.clone(), client);
        Ok(())
    }

    async fn get_client(&self, client_id: &str) -> Result<Option<StoredClient>, StoreError> {
        Ok(self
            .clients
            .read()
            .map_err(poisoned)?
            .get(client_id)
            .cloned())
    }

    async fn delete_client(&self, client_id: &str) -> Result<bool, StoreError> {
        Ok(self
            .clients
            .write()
            .map_err(poisoned)?
            .remove(client_id)
            .is_some())
    }

    async fn touch_client(&self, client_id: &str, at: UnixSeconds) -> Result<(), StoreError> {
        if let Some(client) = self.clients.write().map_err(poisoned)?.get_mut(client_id) {
            client.last_used_at = Some(client.last_used_at.map_or(at, |t| t.max(at)));
        }
        Ok(())
    }

    async fn stale_clients(
        &self,
        unused_before: UnixSeconds,
        idle_before: UnixSeconds,
    ) -> Result<Vec<StoredClient>, StoreError> {
        Ok(self
            .clients
            .read()
            .map_err(poisoned)?
            .values()
            .filter(|c| match c.last_used_at {
                None => c.issued_at < unused_before,
                Some(used) => used < idle_before,
            })
            .cloned()
            .collect())
    }

    async fn count_clients(&self) -> Result<u64, StoreError> {
        Ok(self.clients.read().map_err(poisoned)?.len() as u64)
    }

    async fn list_clients(&self, page: &Page) -> Result<Listing<StoredClient>, StoreError> {
        let clients = self.clients.read().map_err(poisoned)?;
        let mut found: Vec<&StoredClient> = clients
            .values()
            .filter(|c| page.admits(&c.client_id))
            .collect();
        found.sort_by(|a, b| a.client_id.cmp(&b.client_id));
        found.truncate(page.size() + 1);
        let rows = found.into_iter().cloned().collect();
        Ok(page.cut(rows, |c: &StoredClient| &c.client_id))
    }

    async fn put_grant(&self, grant: Grant) -> Result<(), StoreError> {
        self.grants.put_grant(grant)
    }

    async fn list_grants(
        &self,
        filter: &GrantFilter,
        page: &Page,
    ) -> Result<Listing<GrantRow>, StoreError> {
        self.grants.list(filter, page)
    }

    async fn grant_row(&self, grant_id: &str) -> Result<Option<GrantRow>, StoreError> {
        self.grants.row(grant_id)
    }

    async fn get_grant(&self, grant_id: &str) -> Result<Option<Grant>, StoreError> {
        self.grants.get_grant(grant_id)
    }

    async fn set_upstream_tokens(
        &self,
        grant_id: &str,
        tokens: UpstreamTokens,
    ) -> Result<(), StoreError> {
        self.grants.set_upstream_tokens(grant_id, tokens)
    }

    async fn revoke_grant(
        &self,
        grant_id: &str,
        now: UnixSeconds,
    ) -> Result<Option<Grant>, StoreError> {
        self.grants.revoke_grant(grant_id, now)
    }

    async fn put_refresh(&self, record: RefreshRecord) -> Result<(), StoreError> {
        self.grants.put_refresh(record)
    }

    async fn find_refresh(&self, hash: &[u8; 32]) -> Result<Option<RefreshRecord>, StoreError> {
        self.grants.find_refresh(hash)
    }

    async fn delete_refresh(&self, hash: &[u8; 32]) -> Result<bool, StoreError> {
        self.grants.delete_refresh(hash)
    }

    async fn rotate_refresh(
        &self,
        presented: [u8; 32],
        successor: RefreshRecord,
        now: UnixSeconds,
        grace: Duration,
    ) -> Result<RotateOutcome, StoreError> {
        self.grants.rotate_refresh(presented, successor, now, grace)
    }

    async fn put_passthrough(
        &self,
        token: PassthroughToken,
        _now: UnixSeconds,
    ) -> Result<(), StoreError> {
        self.grants.put_passthrough(token)
    }

    async fn find_passthrough(
        &self,
        digest: &[u8; 32],
        now: UnixSeconds,
    ) -> Result<Option<PassthroughToken>, StoreError> {
        self.grants.find_passthrough(digest, now)
    }

    async fn sweep_grants(
        &self,
        now: UnixSeconds,
        revoked_before: UnixSeconds,
        idle_before: UnixSeconds,
    ) -> Result<u64, StoreError> {
        self.grants.sweep(now, revoked_before, idle_before)
    }

    async fn spend_assertion(
        &self,
        digest: [u8; 32],
        until: UnixSeconds,
        now: UnixSeconds,
    ) -> Result<bool, StoreError> {
        let mut spent = self.spent_assertions.write().map_err(poisoned)?;
        spent.retain(|_, lives_until| now < *lives_until);
        if spent.contains_key(&digest) {
            return Ok(false);
        }
        spent.insert(digest, until);
        Ok(true)
    }

    async fn signing_keys(&self) -> Result<Vec<StoredSigningKey>, StoreError> {
        let mut keys: Vec<_> = self
            .signing_keys
            .read()
            .map_err(poisoned)?
            .values()
            .cloned()
            .collect();
        keys.sort_by_key(|k| k.activates_at);
        Ok(keys)
    }

    async fn add_signing_keys_if_none(
        &self,
        keys: Vec<StoredSigningKey>,
    ) -> Result<bool, StoreError> {
        let mut held = self.signing_keys.write().map_err(poisoned)?;
        if !held.is_empty() {
            return Ok(false);
        }
        held.extend(keys.into_iter().map(|k| (k.kid.clone(), k)));
        Ok(true)
    }

    async fn add_signing_key(&self, key: StoredSigningKey) -> Result<(), StoreError> {
        self.signing_keys
            .write()
            .map_err(poisoned)?
            .insert(key.kid.clone(), key);
        Ok(())
    }

    async fn delete_signing_keys(&self, kids: &[String]) -> Result<u64, StoreError> {
        let mut held = self.signing_keys.write().map_err(poisoned)?;
        Ok(kids
            .iter()
            .filter(|kid| held.remove(*kid).is_some())
            .count() as u64)
    }

    async fn consent_cookie_key(
        &self,
        candidate: zeroize::Zeroizing<Vec<u8>>,
    ) -> Result<zeroize::Zeroizing<Vec<u8>>, StoreError> {
        let mut held = self.consent_cookie_key.write().map_err(poisoned)?;
        Ok(held.get_or_insert(candidate).clone())
    }

    async fn probe(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests;
