//! Registration's de-duplication memory on Redis, shared by every replica: a client
//! registering the same public metadata again gets the client it already has,
//! whichever replica it reaches.
//!
//! ```text
//! <p>public_client:<hex fingerprint>   string: the client id, expiring with the window
//! ```

use std::time::Duration;

use async_trait::async_trait;

use super::RedisStore;
use super::codec::redis_error;
use crate::store::StoreError;
use crate::store::recent_clients::RecentClients;

#[async_trait]
impl RecentClients for RedisStore {
    async fn recall(&self, fingerprint: &[u8; 32]) -> Result<Option<String>, StoreError> {
        let key = self.inner.keys.public_client(fingerprint);
        self.call(move |s| async move {
            ::redis::cmd("GET")
                .arg(key)
                .query_async::<Option<String>>(&mut s.conn())
                .await
                .map_err(redis_error)
        })
        .await
    }

    async fn remember(
        &self,
        fingerprint: &[u8; 32],
        client_id: &str,
        window: Duration,
    ) -> Result<(), StoreError> {
        let key = self.inner.keys.public_client(fingerprint);
        let client_id = client_id.to_owned();
        // Milliseconds, at least one: `PX 0` is refused.
        let px = u64::try_from(window.as_millis()).unwrap_or(u64::MAX).max(1);
        self.call(move |s| async move {
            ::redis::cmd("SET")
                .arg(key)
                .arg(client_id)
                .arg("PX")
                .arg(px)
                .query_async::<()>(&mut s.conn())
                .await
                .map_err(redis_error)
        })
        .await
    }
}
