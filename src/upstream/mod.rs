//! Talking to the upstream OpenID provider: one HTTP client for every call, discovery,
//! its JWKS, and token-endpoint grants.

pub mod check;
pub mod cimd;
pub mod discovery;
pub mod exchange;
pub mod http;
pub mod id_token;
pub mod jwks;
pub mod jws;
pub mod registration;
pub mod snapshot;
pub mod token;
pub mod userinfo;

/// What can go wrong talking to the provider. Descriptions are for operators' logs;
/// clients only ever see a generic error derived from these.
#[derive(Debug, Clone, thiserror::Error)]
pub enum UpstreamError {
    /// No answer: connection refused, DNS, TLS or timeout.
    #[error("cannot reach {url}: {reason}")]
    Unreachable { url: String, reason: String },
    /// An HTTP error status without an OAuth error body.
    #[error("{url} answered HTTP {status}")]
    Status {
        url: String,
        status: u16,
        /// `Retry-After` as sent (seconds or an HTTP date), for 429 and 503.
        retry_after: Option<String>,
    },
    /// The body is not what the endpoint promises.
    #[error("{url} returned an invalid document: {reason}")]
    Invalid { url: String, reason: String },
    /// The discovery document names another issuer (RFC 8414 §3.3, OIDC Discovery §4.3).
    #[error("issuer mismatch: configured `{expected}`, but the provider's document says `{found}`")]
    IssuerMismatch { expected: String, found: String },
    /// An RFC 6749 §5.2 error from the provider.
    #[error("the provider answered `{error}`{}", description.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    OAuth {
        status: u16,
        error: String,
        description: Option<String>,
    },
}

impl UpstreamError {
    /// The provider's RFC 6749 §5.2 `error` code, when it answered with one.
    pub fn oauth_error(&self) -> Option<&str> {
        match self {
            Self::OAuth { error, .. } => Some(error),
            _ => None,
        }
    }

    /// The provider refused the grant itself (`invalid_grant`): the code was spent,
    /// expired or bound to another verifier, or the refresh token is dead. Only this
    /// ends a grant; `invalid_client` and the rest are the broker's own problem.
    pub fn is_invalid_grant(&self) -> bool {
        self.oauth_error() == Some("invalid_grant")
    }

    /// The provider could not answer now — no answer at all, 429, a 5xx, or
    /// `temporarily_unavailable` — so the same request may work later.
    pub fn is_transient(&self) -> bool {
        let transient = |status: u16| status == 429 || status >= 500;
        match self {
            Self::Unreachable { .. } => true,
            Self::Status { status, .. } => transient(*status),
            Self::OAuth { status, error, .. } => {
                transient(*status) || error == "temporarily_unavailable"
            }
            Self::Invalid { .. } | Self::IssuerMismatch { .. } => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oauth(error: &str) -> UpstreamError {
        UpstreamError::OAuth {
            status: 400,
            error: error.to_owned(),
            description: None,
        }
    }

    #[test]
    fn only_invalid_grant_means_the_grant_is_dead() {
        assert!(oauth("invalid_grant").is_invalid_grant());
        assert!(!oauth("invalid_client").is_invalid_grant());
        assert_eq!(oauth("invalid_scope").oauth_error(), Some("invalid_scope"));
        let status = UpstreamError::Status {
            url: "https://idp.example/token".to_owned(),
            status: 503,
            retry_after: None,
        };
        assert!(!status.is_invalid_grant());
        assert_eq!(status.oauth_error(), None);
    }

    #[test]
    fn no_answer_429_and_5xx_are_transient_refusals_are_not() {
        let status = |status| UpstreamError::Status {
            url: "https://idp.example/token".to_owned(),
            status,
            retry_after: None,
        };
        let unreachable = UpstreamError::Unreachable {
            url: "https://idp.example/token".to_owned(),
            reason: "timed out".to_owned(),
        };
        let busy = UpstreamError::OAuth {
            status: 503,
            error: "temporarily_unavailable".to_owned(),
            description: None,
        };
        for transient in [status(429), status(503), status(500), unreachable, busy] {
            assert!(transient.is_transient(), "{transient}");
        }
        for refusal in [
            status(400),
            status(404),
            oauth("invalid_grant"),
            oauth("invalid_client"),
        ] {
            assert!(!refusal.is_transient(), "{refusal}");
        }
    }
}
