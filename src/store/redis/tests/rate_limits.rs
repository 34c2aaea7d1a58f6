//! Rate-limit counters on Redis: the script decides exactly as the domain rule does,
//! replicas share one budget, and keys name no address.

use std::collections::HashMap;
use std::sync::Arc;

use ::redis::Commands;

use super::harness::RedisServer;
use super::{prefix, store_on};
use crate::domain::rate_limit::{Rate, admit};
use crate::store::suite::rate_limits::{RateSubject, rate_limits_behaviour};
use crate::store::{MemoryRateLimits, RateDecision, RateLimits};

fn open() -> RateSubject {
    let server = RedisServer::shared();
    let store = store_on(&server, &prefix());
    RateSubject::new(Arc::new(store), server)
}

rate_limits_behaviour!(open);

/// Three a minute, bursts of three: one event every 20 s at the steady rate.
const THREE_A_MINUTE: Rate = Rate {
    count: 3,
    period_ms: 60_000,
    burst: 3,
};

/// A broker-clock time in milliseconds near today's, as the limiter passes them.
const T0: u64 = 1_800_000_000_000;

/// A fixed pseudo-random sequence (xorshift), so a failure is reproducible.
struct Events(u64);

impl Events {
    fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below
    }
}

#[actix_web::test]
async fn the_script_decides_every_event_as_the_domain_rule_does() {
    let server = RedisServer::shared();
    let redis = store_on(&server, &prefix());
    let memory = MemoryRateLimits::new();
    // Intervals of 20 s or more: Redis forgets a state on its own (real) time, which
    // must not overtake the broker's time the test makes up.
    let rates = [
        (
            "one",
            Rate {
                count: 1,
                period_ms: 60_000,
                burst: 1,
            },
        ),
        (
            "seven",
            Rate {
                count: 7,
                period_ms: 3_600_000,
                burst: 3,
            },
        ),
        (
            "ten",
            Rate {
                count: 10,
                period_ms: 600_000,
                burst: 10,
            },
        ),
        (
            "odd",
            Rate {
                count: 3,
                period_ms: 1_000_001,
                burst: 100,
            },
        ),
    ];
    let mut events = Events(0x9e37_79b9_7f4a_7c15);
    let (mut admitted, mut refused) = (0, 0);
    for (limit, rate) in rates {
        let mut states: HashMap<u64, u64> = HashMap::new();
        let mut now = T0;
        for _ in 0..300 {
            // Mostly bursts at one instant, sometimes a pause of up to two intervals
            // (never backwards); three keys interleaved.
            if events.next(3) == 0 {
                now += events.next(2 * rate.interval() + 1);
            }
            let key = events.next(3);
            let expected = match admit(states.get(&key).copied(), now, rate) {
                Ok(state) => {
                    states.insert(key, state);
                    admitted += 1;
                    RateDecision::Admitted { state }
                }
                Err(wait_ms) => {
                    refused += 1;
                    RateDecision::Refused { wait_ms }
                }
            };
            let ip = format!("198.51.100.{key}");
            let from_redis = redis.admit(limit, &ip, rate, now).await.unwrap();
            let from_memory = memory.admit(limit, &ip, rate, now).await.unwrap();
            assert_eq!(from_redis, expected, "{limit}: {ip} at {now}");
            assert_eq!(from_memory, expected, "{limit}: {ip} at {now}");
        }
    }
    // The sequence exercised both answers.
    assert!(
        admitted > 100 && refused > 100,
        "{admitted} admitted, {refused} refused"
    );
}

#[actix_web::test]
async fn two_stores_on_one_redis_share_one_budget() {
    let server = RedisServer::shared();
    let prefix = prefix();
    let (a, b) = (store_on(&server, &prefix), store_on(&server, &prefix));
    let ip = "203.0.113.9";
    for store in [&a, &b, &a] {
        let decision = store.admit("registration", ip, THREE_A_MINUTE, T0).await;
        assert!(matches!(decision.unwrap(), RateDecision::Admitted { .. }));
    }
    // The burst is spent for both replicas, not per replica.
    for store in [&b, &a] {
        let decision = store.admit("registration", ip, THREE_A_MINUTE, T0).await;
        assert_eq!(decision.unwrap(), RateDecision::Refused { wait_ms: 20_000 });
    }
    // One interval later, one more event, wherever it lands.
    let later = T0 + 20_000;
    let admitted = b.admit("registration", ip, THREE_A_MINUTE, later).await;
    assert!(matches!(admitted.unwrap(), RateDecision::Admitted { .. }));
    let refused = a.admit("registration", ip, THREE_A_MINUTE, later).await;
    assert_eq!(refused.unwrap(), RateDecision::Refused { wait_ms: 20_000 });

    // Another address, another limit and another broker (prefix) have their own budgets.
    let other_ip = a.admit("registration", "203.0.113.10", THREE_A_MINUTE, later);
    assert!(matches!(
        other_ip.await.unwrap(),
        RateDecision::Admitted { .. }
    ));
    let other_limit = a.admit("login", ip, THREE_A_MINUTE, later);
    assert!(matches!(
        other_limit.await.unwrap(),
        RateDecision::Admitted { .. }
    ));
    let other_broker = store_on(&server, &super::prefix());
    let elsewhere = other_broker.admit("registration", ip, THREE_A_MINUTE, later);
    assert!(matches!(
        elsewhere.await.unwrap(),
        RateDecision::Admitted { .. }
    ));
}

#[actix_web::test]
async fn a_counter_names_no_address_and_lives_until_its_state_passes() {
    let server = RedisServer::shared();
    let prefix = prefix();
    let store = store_on(&server, &prefix);
    let odd = "203.0.113.9\r\n*1 :}{ \u{0}";
    for key in ["203.0.113.9", odd] {
        store
            .admit("registration", key, THREE_A_MINUTE, T0)
            .await
            .unwrap();
    }
    let mut conn = server.connection();
    let keys: Vec<String> = conn.keys(format!("{prefix}*")).unwrap();
    assert_eq!(keys.len(), 2, "{keys:?}");
    for key in &keys {
        let hash = key
            .strip_prefix(&format!("{prefix}rate:registration:"))
            .unwrap_or_else(|| panic!("{key}"));
        assert_eq!(hash.len(), 64, "{key}");
        assert!(hash.bytes().all(|b| b.is_ascii_hexdigit()), "{key}");
        // One event: its state passes one interval from now, and goes then.
        let ttl: i64 = ::redis::cmd("PTTL").arg(key).query(&mut conn).unwrap();
        assert!(0 < ttl && ttl <= 20_000, "{key}: {ttl} ms");
        let state: u64 = conn.get(key).unwrap();
        assert_eq!(state, T0 + 20_000);
    }
}

#[actix_web::test]
async fn a_corrupt_counter_is_reported_not_overwritten() {
    let server = RedisServer::shared();
    let prefix = prefix();
    let store = store_on(&server, &prefix);
    store
        .admit("registration", "203.0.113.9", THREE_A_MINUTE, T0)
        .await
        .unwrap();
    let mut conn = server.connection();
    let keys: Vec<String> = conn.keys(format!("{prefix}*")).unwrap();
    let () = conn.set(&keys[0], "soon").unwrap();
    let result = store
        .admit("registration", "203.0.113.9", THREE_A_MINUTE, T0)
        .await;
    assert!(
        matches!(result, Err(crate::store::StoreError::Corrupt(_))),
        "{result:?}"
    );
    let kept: String = conn.get(&keys[0]).unwrap();
    assert_eq!(kept, "soon");
}
