//! Comparison of secrets without a timing side channel: how long a comparison takes
//! must not tell an attacker how much of a guess was right (a PKCE verifier's
//! challenge, a CSRF token, a hashed API key or client secret, an admin token). A
//! rule every layer uses, so it lives at the bottom; `config` re-exports it.

/// Compares two byte strings in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
