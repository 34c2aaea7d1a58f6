//! The other replicas, as the Invalidator sees them: a channel that carries each
//! invalidation decided here to every replica sharing the store. Beside the other
//! traits a shared backend implements (`RateLimits`, `RecentClients`, `LoginState`):
//! Redis publishes over pub/sub (`RedisPeers`); a single process has no peers. What
//! travels is `domain::invalidation::Invalidation`, the admin body's own type.

use crate::domain::invalidation::Invalidation;

/// The other replicas (a shared store's publish/subscribe channel). `publish` must not
/// block: queue and return.
pub trait Peers: Send + Sync + 'static {
    fn publish(&self, what: &Invalidation);
}
