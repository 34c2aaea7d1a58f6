//! The provider as last discovered — its metadata and JWKS, fetched together — and
//! what the layers below the actors may ask of whoever keeps it current. Verification,
//! introspection and ID-token validation need a snapshot and, for a `kid` they do not
//! know, one rate-limited refetch; they need not know that an actor
//! (`actors::discovery`) does the fetching, so they hold a [`SnapshotSource`].

use std::sync::Arc;

use async_trait::async_trait;

use super::UpstreamError;
use super::discovery::ProviderInfo;
use super::jwks::KeySet;
use crate::clock::UnixSeconds;

/// Metadata and keys as fetched at one moment.
pub struct Snapshot {
    pub info: ProviderInfo,
    pub keys: KeySet,
    /// When the metadata was fetched; the JWKS may be newer.
    pub fetched_at: UnixSeconds,
}

/// Why no usable snapshot could be had.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DiscoveryError {
    /// The provider could not be used and no copy within the grace exists.
    #[error("upstream discovery failed: {0}")]
    Upstream(#[from] UpstreamError),
    /// The actor is gone (shutting down).
    #[error("the discovery actor has stopped")]
    Stopped,
}

/// Who keeps the snapshot current. [`fresh`](Self::fresh) is the hot path — every
/// verification of a provider token — so it is synchronous and allocates nothing;
/// the other two wait on a fetch and are taken only when it fails.
#[async_trait]
pub trait SnapshotSource: Send + Sync + 'static {
    /// The shared snapshot while it is within its TTL.
    fn fresh(&self) -> Option<Arc<Snapshot>>;

    /// A usable snapshot when [`fresh`](Self::fresh) has none: refreshed, or the last
    /// good one within the grace while the provider cannot be reached.
    async fn renewed(&self) -> Result<Arc<Snapshot>, DiscoveryError>;

    /// The snapshot to look for `kid` in, after a rate-limited JWKS refetch.
    async fn refetched_for(&self, kid: &str) -> Result<Arc<Snapshot>, DiscoveryError>;
}

impl dyn SnapshotSource + '_ {
    /// A snapshot usable now: the fresh one without waiting, else whatever
    /// [`renewed`](SnapshotSource::renewed) decides.
    pub async fn current(&self) -> Result<Arc<Snapshot>, DiscoveryError> {
        match self.fresh() {
            Some(snapshot) => Ok(snapshot),
            None => self.renewed().await,
        }
    }
}
