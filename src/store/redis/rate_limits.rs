//! Rate-limit counters on Redis, shared by every replica: a limit of N a minute is N
//! a minute across all of them.
//!
//! ```text
//! <p>rate:<limit>:<hex hash>   string: one key's GCRA state (ms), expiring when it passes
//! ```
//!
//! An operator's view (`peek`: GET) and reset (`reset`: DEL) act on the same key, so
//! a reset on one replica is the budget every replica reads next.
//!
//! Each decision is one script (`lua/rate_limit.lua`, the same decision as
//! `domain::rate_limit::admit`) given the broker's clock, so every replica decides
//! alike and a burst spread over replicas cannot slip past the limit. A key (a client
//! IP) appears only as its SHA-256, so no input makes an odd Redis key, and Redis
//! holds no address in the clear.
//!
//! Redis forgets a state on its own clock, after as many milliseconds as the
//! broker's clock needs to reach it. The broker's clock never runs slower than real
//! time (tests only move it forward), so no state is forgotten while it matters.

use std::sync::LazyLock;

use ::redis::Script;
use async_trait::async_trait;

use super::RedisStore;
use super::codec::{corrupt, redis_error};
use crate::domain::rate_limit::Rate;
use crate::store::StoreError;
use crate::store::rate_limits::{RateDecision, RateLimits};

static ADMIT: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/rate_limit.lua")));

#[async_trait]
impl RateLimits for RedisStore {
    async fn admit(
        &self,
        limit: &'static str,
        key: &str,
        rate: Rate,
        now_ms: u64,
    ) -> Result<RateDecision, StoreError> {
        let key = self
            .inner
            .keys
            .rate(limit, &crate::domain::digest::sha256(key.as_bytes()));
        self.call(move |s| async move {
            let (admitted, value): (i64, u64) = ADMIT
                .key(key)
                .arg(now_ms)
                .arg(rate.interval())
                .arg(rate.tolerance())
                .invoke_async(&mut s.conn())
                .await
                .map_err(redis_error)?;
            match admitted {
                1 => Ok(RateDecision::Admitted { state: value }),
                0 => Ok(RateDecision::Refused { wait_ms: value }),
                other => Err(corrupt(format!("rate limit: unexpected reply {other}"))),
            }
        })
        .await
    }

    async fn peek(&self, limit: &'static str, key: &str) -> Result<Option<u64>, StoreError> {
        let key = self
            .inner
            .keys
            .rate(limit, &crate::domain::digest::sha256(key.as_bytes()));
        self.call(move |s| async move {
            let value: Option<String> = ::redis::cmd("GET")
                .arg(key)
                .query_async(&mut s.conn())
                .await
                .map_err(redis_error)?;
            value
                .map(|v| {
                    v.parse::<u64>()
                        .map_err(|_| corrupt("a rate-limit state is not a number"))
                })
                .transpose()
        })
        .await
    }

    async fn reset(&self, limit: &'static str, key: &str) -> Result<(), StoreError> {
        let key = self
            .inner
            .keys
            .rate(limit, &crate::domain::digest::sha256(key.as_bytes()));
        self.call(move |s| async move {
            let _: i64 = ::redis::cmd("DEL")
                .arg(key)
                .query_async(&mut s.conn())
                .await
                .map_err(redis_error)?;
            Ok(())
        })
        .await
    }
}
