//! The `RateLimits` contract, for every implementation (memory — which the sqlite
//! backend uses too — and Redis): each function states one rule against whatever it
//! is handed, and `rate_limits_behaviour!` turns the list into tests (see
//! `memory/rate_limits.rs`, `redis/tests/rate_limits.rs`). Time is passed in.

use std::any::Any;
use std::sync::Arc;

use crate::domain::rate_limit::Rate;
use crate::store::{RateDecision, RateLimits};

/// An implementation under test, with whatever must outlive it (a Redis server).
pub struct RateSubject {
    pub counters: Arc<dyn RateLimits>,
    _keep: Box<dyn Any + Send>,
}

impl RateSubject {
    pub fn new(counters: Arc<dyn RateLimits>, keep: impl Any + Send) -> Self {
        Self {
            counters,
            _keep: Box::new(keep),
        }
    }
}

/// Two a minute, both at once: one event every 30 s at the steady rate.
pub const TWO_A_MINUTE: Rate = Rate {
    count: 2,
    period_ms: 60_000,
    burst: 2,
};

/// A broker-clock time near today's, in milliseconds.
pub const T0: u64 = 1_800_000_000_000;

async fn spend(counters: &dyn RateLimits, key: &str) -> RateDecision {
    counters
        .admit("suite", key, TWO_A_MINUTE, T0)
        .await
        .unwrap()
}

/// `peek` reads what `admit` wrote, and reading changes nothing.
pub async fn peek_reads_the_state_without_spending(counters: &dyn RateLimits) {
    assert_eq!(counters.peek("suite", "k1").await.unwrap(), None);
    let RateDecision::Admitted { state } = spend(counters, "k1").await else {
        panic!("the first event is admitted");
    };
    for _ in 0..3 {
        assert_eq!(counters.peek("suite", "k1").await.unwrap(), Some(state));
    }
    // Still one event left of the burst: peeking spent none.
    assert!(matches!(
        spend(counters, "k1").await,
        RateDecision::Admitted { .. }
    ));
    assert!(matches!(
        spend(counters, "k1").await,
        RateDecision::Refused { .. }
    ));
    // Another key, another limit: nothing.
    assert_eq!(counters.peek("suite", "k2").await.unwrap(), None);
    assert_eq!(counters.peek("other", "k1").await.unwrap(), None);
}

/// `reset` gives a spent key its whole burst back at once, touches no other key, and
/// may be repeated.
pub async fn reset_gives_the_whole_burst_back_and_is_idempotent(counters: &dyn RateLimits) {
    for key in ["k1", "k2"] {
        spend(counters, key).await;
        spend(counters, key).await;
        assert!(matches!(
            spend(counters, key).await,
            RateDecision::Refused { .. }
        ));
    }
    counters.reset("suite", "k1").await.unwrap();
    counters.reset("suite", "k1").await.unwrap();
    counters.reset("suite", "never-seen").await.unwrap();
    assert_eq!(counters.peek("suite", "k1").await.unwrap(), None);
    for _ in 0..2 {
        assert!(matches!(
            spend(counters, "k1").await,
            RateDecision::Admitted { .. }
        ));
    }
    assert!(matches!(
        spend(counters, "k2").await,
        RateDecision::Refused { .. }
    ));
}

/// Declares one test per suite function for the implementation `$open()` returns
/// (a [`RateSubject`]).
macro_rules! rate_limits_behaviour {
    ($open:path) => {
        $crate::store::suite::rate_limits::rate_limits_behaviour!(@async $open;
            peek_reads_the_state_without_spending,
            reset_gives_the_whole_burst_back_and_is_idempotent,
        );
    };
    (@async $open:path; $($name:ident),* $(,)?) => {$(
        #[actix_web::test]
        async fn $name() {
            let subject = $open();
            $crate::store::suite::rate_limits::$name(&*subject.counters).await;
        }
    )*};
}
pub(crate) use rate_limits_behaviour;
