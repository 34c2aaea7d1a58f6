//! Fault knobs and call counters. Set at start (`[[faults]]` in the config) or at run
//! time over `/_dev/...`, so tests can make the IdP slow, rate-limited, refusing or
//! down, and then prove from the counters how many calls the broker made and when.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::clock::Clock;

/// The endpoints faults and counters are kept for.
pub const ENDPOINTS: &[&str] = &[
    "discovery",
    "jwks",
    "authorize",
    "token",
    "register",
    "introspect",
    "revoke",
    "userinfo",
];

/// One knob for one endpoint: answer the next `count` calls with `status` (429 or
/// 503, with `retry_after` as seconds or an HTTP date), and/or delay every call.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    pub endpoint: String,
    pub status: Option<u16>,
    pub count: Option<u32>,
    pub retry_after: Option<String>,
    pub latency_ms: Option<u64>,
}

impl FaultSpec {
    pub fn check(&self) -> Result<(), String> {
        if !ENDPOINTS.contains(&self.endpoint.as_str()) {
            return Err(format!(
                "unknown endpoint `{}` (one of {})",
                self.endpoint,
                ENDPOINTS.join(", ")
            ));
        }
        if self.count == Some(0) {
            // A queued fault always answers at least one call; zero would still fail one.
            return Err("count must be at least 1".to_owned());
        }
        match self.status {
            None | Some(429) | Some(503) => Ok(()),
            Some(other) => Err(format!("status {other} is not 429 or 503")),
        }
    }
}

/// What the gate decided for one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Serve it, after the configured latency.
    Serve { delay: Option<Duration> },
    /// Answer with this status (and `Retry-After`).
    Fail {
        status: u16,
        retry_after: Option<String>,
    },
    /// The IdP is "down": 503 for everything but the control API.
    Down,
}

#[derive(Default)]
struct State {
    queued: HashMap<String, VecDeque<(u16, u32, Option<String>)>>,
    latency: HashMap<String, Duration>,
    down: bool,
    refuse_exchange: Option<String>,
}

/// The calls one endpoint (or grant) received.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CallLog {
    pub count: u64,
    /// Unix milliseconds of the most recent calls (at most 1000).
    pub at_ms: VecDeque<u64>,
}

const KEPT_TIMESTAMPS: usize = 1000;
/// `traceparent` headers kept per path, the most recent last, for at most
/// `TRACED_PATHS` paths (any caller can make up paths).
const KEPT_TRACEPARENTS: usize = 100;
const TRACED_PATHS: usize = 64;

/// Knobs and counters, shared by every worker.
pub struct Faults {
    clock: Clock,
    state: Mutex<State>,
    calls: Mutex<BTreeMap<String, CallLog>>,
    traceparents: Mutex<BTreeMap<String, VecDeque<String>>>,
}

impl Faults {
    pub fn new(clock: Clock, initial: &[FaultSpec]) -> Result<Self, String> {
        let faults = Self {
            clock,
            state: Mutex::new(State::default()),
            calls: Mutex::new(BTreeMap::new()),
            traceparents: Mutex::new(BTreeMap::new()),
        };
        for spec in initial {
            faults.set(spec)?;
        }
        Ok(faults)
    }

    /// Adds a knob.
    pub fn set(&self, spec: &FaultSpec) -> Result<(), String> {
        spec.check()?;
        let mut state = self.state.lock().map_err(|_| "fault state poisoned")?;
        if let Some(status) = spec.status {
            state
                .queued
                .entry(spec.endpoint.clone())
                .or_default()
                .push_back((status, spec.count.unwrap_or(1), spec.retry_after.clone()));
        }
        if let Some(ms) = spec.latency_ms {
            if ms == 0 {
                state.latency.remove(&spec.endpoint);
            } else {
                state
                    .latency
                    .insert(spec.endpoint.clone(), Duration::from_millis(ms));
            }
        }
        Ok(())
    }

    pub fn set_down(&self, down: bool) {
        if let Ok(mut state) = self.state.lock() {
            state.down = down;
        }
    }

