//! Retry timing for a provider that answers 429 or 503: exponential backoff with full
//! jitter, honouring `Retry-After`, with bounded attempts and an overall deadline.

use std::time::{Duration, SystemTime};

/// The retry rules (`[registration]` in proxy mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffPolicy {
    pub base: Duration,
    pub cap: Duration,
    pub max_attempts: u32,
    pub deadline: Duration,
    /// A `Retry-After` longer than this is not waited for.
    pub max_retry_after: Duration,
}

impl Default for BackoffPolicy {
    fn default() -> Self {
        Self {
            base: Duration::from_millis(200),
            cap: Duration::from_secs(10),
            max_attempts: 5,
            deadline: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(30),
        }
    }
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    RetryAfter(Duration),
    /// Stop; tell our own client to come back after this long.
    GiveUp {
        retry_after: Duration,
    },
}

/// `Retry-After` (RFC 9110 §10.2.3): delay seconds or an HTTP date. A past date is zero.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Decides after `attempt` attempts (1-based) and `elapsed` time. `random` in [0, 1)
/// is passed in so tests are exact.
pub fn next(
    policy: &BackoffPolicy,
    attempt: u32,
    elapsed: Duration,
    server_retry_after: Option<Duration>,
    random: f64,
) -> Decision {
    let exponent = attempt.saturating_sub(1).min(30);
    let ceiling = policy.base.saturating_mul(1u32 << exponent).min(policy.cap);
    let jitter = ceiling.mul_f64(random.clamp(0.0, 1.0));
    let sleep = server_retry_after.map_or(jitter, |server| server.max(jitter));
    let give_up = |retry_after: Duration| Decision::GiveUp {
        retry_after: server_retry_after
            .unwrap_or(retry_after)
            .max(Duration::from_secs(1)),
    };
    if server_retry_after.is_some_and(|s| s > policy.max_retry_after) {
        return give_up(sleep);
    }
    if attempt >= policy.max_attempts || elapsed + sleep > policy.deadline {
        return give_up(Duration::from_secs(sleep.as_secs_f64().ceil() as u64));
    }
    Decision::RetryAfter(sleep)
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: BackoffPolicy = BackoffPolicy {
        base: Duration::from_millis(200),
        cap: Duration::from_secs(10),
        max_attempts: 5,
        deadline: Duration::from_secs(30),
        max_retry_after: Duration::from_secs(30),
    };

    #[test]
    fn full_jitter_grows_exponentially_up_to_the_cap() {
        assert_eq!(
            next(&P, 1, Duration::ZERO, None, 0.5),
            Decision::RetryAfter(Duration::from_millis(100))
        );
        assert_eq!(
            next(&P, 3, Duration::ZERO, None, 0.5),
            Decision::RetryAfter(Duration::from_millis(400))
        );
        let capped = BackoffPolicy {
            max_attempts: 100,
            ..P
        };
        assert_eq!(
            next(&capped, 20, Duration::ZERO, None, 0.5),
            Decision::RetryAfter(Duration::from_secs(5))
        );
    }

    #[test]
    fn retry_after_is_a_floor_and_an_overlong_one_gives_up() {
        assert_eq!(
            next(&P, 1, Duration::ZERO, Some(Duration::from_secs(2)), 0.5),
            Decision::RetryAfter(Duration::from_secs(2))
        );
        assert_eq!(
            next(&P, 1, Duration::ZERO, Some(Duration::from_secs(60)), 0.5),
            Decision::GiveUp {
                retry_after: Duration::from_secs(60)
            }
        );
    }

    #[test]
    fn attempts_and_deadline_bound_the_retries() {
        assert!(matches!(
            next(&P, 5, Duration::ZERO, None, 0.5),
            Decision::GiveUp { .. }
        ));
        assert_eq!(
            next(
                &P,
                2,
                Duration::from_secs(29),
                Some(Duration::from_secs(3)),
                0.1
            ),
            Decision::GiveUp {
                retry_after: Duration::from_secs(3)
            }
        );
    }

    #[test]
    fn retry_after_parses_seconds_and_http_dates() {
        let now = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:47 GMT", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
