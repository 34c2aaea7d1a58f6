//! Rate limiting by GCRA (the generic cell rate algorithm): one number of state per
//! key (the theoretical arrival time), exact bursts, and a precise `Retry-After`.

/// Which budget of a resource a request spends, by the credential it was verified
/// with (none: anonymous).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialBudget {
    BrokerToken,
    UpstreamToken,
    ApiKey,
    Anonymous,
}

/// `count` events per `period_ms`, with bursts of up to `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: u32,
    pub period_ms: u64,
    pub burst: u32,
}

impl Rate {
    /// Milliseconds between two events at the steady rate (at least 1).
    pub fn interval(&self) -> u64 {
        (self.period_ms / u64::from(self.count.max(1))).max(1)
    }

    /// How far ahead of `now` a key's state may run: room for the burst's other events.
    pub fn tolerance(&self) -> u64 {
        self.interval() * u64::from(self.burst.max(1).saturating_sub(1))
    }
}

/// Decides one event at `now_ms` given the key's state (`None` for a new key).
/// `Ok(new_state)` admits it; `Err(wait_ms)` refuses it and says how long to wait.
/// The state matters only until `now_ms` reaches it: from then on the key is as
/// good as new, so a store may forget it then. `store/redis/lua/rate_limit.lua`
/// makes the same decision step for step; keep the two alike.
pub fn admit(state: Option<u64>, now_ms: u64, rate: Rate) -> Result<u64, u64> {
    let interval = rate.interval();
    let tolerance = rate.tolerance();
    let tat = state.unwrap_or(now_ms).max(now_ms);
    if tat > now_ms + tolerance {
        return Err(tat - tolerance - now_ms);
    }
    Ok(tat + interval)
}

/// Whole seconds to put in `Retry-After` for a wait, rounded up, at least 1.
pub fn retry_after_secs(wait_ms: u64) -> u64 {
    wait_ms.div_ceil(1000).max(1)
}

/// What a key has left after an admitted event left it at `state`: how many more
/// events `now_ms` would admit at once, and the whole seconds (rounded up) until its
/// whole burst is back — the state reached, the key as good as new.
pub fn left(state: u64, now_ms: u64, rate: Rate) -> Left {
    let horizon = now_ms + rate.tolerance();
    let remaining = if state > horizon {
        0
    } else {
        (horizon - state) / rate.interval() + 1
    };
    Left {
        remaining,
        reset_secs: state.saturating_sub(now_ms).div_ceil(1000),
    }
}

/// A key's budget after an event, for the `RateLimit` header's `r` and `t`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Left {
    pub remaining: u64,
    pub reset_secs: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIVE_A_MINUTE: Rate = Rate {
        count: 5,
        period_ms: 60_000,
        burst: 5,
    };

    #[test]
    fn a_burst_is_admitted_then_refused_until_the_next_slot() {
        let mut state = None;
        for _ in 0..5 {
            state = Some(admit(state, 0, FIVE_A_MINUTE).unwrap());
        }
        assert_eq!(admit(state, 0, FIVE_A_MINUTE), Err(12_000));
        assert_eq!(admit(state, 11_999, FIVE_A_MINUTE), Err(1));
        assert!(admit(state, 12_000, FIVE_A_MINUTE).is_ok());
        assert_eq!(retry_after_secs(12_000), 12);
        assert_eq!(retry_after_secs(1), 1);
    }

    #[test]
    fn what_is_left_counts_the_events_the_state_still_admits() {
        let mut state = None;
        let mut lefts = Vec::new();
        for _ in 0..5 {
            let next = admit(state, 0, FIVE_A_MINUTE).unwrap();
            lefts.push(left(next, 0, FIVE_A_MINUTE).remaining);
            state = Some(next);
        }
        assert_eq!(lefts, [4, 3, 2, 1, 0]);
        // The whole burst is back when the clock reaches the state.
        assert_eq!(left(60_000, 0, FIVE_A_MINUTE).reset_secs, 60);
        assert_eq!(left(60_000, 12_000, FIVE_A_MINUTE).remaining, 1);
        assert_eq!(left(60_000, 59_500, FIVE_A_MINUTE).reset_secs, 1);
    }

    #[test]
    fn a_quiet_key_recovers_its_whole_burst() {
        let mut state = None;
        for _ in 0..5 {
            state = Some(admit(state, 0, FIVE_A_MINUTE).unwrap());
        }
        for _ in 0..5 {
            state = Some(admit(state, 60_000, FIVE_A_MINUTE).unwrap());
        }
        assert!(admit(state, 60_000, FIVE_A_MINUTE).is_err());
    }
}
