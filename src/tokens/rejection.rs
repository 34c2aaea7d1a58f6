//! Why a credential was refused. The reason goes to logs and to
//! `token_broker_auth_failures_total{reason}`; the caller only ever learns the RFC 6750
//! error code.

/// One reason per check, so operators can tell a clock problem from an attack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// No `Authorization` header.
    #[error("no credentials")]
    Missing,
    /// An `Authorization` scheme other than Bearer.
    #[error("authorization scheme is not Bearer")]
    WrongScheme,
    /// `access_token` in the query string (RFC 6750 §2.3 is not supported: tokens leak
    /// into logs and referrers).
    #[error("token sent in the query string")]
    TokenInQuery,
    /// Not three base64url parts with a JSON header.
    #[error("malformed token")]
    Malformed,
    /// `none`, an HMAC algorithm, or one the key does not allow.
    #[error("signing algorithm not allowed")]
    AlgNotAllowed,
    /// No published key has this `kid`, even after a refetch; or the broker key that
    /// signed a cached token has since left `/jwks.json`.
    #[error("unknown signing key")]
    UnknownKid,
    #[error("bad signature")]
    BadSignature,
    #[error("token expired")]
    Expired,
    /// `nbf` (or `iat`) in the future beyond the leeway.
    #[error("token not yet valid")]
    NotYetValid,
    #[error("token from another issuer")]
    WrongIssuer,
    #[error("token for another audience")]
    WrongAudience,
    /// `sub`, `exp`, `iss` or `aud` absent.
    #[error("required claims missing")]
    MissingClaims,
    /// An API key that is unknown, inactive or expired, or an inactive introspection.
    #[error("credential inactive")]
    Inactive,
    /// The provider's keys cannot be had (outage beyond the grace): fail closed.
    #[error("verification unavailable")]
    Unavailable,
    /// A broker token whose grant was revoked.
    #[error("grant revoked")]
    Revoked,
    /// A broker-signed JWT whose `typ` is not `at+jwt` (RFC 9068 §4).
    #[error("not an access token")]
    WrongType,
}

impl Rejection {
    /// The metric label.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::WrongScheme => "wrong_scheme",
            Self::TokenInQuery => "token_in_query",
            Self::Malformed => "malformed",
            Self::AlgNotAllowed => "alg_not_allowed",
            Self::UnknownKid => "unknown_kid",
            Self::BadSignature => "bad_signature",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::WrongIssuer => "wrong_issuer",
            Self::WrongAudience => "wrong_audience",
            Self::MissingClaims => "missing_claims",
            Self::Inactive => "inactive",
            Self::Unavailable => "unavailable",
            Self::Revoked => "revoked",
            Self::WrongType => "wrong_type",
        }
    }

    /// The RFC 6750 §3.1 `error` attribute, if any: none when no token was presented.
    pub fn error_code(self) -> Option<&'static str> {
        match self {
            Self::Missing => None,
            Self::WrongScheme | Self::TokenInQuery => Some("invalid_request"),
            _ => Some("invalid_token"),
        }
    }
}
