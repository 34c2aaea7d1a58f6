//! PKCE (RFC 7636) with the S256 method only, as OAuth 2.1 and MCP require.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use super::constant_time::constant_time_eq;

/// Why a PKCE parameter was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PkceError {
    /// `code_challenge_method` other than S256 (RFC 7636 §4.3; plain is not allowed).
    #[error("code_challenge_method must be S256")]
    UnsupportedMethod,
    /// A challenge that is not 43 base64url characters (a SHA-256 digest).
    #[error("code_challenge must be the base64url SHA-256 of the verifier (43 characters)")]
    MalformedChallenge,
    /// A verifier outside RFC 7636 §4.1: 43–128 unreserved characters.
    #[error("code_verifier must be 43 to 128 characters of [A-Za-z0-9-._~]")]
    MalformedVerifier,
    /// The verifier does not hash to the challenge.
    #[error("code_verifier does not match the code_challenge")]
    Mismatch,
}

/// Checks the authorization request's challenge; `method` absent means plain, which
/// is refused.
pub fn check_challenge(challenge: &str, method: Option<&str>) -> Result<(), PkceError> {
    if method != Some("S256") {
        return Err(PkceError::UnsupportedMethod);
    }
    let well_formed = challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if well_formed {
        Ok(())
    } else {
        Err(PkceError::MalformedChallenge)
    }
}

/// The S256 challenge of a verifier.
pub fn challenge_of(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Checks the token request's verifier against the stored challenge.
pub fn verify(verifier: &str, challenge: &str) -> Result<(), PkceError> {
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    if !well_formed {
        return Err(PkceError::MalformedVerifier);
    }
    if constant_time_eq(challenge_of(verifier).as_bytes(), challenge.as_bytes()) {
        Ok(())
    } else {
        Err(PkceError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7636_appendix_b_example_verifies() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert_eq!(challenge_of(verifier), challenge);
        assert_eq!(verify(verifier, challenge), Ok(()));
        assert_eq!(check_challenge(challenge, Some("S256")), Ok(()));
    }

    #[test]
    fn plain_missing_and_malformed_are_refused() {
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert_eq!(
            check_challenge(challenge, Some("plain")),
            Err(PkceError::UnsupportedMethod)
        );
        assert_eq!(
            check_challenge(challenge, None),
            Err(PkceError::UnsupportedMethod)
        );
        assert_eq!(
            check_challenge("short", Some("S256")),
            Err(PkceError::MalformedChallenge)
        );
        assert_eq!(
            verify("short", challenge),
            Err(PkceError::MalformedVerifier)
        );
        let other = "x".repeat(43);
        assert_eq!(verify(&other, challenge), Err(PkceError::Mismatch));
    }
}
