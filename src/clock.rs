//! Time as an input. Protocol code asks a `Clock` instead of the system, so expiry is
//! tested by moving a clock rather than by sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch, the unit of JWT `exp`/`iat`/`nbf`.
pub type UnixSeconds = u64;

/// The current time. Cloning shares the same clock.
#[derive(Clone, Default)]
pub struct Clock {
    /// Seconds added to the system time; moved only by tests and the dev IdP's
    /// control API, never in production.
    offset: Arc<AtomicI64>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self::default()
    }

    pub fn now(&self) -> SystemTime {
        let offset = self.offset.load(Ordering::Relaxed);
        let base = SystemTime::now();
        if offset >= 0 {
            base + Duration::from_secs(offset.unsigned_abs())
        } else {
            base - Duration::from_secs(offset.unsigned_abs())
        }
    }

    pub fn unix(&self) -> UnixSeconds {
        self.now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }

    /// Moves this clock (and every clone of it) forward.
    pub fn advance(&self, by: Duration) {
        let secs = i64::try_from(by.as_secs()).unwrap_or(i64::MAX);
        self.offset.fetch_add(secs, Ordering::Relaxed);
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Clock(offset={}s)", self.offset.load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advancing_moves_every_clone() {
        let clock = Clock::system();
        let other = clock.clone();
        let before = other.unix();
        clock.advance(Duration::from_secs(3600));
        assert!(other.unix() >= before + 3600);
    }
}
