//! Rate-limit counters: one GCRA state (`domain::rate_limit`) per limited key. Behind
//! a trait so that replicas on one Redis count against one budget — two replicas
//! behind a load balancer must not each admit the full rate — while a single process
//! counts in memory (`memory` and `sqlite` backends both use the memory
//! implementation: a restart only forgives a burst).
//!
//! Each decision reads and writes a key's state in one atomic step, so a burst of
//! parallel requests, on one replica or several, cannot slip past the limit. Time is
//! passed in (the broker's clock, in milliseconds), never read here.

use async_trait::async_trait;

use super::StoreError;
use crate::domain::rate_limit::Rate;

/// The decision on one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateDecision {
    /// Admitted, and counted: the key's new `state` (`domain::rate_limit::left` tells
    /// what it has left).
    Admitted { state: u64 },
    /// Refused (nothing counted): the next event for this key is admitted in `wait_ms`.
    Refused { wait_ms: u64 },
}

/// Counters for any number of limits, each named (`"registration"`), each holding a
/// state per key (a client IP, say). Keys are arbitrary text: an implementation
/// that names records after them must hash or escape them.
#[async_trait]
pub trait RateLimits: Send + Sync + 'static {
    /// Decides one event for `key` under `limit` at `now_ms`, counting it when
    /// admitted. `rate` must be the same on every call for one `limit`.
    async fn admit(
        &self,
        limit: &'static str,
        key: &str,
        rate: Rate,
        now_ms: u64,
    ) -> Result<RateDecision, StoreError>;

    /// The state `key` holds under `limit` (`None`: never counted, or forgotten once
    /// it passed), for the operator's view of a budget; changes nothing. A state the
    /// clock has passed means the whole burst is back (`domain::rate_limit::left`).
    async fn peek(&self, limit: &'static str, key: &str) -> Result<Option<u64>, StoreError>;

    /// Forgets `key`'s state under `limit`, giving it its whole burst back at once (on
    /// Redis for every replica). Idempotent.
    async fn reset(&self, limit: &'static str, key: &str) -> Result<(), StoreError>;
}
