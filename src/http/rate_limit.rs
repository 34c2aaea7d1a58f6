//! Per-key rate limiting (GCRA from `domain::rate_limit`) over a bounded concurrent
//! map; each key's state is updated atomically, so a burst of parallel requests
//! cannot slip past the limit.

use std::hash::Hash;
use std::time::{Duration, UNIX_EPOCH};

use moka::ops::compute::Op;
use moka::sync::Cache;

use crate::clock::Clock;
use crate::domain::rate_limit::{Rate, admit, retry_after_secs};

pub struct RateLimiter<K: Hash + Eq + Send + Sync + Clone + 'static> {
    rate: Rate,
    state: Cache<K, u64>,
    clock: Clock,
}

impl<K: Hash + Eq + Send + Sync + Clone + 'static> RateLimiter<K> {
    pub fn new(rate: Rate, clock: Clock) -> Self {
        // A key idle for a whole period has its full burst back: forget it then.
        let idle = Duration::from_millis(rate.period_ms.saturating_mul(2));
        Self {
            rate,
            state: Cache::builder()
                .max_capacity(1_000_000)
                .time_to_idle(idle)
                .build(),
            clock,
        }
    }

    /// Admits one event for `key`, or says how many seconds to wait (`Retry-After`).
    pub fn admit(&self, key: K) -> Result<(), u64> {
        let now_ms = self
            .clock
            .now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let mut refused = None;
        self.state.entry(key).and_compute_with(|entry| {
            match admit(entry.map(|e| e.into_value()), now_ms, self.rate) {
                Ok(next) => Op::Put(next),
                Err(wait) => {
                    refused = Some(retry_after_secs(wait));
                    Op::Nop
                }
            }
        });
        match refused {
            Some(secs) => Err(secs),
            None => Ok(()),
        }
    }
}
