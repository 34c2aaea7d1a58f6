//! Grants revoked while their access tokens may still be in circulation. The
//! verifier looks every broker token's `sid` up here — on cache hits too — so a
//! revocation takes effect on the next request. An entry lives as long as a token of
//! the grant could (access-token lifetime plus leeway), then goes by itself.

use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::sync::Cache;

use crate::clock::{Clock, UnixSeconds};

#[derive(Clone)]
pub struct Revocations {
    revoked: Cache<Arc<str>, UnixSeconds>,
    clock: Clock,
}

/// Each entry expires at the time it was given.
struct Until {
    clock: Clock,
}

impl moka::Expiry<Arc<str>, UnixSeconds> for Until {
    fn expire_after_create(
        &self,
        _: &Arc<str>,
        until: &UnixSeconds,
        _: Instant,
    ) -> Option<Duration> {
        Some(Duration::from_secs(until.saturating_sub(self.clock.unix())))
    }
}

impl Revocations {
    pub fn new(clock: Clock) -> Self {
        Self {
            revoked: Cache::builder()
                .max_capacity(1_000_000)
                .expire_after(Until {
                    clock: clock.clone(),
                })
                .build(),
            clock,
        }
    }

    /// Marks `grant_id` revoked until `until` (when its last token expires).
    pub fn revoke(&self, grant_id: &str, until: UnixSeconds) {
        self.revoked.insert(Arc::from(grant_id), until);
    }

    /// Whether tokens of `grant_id` must be refused now.
    pub fn is_revoked(&self, grant_id: &str) -> bool {
        self.revoked
            .get(grant_id)
            .is_some_and(|until| self.clock.unix() < until)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_revocation_holds_until_its_time() {
        let clock = Clock::system();
        let revocations = Revocations::new(clock.clone());
        assert!(!revocations.is_revoked("g1"));
        revocations.revoke("g1", clock.unix() + 60);
        assert!(revocations.is_revoked("g1"));
        assert!(!revocations.is_revoked("g2"));
        clock.advance(Duration::from_secs(61));
        assert!(!revocations.is_revoked("g1"), "no token of it can be alive");
    }
}
