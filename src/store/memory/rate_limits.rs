//! Rate-limit counters in this process's memory: a bounded concurrent map whose
//! entries are updated atomically, each forgotten once its state no longer matters.

use std::time::Duration;

use async_trait::async_trait;
use moka::Expiry;
use moka::ops::compute::Op;
use moka::sync::Cache;

use crate::domain::rate_limit::{Rate, admit};
use crate::store::StoreError;
use crate::store::rate_limits::{RateDecision, RateLimits};

/// Keys held at most; beyond, the least recently used go first (which forgives them).
const CAPACITY: u64 = 1_000_000;

/// A key's state and how long it matters.
#[derive(Clone, Copy)]
struct Entry {
    tat: u64,
    keep: Duration,
}

/// Keeps an entry as long as its state matters: until the broker's clock reaches it
/// (measured when written; a forgotten key is as good as new, see `admit`).
struct UntilPassed;

impl Expiry<(&'static str, String), Entry> for UntilPassed {
    fn expire_after_create(
        &self,
        _: &(&'static str, String),
        entry: &Entry,
        _: std::time::Instant,
    ) -> Option<Duration> {
        Some(entry.keep)
    }

    fn expire_after_update(
        &self,
        _: &(&'static str, String),
        entry: &Entry,
        _: std::time::Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(entry.keep)
    }
}

pub struct MemoryRateLimits {
    state: Cache<(&'static str, String), Entry>,
}

impl MemoryRateLimits {
    pub fn new() -> Self {
        Self {
            state: Cache::builder()
                .max_capacity(CAPACITY)
                .expire_after(UntilPassed)
                .build(),
        }
    }
}

impl Default for MemoryRateLimits {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl RateLimits for MemoryRateLimits {
    async fn admit(
        &self,
        limit: &'static str,
        key: &str,
        rate: Rate,
        now_ms: u64,
    ) -> Result<RateDecision, StoreError> {
        let mut decision = RateDecision::Refused { wait_ms: 0 };
        self.state
            .entry((limit, key.to_owned()))
            .and_compute_with(|entry| {
                match admit(entry.map(|e| e.into_value().tat), now_ms, rate) {
                    Ok(tat) => {
                        decision = RateDecision::Admitted { state: tat };
                        Op::Put(Entry {
                            tat,
                            keep: Duration::from_millis(tat.saturating_sub(now_ms)),
                        })
                    }
                    Err(wait_ms) => {
                        decision = RateDecision::Refused { wait_ms };
                        Op::Nop
                    }
                }
            });
        Ok(decision)
    }

    async fn peek(&self, limit: &'static str, key: &str) -> Result<Option<u64>, StoreError> {
        Ok(self.state.get(&(limit, key.to_owned())).map(|e| e.tat))
    }

    async fn reset(&self, limit: &'static str, key: &str) -> Result<(), StoreError> {
        self.state.invalidate(&(limit, key.to_owned()));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::MemoryRateLimits;
    use crate::store::suite::rate_limits::{RateSubject, rate_limits_behaviour};

    fn open() -> RateSubject {
        RateSubject::new(Arc::new(MemoryRateLimits::new()), ())
    }

    rate_limits_behaviour!(open);
}
