//! A rate limit as flows use it: one named limit (GCRA from `domain::rate_limit`)
//! over the store's counters — this process's memory, or Redis when replicas share
//! it, so the limit holds for all of them together — timed by the broker's clock.

use std::sync::Arc;
use std::time::UNIX_EPOCH;

use crate::clock::Clock;
use crate::domain::rate_limit::{Rate, retry_after_secs};
use crate::store::{RateDecision, RateLimits, StoreError};

pub struct RateLimiter {
    /// Names the limit in the counters (and in Redis keys): a fixed word.
    name: &'static str,
    rate: Rate,
    counters: Arc<dyn RateLimits>,
    clock: Clock,
}

/// Why an event was not admitted.
#[derive(Debug)]
pub enum Refusal {
    /// Over the limit: retry after this many whole seconds (`Retry-After`).
    Limited { retry_after_secs: u64 },
    /// The counters could not be reached (Redis down): nothing is known, so nothing
    /// is admitted.
    Unavailable(StoreError),
}

impl RateLimiter {
    pub fn new(
        name: &'static str,
        rate: Rate,
        counters: Arc<dyn RateLimits>,
        clock: Clock,
    ) -> Self {
        Self {
            name,
            rate,
            counters,
            clock,
        }
    }

    /// Admits one event for `key`, or says why not.
    pub async fn admit(&self, key: &str) -> Result<(), Refusal> {
        let now_ms = self
            .clock
            .now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        match self
            .counters
            .admit(self.name, key, self.rate, now_ms)
            .await
            .map_err(Refusal::Unavailable)?
        {
            RateDecision::Admitted { .. } => Ok(()),
            RateDecision::Refused { wait_ms } => Err(Refusal::Limited {
                retry_after_secs: retry_after_secs(wait_ms),
            }),
        }
    }
}
