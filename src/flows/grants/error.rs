//! Why a step of the grant lifecycle failed, in the terms of the protocol: the HTTP
//! adapter turns each variant into its RFC 6749 §5.2 answer (`http/token.rs`).

use crate::flows::clients::ClientError;
use crate::store::StoreError;

/// Every failure of `flows::grants`.
#[derive(Debug, thiserror::Error)]
pub enum GrantError {
    /// `invalid_grant` (RFC 6749 §5.2): the code, refresh token or grant is unknown,
    /// expired, revoked, replayed or another client's.
    #[error("{0}")]
    InvalidGrant(&'static str),
    /// `unsupported_grant_type` (RFC 6749 §5.2): the ID-JAG grant with no
    /// `[[enterprise.issuers]]` configured.
    #[error("grant_type `urn:ietf:params:oauth:grant-type:jwt-bearer` is not supported")]
    UnsupportedGrant,
    /// `unsupported_grant_type` (RFC 6749 §5.2): a grant this configuration does not
    /// offer (client credentials in passthrough mode).
    #[error("grant_type `{0}` is not supported by this server's configuration")]
    UnsupportedGrantType(&'static str),
    /// `invalid_target` (RFC 8707 §2): no resource, several, one the broker does not
    /// protect, or one the client may not ask for.
    #[error("{0}")]
    InvalidTarget(&'static str),
    /// `invalid_scope` (RFC 6749 §5.2): unreadable, or wider than the grant.
    #[error("{0}")]
    InvalidScope(String),
    /// `unauthorized_client` (RFC 6749 §5.2): the client did not register for the
    /// grant type it uses.
    #[error("this client did not register for the {0} grant")]
    UnauthorizedClient(&'static str),
    /// `unauthorized_client` (RFC 6749 §5.2): a public client presented an ID-JAG; the
    /// grant is for confidential clients (draft-ietf-oauth-identity-assertion-authz-grant
    /// §8.1).
    #[error(
        "the ID-JAG grant is for confidential clients: authenticate with the client's secret or keys"
    )]
    ConfidentialOnly,
    /// `invalid_request`: a `token_type_hint` RFC 7009 §2.1 does not define.
    #[error("unsupported token_type_hint `{0}`")]
    UnsupportedHint(String),
    /// The client registry failed or the caller is not the client it claims to be.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// `invalid_client`: an introspection caller that failed authentication.
    #[error("client authentication failed")]
    CallerUnauthenticated,
    /// `invalid_client`: a public client asked to introspect (RFC 7662 §2.1 wants
    /// the caller authenticated).
    #[error("introspection is for confidential clients (resource servers)")]
    NotConfidential,
    /// The store could not be read or written: 503, retry shortly.
    #[error("token store unavailable: {0}")]
    Store(#[from] StoreError),
    /// The login-state actor stopped (shutting down): 503, nothing changed.
    #[error("shutting down")]
    ShuttingDown,
    /// The provider could not be reached for a refresh the answer needs: 503.
    #[error("the identity provider cannot be reached")]
    ProviderUnreachable,
    /// The provider cannot vouch for the session now and the grant may not outlive
    /// it longer (`refresh.max_upstream_staleness`): 503, the grant kept.
    #[error("the identity provider cannot confirm this session now")]
    ProviderUnconfirmed,
    /// No signing key loaded yet (the store was unreachable at start-up): 503.
    #[error("the broker's signing keys are not loaded yet")]
    KeysNotLoaded,
    /// Signing failed otherwise: our fault, logged, answered `server_error`.
    #[error("cannot sign the access token: {0}")]
    Signing(String),
    /// The admin API is off (`admin.token` unset): its paths do not exist.
    #[error("no such endpoint")]
    AdminOff,
    /// The admin API was called without a bearer token.
    #[error("the admin API needs the admin token")]
    AdminTokenMissing,
    /// The admin API was called with a malformed or wrong bearer token.
    #[error("the admin API needs the admin token")]
    AdminTokenWrong,
}
