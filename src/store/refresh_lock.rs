//! The replicas' per-grant refresh lock: one provider refresh of a grant at a time
//! across replicas that share a store (the exchange actor's refresh flights use it;
//! Redis implements it in `redis::refresh_lock`). Here because it is the store's
//! contract, like `LoginState` and `RateLimits`.

use std::time::Duration;

use async_trait::async_trait;

use super::StoreError;

/// The replicas' per-grant refresh lock (Redis: `store::redis::refresh_lock`).
#[async_trait]
pub trait RefreshLock: Send + Sync + 'static {
    /// Takes the lock on `grant_id` for `ttl`, writing `owner` (a random token), when
    /// it is free; `true` then.
    async fn try_lock(
        &self,
        grant_id: &str,
        owner: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError>;

    /// Releases the lock if `owner` still holds it (it may have expired and been
    /// taken over).
    async fn unlock(&self, grant_id: &str, owner: &str) -> Result<(), StoreError>;
}
