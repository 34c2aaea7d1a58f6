//! How long a grant may outlive the provider's word on its session.
//!
//! The broker's refresh tokens live `refresh.ttl` (30 days by default), but only the
//! provider knows whether the user behind a grant may still sign in. Its tokens say
//! so: an access token vouches until it expires, a refresh at the provider vouches
//! anew. When the broker cannot refresh — the provider issued no refresh token, or it
//! fails for any reason but `invalid_grant` — a user disabled at the provider would
//! keep access for as long as the client kept refreshing its broker grant. So the
//! broker issues on a grant only while the provider vouched for its session within
//! `refresh.max_upstream_staleness`.

use std::time::Duration;

use crate::clock::UnixSeconds;

/// What the broker knows of the provider's session behind one grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProviderSession {
    /// When the provider's access token expires, if the provider said (`expires_in`).
    pub expires_at: Option<UnixSeconds>,
    /// When the broker last received tokens from the provider (login or refresh).
    pub obtained_at: UnixSeconds,
    /// Whether the broker holds a provider refresh token.
    pub refreshable: bool,
}

/// Whether the broker may issue on a grant, given its provider session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// The provider vouched for the session within the bound.
    Confirmed,
    /// Past the bound, and no provider refresh token to ask with: nothing can confirm
    /// the session again, the user must log in again.
    Lapsed,
    /// Past the bound; a refresh at the provider would confirm it, but none has
    /// succeeded (the provider is down or failing).
    Unconfirmed,
}

impl ProviderSession {
    /// Until when the provider vouched: its access token's expiry. A token without one
    /// vouched only at the moment it was obtained.
    pub fn vouched_until(&self) -> UnixSeconds {
        self.expires_at.unwrap_or(self.obtained_at)
    }

    /// Whether the broker should refresh at the provider now: the provider's access
    /// token expired or — when the provider never said when it would — `bound` has
    /// run since it was obtained (without expiry, only a refresh tells the session
    /// still stands).
    pub fn refresh_due(&self, now: UnixSeconds, bound: Duration) -> bool {
        self.refreshable
            && match self.expires_at {
                Some(at) => at <= now,
                None => self.obtained_at.saturating_add(bound.as_secs()) <= now,
            }
    }

    /// The standing at `now`, with at most `bound` past the provider's word.
    pub fn standing(&self, now: UnixSeconds, bound: Duration) -> Standing {
        if now < self.vouched_until().saturating_add(bound.as_secs()) {
            Standing::Confirmed
        } else if self.refreshable {
            Standing::Unconfirmed
        } else {
            Standing::Lapsed
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3_600);

    fn session(expires_at: Option<u64>, refreshable: bool) -> ProviderSession {
        ProviderSession {
            expires_at,
            obtained_at: 1_000,
            refreshable,
        }
    }

    #[test]
    fn an_unexpired_provider_token_confirms_the_session() {
        let s = session(Some(1_300), false);
        assert_eq!(s.standing(1_299, Duration::ZERO), Standing::Confirmed);
        assert!(!session(Some(1_300), true).refresh_due(1_299, HOUR));
    }

    #[test]
    fn without_a_provider_refresh_token_the_grant_lapses_after_expiry_and_the_bound() {
        let s = session(Some(1_300), false);
        assert_eq!(s.standing(1_300 + 3_599, HOUR), Standing::Confirmed);
        assert_eq!(s.standing(1_300 + 3_600, HOUR), Standing::Lapsed);
        assert!(!s.refresh_due(1_300 + 3_600, HOUR));
    }

    #[test]
    fn with_a_provider_refresh_token_past_the_bound_it_is_unconfirmed_not_lapsed() {
        let s = session(Some(1_300), true);
        assert!(s.refresh_due(1_300, HOUR));
        assert_eq!(s.standing(1_300 + 3_599, HOUR), Standing::Confirmed);
        assert_eq!(s.standing(1_300 + 3_600, HOUR), Standing::Unconfirmed);
    }

    #[test]
    fn a_zero_bound_allows_nothing_past_the_providers_word() {
        let s = session(Some(1_300), false);
        assert_eq!(s.standing(1_299, Duration::ZERO), Standing::Confirmed);
        assert_eq!(s.standing(1_300, Duration::ZERO), Standing::Lapsed);
    }

    #[test]
    fn a_token_without_expiry_counts_from_when_it_was_obtained() {
        let s = session(None, false);
        assert_eq!(s.vouched_until(), 1_000);
        assert_eq!(s.standing(1_000 + 3_599, HOUR), Standing::Confirmed);
        assert_eq!(s.standing(1_000 + 3_600, HOUR), Standing::Lapsed);
        let refreshable = session(None, true);
        assert!(!refreshable.refresh_due(1_000 + 3_599, HOUR));
        assert!(refreshable.refresh_due(1_000 + 3_600, HOUR));
    }

    #[test]
    fn a_huge_bound_does_not_overflow() {
        let s = session(None, true);
        assert_eq!(s.standing(u64::MAX - 1, Duration::MAX), Standing::Confirmed);
        assert!(!s.refresh_due(u64::MAX - 1, Duration::MAX));
    }
}
