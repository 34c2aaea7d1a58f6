//! Refresh-token rotation (OAuth 2.1 §4.3.1, RFC 6819 §5.2.2.3): each use returns a
//! successor and spends the token. A spent token presented again is a theft signal
//! — the grant is revoked — except within a short grace after its rotation, when it
//! is a client retrying a response it lost: it then gets a new successor and the one
//! it never saw is superseded, so one live chain remains. A client that lost the
//! response never saw the successor, so a successor that has itself been presented
//! proves the response arrived: the old token coming back then is a replay, grace or
//! not.
//!
//! A superseded successor is kept as spent, not deleted: if the retry was a thief
//! replaying a stolen token within the grace, the legitimate client still holds that
//! successor, and its next presentation must end the grant — the thief's chain with
//! it — rather than leave the thief the only working chain. Stores record it as
//! rotated into itself ([`crate::store::Rotation::superseded`]): its successor is then
//! spent, so [`decide`] calls it a replay whatever the grace, and a broker that
//! predates the rule reads the record the same way.
//!
//! Tokens are 256-bit random strings; only their SHA-256 is stored.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng;

use crate::clock::UnixSeconds;

/// A new refresh token and the hash it is stored under.
pub fn new_token() -> (String, [u8; 32]) {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let hash = hash(&token);
    (token, hash)
}

/// The storage key of a presented token.
pub fn hash(token: &str) -> [u8; 32] {
    crate::domain::digest::sha256(token.as_bytes())
}

/// The state of a stored token that matters to a presentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenState {
    pub expires_at: UnixSeconds,
    /// When it was rotated, if it was.
    pub rotated_at: Option<UnixSeconds>,
    /// Whether the successor of that rotation has itself been presented (rotated).
    pub successor_spent: bool,
}

/// What to do with a presented token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Spend it and issue a successor.
    Rotate,
    /// A retry within the grace: issue a new successor, supersede the previous one
    /// (kept as spent, so presenting it later is a replay).
    Retry,
    /// Reuse of a spent token: revoke the grant.
    Replay,
    /// Past its life: refuse, change nothing.
    Expired,
}

/// Decides a presentation at `now`. Expiry is checked first, so an expired spent
/// token is not a theft signal (the client simply kept it too long).
pub fn decide(token: TokenState, now: UnixSeconds, grace: Duration) -> Decision {
    if now >= token.expires_at {
        return Decision::Expired;
    }
    match token.rotated_at {
        None => Decision::Rotate,
        Some(at) if now < at.saturating_add(grace.as_secs()) && !token.successor_spent => {
            Decision::Retry
        }
        Some(_) => Decision::Replay,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRACE: Duration = Duration::from_secs(10);

    fn token(rotated_at: Option<u64>) -> TokenState {
        TokenState {
            expires_at: 1_000,
            rotated_at,
            successor_spent: false,
        }
    }

    #[test]
    fn a_live_token_rotates() {
        assert_eq!(decide(token(None), 500, GRACE), Decision::Rotate);
    }

    #[test]
    fn a_spent_token_is_a_retry_only_within_the_grace() {
        assert_eq!(decide(token(Some(500)), 509, GRACE), Decision::Retry);
        assert_eq!(decide(token(Some(500)), 510, GRACE), Decision::Replay);
        assert_eq!(
            decide(token(Some(500)), 501, Duration::ZERO),
            Decision::Replay
        );
    }

    #[test]
    fn a_spent_token_whose_successor_was_used_is_a_replay_even_within_the_grace() {
        let used = TokenState {
            successor_spent: true,
            ..token(Some(500))
        };
        assert_eq!(decide(used, 501, GRACE), Decision::Replay);
    }

    #[test]
    fn a_superseded_successor_is_a_replay_even_within_the_grace() {
        // Rotated into itself at the retry: its own successor is spent.
        let superseded = TokenState {
            successor_spent: true,
            ..token(Some(505))
        };
        assert_eq!(decide(superseded, 506, GRACE), Decision::Replay);
        assert_eq!(decide(superseded, 1_000, GRACE), Decision::Expired);
    }

    #[test]
    fn a_huge_grace_does_not_overflow() {
        assert_eq!(
            decide(token(Some(500)), 600, Duration::MAX),
            Decision::Retry
        );
    }

    #[test]
    fn expiry_wins_over_everything() {
        assert_eq!(decide(token(None), 1_000, GRACE), Decision::Expired);
        assert_eq!(decide(token(Some(995)), 1_001, GRACE), Decision::Expired);
    }

    #[test]
    fn tokens_are_random_and_hashed_consistently() {
        let (a, hash_a) = new_token();
        let (b, _) = new_token();
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_eq!(hash(&a), hash_a);
    }
}
