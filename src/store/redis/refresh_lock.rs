//! The replicas' per-grant refresh lock on Redis (the trait: `store::refresh_lock`; its
//! use: the exchange actor's refresh flights).
//!
//! ```text
//! <p>refresh-lock:<grant_id>   string: the holder's random owner token, PX = the lock's life
//! ```
//!
//! Taking it is `SET NX PX`; releasing it is one script that deletes it only while
//! it still holds the releasing owner's token. Nothing else is written: the grant,
//! with its refreshed provider tokens, is what waiters read.

use std::sync::LazyLock;
use std::time::Duration;

use ::redis::Script;
use async_trait::async_trait;

use super::RedisStore;
use super::codec::redis_error;
use crate::store::{RefreshLock, StoreError};

static UNLOCK: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        include_str!("lua/common.lua"),
        include_str!("lua/refresh_unlock.lua")
    ))
});

#[async_trait]
impl RefreshLock for RedisStore {
    async fn try_lock(
        &self,
        grant_id: &str,
        owner: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let key = self.inner.keys.refresh_lock(grant_id);
        let owner = owner.to_owned();
        // Milliseconds, at least one: `PX 0` is refused.
        let px = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        self.call(move |s| async move {
            let set: Option<String> = ::redis::cmd("SET")
                .arg(key)
                .arg(&owner)
                .arg("NX")
                .arg("PX")
                .arg(px)
                .query_async(&mut s.conn())
                .await
                .map_err(redis_error)?;
            Ok(set.is_some())
        })
        .await
    }

    async fn unlock(&self, grant_id: &str, owner: &str) -> Result<(), StoreError> {
        let key = self.inner.keys.refresh_lock(grant_id);
        let owner = owner.to_owned();
        self.call(move |s| async move {
            UNLOCK
                .key(key)
                .arg(s.keys.prefix())
                .arg(owner)
                .invoke_async::<i64>(&mut s.conn())
                .await
                .map_err(redis_error)?;
            Ok(())
        })
        .await
    }
}
