//! Why a token exchange failed, in the flow's terms; `http::exchange` maps each to
//! its RFC 8693 §2.2.2 / RFC 6749 §5.2 answer.

use crate::actors::exchange::ExchangeError;
use crate::domain::exchange::PolicyError;
use crate::store::StoreError;

/// Why no downstream token. Never answered with the client's token.
#[derive(Debug, thiserror::Error)]
pub enum TokenExchangeError {
    /// The caller is not a configured `[[exchange.clients]]` entry with its secret
    /// (RFC 6749 §5.2 `invalid_client`).
    #[error("client authentication failed")]
    Unauthenticated,
    /// A parameter is missing, unsupported or unacceptable — an invalid
    /// `subject_token` or `actor_token` among them (RFC 8693 §2.2.2 `invalid_request`).
    #[error("{0}")]
    InvalidRequest(String),
    /// The audience is not one this caller may have (RFC 8693 §2.2.2 `invalid_target`).
    #[error("{0}")]
    InvalidTarget(String),
    /// The scope is malformed or more than the policy allows (`invalid_scope`).
    #[error("{0}")]
    InvalidScope(String),
    /// The provider refused or could not be used, for `audience`.
    #[error("the exchange for `{audience}` failed: {error}")]
    Provider {
        error: ExchangeError,
        audience: String,
    },
    /// The subject's grant cannot be used at the provider.
    #[error(transparent)]
    Grant(#[from] GrantError),
    /// The store failed (reading the grant, keeping a rotated refresh token).
    #[error("token store unavailable: {0}")]
    Store(#[from] StoreError),
}

impl TokenExchangeError {
    /// The refusal's name in the audit trail.
    pub fn audit_reason(&self) -> &'static str {
        match self {
            Self::Unauthenticated => "invalid_client",
            Self::InvalidRequest(_) => "invalid_request",
            Self::InvalidTarget(_) => "invalid_target",
            Self::InvalidScope(_) => "invalid_scope",
            Self::Provider { .. } => "provider_refused",
            Self::Grant(_) => "grant_unusable",
            Self::Store(_) => "store_unavailable",
        }
    }
}

impl From<PolicyError> for TokenExchangeError {
    fn from(error: PolicyError) -> Self {
        match error {
            PolicyError::Target(d) => Self::InvalidTarget(d),
            PolicyError::Scope(d) => Self::InvalidScope(d),
        }
    }
}

/// Why a broker token's grant gave no provider token.
#[derive(Debug, Clone, thiserror::Error)]
pub enum GrantError {
    /// Revoked, gone, or its session ended at the provider (`invalid_grant`): the
    /// user logs in again.
    #[error("{0}")]
    Invalid(String),
    /// The provider (or the store) cannot be used now: worth retrying (503).
    #[error("{0}")]
    Unavailable(String),
}