    /// Makes token exchange (RFC 8693 and OBO) fail with `error`, or succeed again.
    pub fn set_refuse_exchange(&self, error: Option<String>) {
        if let Ok(mut state) = self.state.lock() {
            state.refuse_exchange = error;
        }
    }

    pub fn refuse_exchange(&self) -> Option<String> {
        self.state.lock().ok()?.refuse_exchange.clone()
    }

    /// Clears knobs and counters.
    pub fn reset(&self) {
        if let Ok(mut state) = self.state.lock() {
            *state = State::default();
        }
        if let Ok(mut calls) = self.calls.lock() {
            calls.clear();
        }
        if let Ok(mut traceparents) = self.traceparents.lock() {
            traceparents.clear();
        }
    }

    /// Keeps the W3C `traceparent` a request to `path` carried, so a test can prove
    /// the broker sent its trace on.
    pub fn record_traceparent(&self, path: &str, traceparent: &str) {
        if let Ok(mut kept) = self.traceparents.lock() {
            if kept.len() >= TRACED_PATHS && !kept.contains_key(path) {
                return;
            }
            let list = kept.entry(path.to_owned()).or_default();
            if list.len() == KEPT_TRACEPARENTS {
                list.pop_front();
            }
            list.push_back(traceparent.to_owned());
        }
    }

    pub fn traceparents(&self) -> BTreeMap<String, VecDeque<String>> {
        self.traceparents
            .lock()
            .map(|t| t.clone())
            .unwrap_or_default()
    }

    /// Counts a call to `name` and decides what happens to it.
    pub fn gate(&self, endpoint: &str) -> Verdict {
        self.record(endpoint);
        let Ok(mut state) = self.state.lock() else {
            return Verdict::Serve { delay: None };
        };
        if state.down {
            return Verdict::Down;
        }
        if let Some(queue) = state.queued.get_mut(endpoint)
            && let Some(front) = queue.front_mut()
        {
            let (status, retry_after) = (front.0, front.2.clone());
            front.1 = front.1.saturating_sub(1);
            if front.1 == 0 {
                queue.pop_front();
            }
            return Verdict::Fail {
                status,
                retry_after,
            };
        }
        Verdict::Serve {
            delay: state.latency.get(endpoint).copied(),
        }
    }

    /// Counts a call under `name` (endpoints, and grants as `token:<grant_type>`).
    pub fn record(&self, name: &str) {
        let now_ms = self
            .clock
            .now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        if let Ok(mut calls) = self.calls.lock() {
            let log = calls.entry(name.to_owned()).or_default();
            log.count += 1;
            if log.at_ms.len() == KEPT_TIMESTAMPS {
                log.at_ms.pop_front();
            }
            log.at_ms.push_back(now_ms);
        }
    }

    pub fn calls(&self) -> BTreeMap<String, CallLog> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(endpoint: &str, status: Option<u16>, count: Option<u32>) -> FaultSpec {
        FaultSpec {
            endpoint: endpoint.into(),
            status,
            count,
            retry_after: Some("3".into()),
            latency_ms: None,
        }
    }

    #[test]
    fn queued_faults_answer_exactly_count_calls_then_serve() {
        let faults = Faults::new(Clock::system(), &[spec("register", Some(429), Some(2))]).unwrap();
        for _ in 0..2 {
            assert_eq!(
                faults.gate("register"),
                Verdict::Fail {
                    status: 429,
                    retry_after: Some("3".into())
                }
            );
        }
        assert_eq!(faults.gate("register"), Verdict::Serve { delay: None });
        assert_eq!(faults.gate("token"), Verdict::Serve { delay: None });
        assert_eq!(faults.calls()["register"].count, 3);
    }

    #[test]
    fn unknown_endpoints_and_statuses_are_refused() {
        assert!(spec("nope", Some(429), None).check().is_err());
        assert!(spec("token", Some(500), None).check().is_err());
        assert!(spec("token", Some(429), Some(0)).check().is_err());
    }
}
