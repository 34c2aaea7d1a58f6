//! Why an ID token was refused, in the broker's words: a variant per check, a fixed
//! reason name for metrics and logs, and the mapping from openidconnect's verdicts on
//! the claims.

use openidconnect::ClaimsVerificationError;

use crate::upstream::jws::HeaderError;

/// Why an ID token was refused. The texts are for operators' logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdTokenError {
    #[error("the ID token is not a well-formed JWT: {0}")]
    Malformed(String),
    /// The snapshot or its JWKS could not be had or read.
    #[error("the provider's keys are unavailable: {0}")]
    Keys(String),
    /// No published key fits the token's `kid` and algorithm, even after a refetch.
    #[error("no key of the provider matches the ID token (kid {})", .kid.as_deref().unwrap_or("absent"))]
    UnknownKey { kid: Option<String> },
    /// `none`, an HMAC algorithm, or one the provider does not advertise.
    #[error("the ID token's algorithm is not allowed: {0}")]
    Algorithm(String),
    #[error("the ID token's signature is invalid: {0}")]
    Signature(String),
    #[error("the ID token's issuer is wrong: {0}")]
    Issuer(String),
    /// `aud` does not name the broker's client, names others, or `azp` is wrong.
    #[error("the ID token is for another audience: {0}")]
    Audience(String),
    #[error("the ID token's nonce is wrong: {0}")]
    Nonce(String),
    #[error("the ID token has expired: {0}")]
    Expired(String),
    #[error("the ID token was issued in the future: {0}")]
    IssuedInFuture(String),
    /// `at_hash` does not match the access token of the same response.
    #[error("the ID token does not belong to the access token: {0}")]
    AccessTokenHash(String),
    #[error("the ID token failed validation: {0}")]
    Invalid(String),
}

impl From<HeaderError> for IdTokenError {
    fn from(error: HeaderError) -> Self {
        match error {
            HeaderError::Malformed(why) => Self::Malformed(why.to_owned()),
            HeaderError::Algorithm(why) => Self::Algorithm(why),
        }
    }
}

impl IdTokenError {
    /// A short, fixed name for the refusal (metric labels, log fields).
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "malformed",
            Self::Keys(_) => "keys_unavailable",
            Self::UnknownKey { .. } => "unknown_key",
            Self::Algorithm(_) => "algorithm",
            Self::Signature(_) => "signature",
            Self::Issuer(_) => "issuer",
            Self::Audience(_) => "audience",
            Self::Nonce(_) => "nonce",
            Self::Expired(_) => "expired",
            Self::IssuedInFuture(_) => "issued_in_future",
            Self::AccessTokenHash(_) => "at_hash",
            Self::Invalid(_) => "invalid",
        }
    }
}

/// openidconnect's verdict on the claims in the broker's words. Its signature step is
/// off (signature.rs checks the signature first), so no signature verdict comes here.
pub(super) fn refusal(error: ClaimsVerificationError) -> IdTokenError {
    match error {
        ClaimsVerificationError::Expired(m) => IdTokenError::Expired(m),
        ClaimsVerificationError::InvalidAudience(m) => IdTokenError::Audience(m),
        ClaimsVerificationError::InvalidIssuer(m) => IdTokenError::Issuer(m),
        ClaimsVerificationError::InvalidNonce(m) => IdTokenError::Nonce(m),
        other => IdTokenError::Invalid(other.to_string()),
    }
}
