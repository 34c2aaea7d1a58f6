//! Registration's de-duplication memory: which client was made for identical public
//! metadata (by its fingerprint) within `registration.dedupe_window`, so a client
//! that registers again — on every start, say — is answered with the client it
//! already has. Behind a trait so that replicas on one Redis answer it alike,
//! whichever replica the registration reaches; a single process remembers in memory
//! (`memory` and `sqlite`: a restart only costs one extra client).

use std::time::Duration;

use async_trait::async_trait;

use super::StoreError;

#[async_trait]
pub trait RecentClients: Send + Sync + 'static {
    /// The client last remembered for `fingerprint`, unless its window has passed.
    /// It may have been removed since: look it up before using it.
    async fn recall(&self, fingerprint: &[u8; 32]) -> Result<Option<String>, StoreError>;

    /// Remembers `client_id` for `fingerprint` for `window`, replacing what was.
    async fn remember(
        &self,
        fingerprint: &[u8; 32],
        client_id: &str,
        window: Duration,
    ) -> Result<(), StoreError>;
}
