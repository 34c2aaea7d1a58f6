//! Rate-limit counters in this process's memory: shards of plain maps behind mutexes,
//! one GCRA state per key, each forgotten once the broker's clock has passed it.
//!
//! Not a moka cache: the check runs on every request to a limited resource, and a
//! cache's write path (its write log, per-entry expiry timers, eviction bookkeeping)
//! cost more than the rest of the check together. A state matters only until the
//! clock reaches it, so a shard forgets the passed ones itself when it grows: at most
//! twice the live keys, never more than its share of [`CAPACITY`].

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;

use crate::domain::rate_limit::{Rate, admit};
use crate::store::StoreError;
use crate::store::rate_limits::{RateDecision, RateLimits};

/// Keys held at most; beyond, a new key displaces another (forgiving it).
const CAPACITY: usize = 1_000_000;
/// Shards: two workers rarely wait on each other.
const SHARDS: usize = 64;
/// A shard looks for passed states once it holds this many keys (and then again at
/// twice what it kept).
const FIRST_SWEEP: usize = 1_024;

/// One shard: per limit, each key's state (the theoretical arrival time, ms).
#[derive(Default)]
struct Shard {
    limits: Vec<(&'static str, HashMap<Box<str>, u64>)>,
    /// Keys held across this shard's limits.
    len: usize,
    /// The size at which it next forgets passed states.
    sweep_at: usize,
}

pub struct MemoryRateLimits {
    shards: Box<[Mutex<Shard>]>,
    hasher: RandomState,
}

impl MemoryRateLimits {
    pub fn new() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            hasher: RandomState::new(),
        }
    }

    fn shard(&self, key: &str) -> MutexGuard<'_, Shard> {
        let index = usize::try_from(self.hasher.hash_one(key) % SHARDS as u64).unwrap_or(0);
        // A panic while holding the lock leaves a consistent map: every update is one
        // assignment.
        self.shards[index]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Default for MemoryRateLimits {
    fn default() -> Self {
        Self::new()
    }
}

impl Shard {
    fn map(&mut self, limit: &'static str) -> &mut HashMap<Box<str>, u64> {
        let index = match self.limits.iter().position(|(name, _)| *name == limit) {
            Some(index) => index,
            None => {
                self.limits.push((limit, HashMap::new()));
                self.limits.len() - 1
            }
        };
        &mut self.limits[index].1
    }

    /// Room for one more key at `now_ms`: passed states forgotten once the shard has
    /// grown to twice what it kept; near its bound, a quarter of it displaced at once
    /// (forgiven), so that a flood of live keys costs each insert O(1) on average.
    fn make_room(&mut self, now_ms: u64) {
        let bound = CAPACITY / SHARDS;
        if self.len < self.sweep_at.clamp(FIRST_SWEEP, bound) {
            return;
        }
        for (_, map) in &mut self.limits {
            map.retain(|_, tat| *tat > now_ms);
        }
        self.recount();
        if self.len >= bound / 8 * 7 {
            let mut excess = self.len - bound / 4 * 3;
            for (_, map) in &mut self.limits {
                map.retain(|_, _| {
                    let keep = excess == 0;
                    excess = excess.saturating_sub(1);
                    keep
                });
            }
            self.recount();
        }
        self.sweep_at = 2 * self.len;
    }

    fn recount(&mut self) {
        self.len = self.limits.iter().map(|(_, map)| map.len()).sum();
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
        let mut shard = self.shard(key);
        if let Some(state) = shard.map(limit).get_mut(key) {
            return Ok(match admit(Some(*state), now_ms, rate) {
                Ok(tat) => {
                    *state = tat;
                    RateDecision::Admitted { state: tat }
                }
                Err(wait_ms) => RateDecision::Refused { wait_ms },
            });
        }
        match admit(None, now_ms, rate) {
            Ok(tat) => {
                shard.make_room(now_ms);
                shard.map(limit).insert(key.into(), tat);
                shard.len += 1;
                Ok(RateDecision::Admitted { state: tat })
            }
            Err(wait_ms) => Ok(RateDecision::Refused { wait_ms }),
        }
    }

    async fn peek(&self, limit: &'static str, key: &str) -> Result<Option<u64>, StoreError> {
        Ok(self.shard(key).map(limit).get(key).copied())
    }

    async fn reset(&self, limit: &'static str, key: &str) -> Result<(), StoreError> {
        let mut shard = self.shard(key);
        if shard.map(limit).remove(key).is_some() {
            shard.len -= 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::store::suite::rate_limits::{RateSubject, rate_limits_behaviour};

    fn open() -> RateSubject {
        RateSubject::new(Arc::new(MemoryRateLimits::new()), ())
    }

    rate_limits_behaviour!(open);

    #[test]
    fn a_full_shard_of_live_keys_displaces_a_quarter_at_once() {
        let bound = CAPACITY / SHARDS;
        let mut shard = Shard {
            sweep_at: usize::MAX,
            ..Shard::default()
        };
        for i in 0..bound {
            shard.map("suite").insert(format!("k{i}").into(), 5_000);
            shard.len += 1;
        }
        shard.make_room(0);
        assert_eq!(shard.len, bound / 4 * 3);
        assert_eq!(shard.map("suite").len(), shard.len);
        // The next quarter of inserts finds room without sweeping.
        assert_eq!(shard.sweep_at.clamp(FIRST_SWEEP, bound), bound);
    }

    #[test]
    fn a_shard_forgets_passed_states_when_it_grows() {
        let mut shard = Shard::default();
        for i in 0..FIRST_SWEEP {
            shard.map("suite").insert(format!("k{i}").into(), 1_000);
            shard.len += 1;
        }
        // Still live at 999: kept, and the next sweep waits for twice as many.
        shard.make_room(999);
        assert_eq!((shard.len, shard.sweep_at), (FIRST_SWEEP, 2 * FIRST_SWEEP));
        shard.make_room(999);
        assert_eq!(
            shard.len, FIRST_SWEEP,
            "below the next sweep: nothing to do"
        );
        shard.sweep_at = 0;
        shard.make_room(1_000);
        assert_eq!(shard.len, 0);
        assert!(shard.map("suite").is_empty());
    }
}
