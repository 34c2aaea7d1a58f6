//! Who a verified request acts for.

use std::sync::Arc;

use crate::domain::identity::Identity;
use crate::domain::invalidation::Owner;
use crate::domain::scope::Scopes;
use crate::domain::tool_policy::ToolPattern;

/// How the caller's credential was verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialKind {
    /// A JWT signed by the upstream provider (its JWKS).
    UpstreamJwt,
    /// A JWT the broker issued itself.
    BrokerJwt,
    /// An opaque upstream token, introspected (RFC 7662).
    Introspected,
    /// A static API key from configuration.
    ApiKey,
}

/// The verified caller: attached to the request (as an actix extension) by whatever
/// protected it, read by handlers such as the demo's MCP server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// `sub` of the token, or the API key's configured subject.
    pub subject: String,
    pub scopes: Scopes,
    /// `client_id` (or `azp`) of the token, when it names one.
    pub client_id: Option<String>,
    pub kind: CredentialKind,
    /// Expiry as Unix seconds, when the credential has one.
    pub expires_at: Option<u64>,
    /// The grant a broker-issued token belongs to (its `sid`).
    pub grant_id: Option<String>,
    /// An API key's tool allow-list (`[[api_keys]] tools`); `None`: no limit.
    pub tools: Option<Arc<[ToolPattern]>>,
    /// What the provider says of the user: a broker token's (or handed-out provider
    /// token's) from its grant as it now stands, a provider token's from its own claims
    /// (`[upstream.claims]`); `None` when nothing is known (API keys, introspection,
    /// client credentials), which every allow rule but `subjects` refuses.
    pub identity: Option<Arc<Identity>>,
}

impl Principal {
    /// Whose cached entries hold this principal (for invalidation).
    pub fn owner(&self) -> Owner<'_> {
        Owner {
            subject: &self.subject,
            client_id: self.client_id.as_deref(),
            grant_id: self.grant_id.as_deref(),
        }
    }
}
