//! Introspection (RFC 7662) for resource servers. The caller must be a confidential
//! client: a `[[exchange.clients]]` entry or a registered client with a secret. Only
//! the resource servers named in `[introspection] clients` learn about any access
//! token (§4: otherwise whoever registers could probe everyone's tokens); any other
//! caller, and a resource server asking about a refresh token, learns only about
//! tokens issued to itself. Everything else — unknown, expired, revoked, rotated,
//! another issuer's, another client's — is inactive (§2.2: it reveals nothing).

use super::{GrantError, Grants};
use crate::domain::client_auth::Presented;
use crate::domain::refresh as refresh_tokens;

/// Who asks, authenticated.
pub struct Caller {
    client_id: String,
    /// Listed in `[introspection] clients`: may learn about any access token.
    resource_server: bool,
}

impl Caller {
    /// Whether the caller may learn about a token issued to `owner`: its own, or any
    /// access token for a configured resource server. A refresh token is for its
    /// client alone — a resource server never receives one to check.
    fn may_see(&self, owner: Option<&str>, refresh_token: bool) -> bool {
        owner == Some(self.client_id.as_str()) || (self.resource_server && !refresh_token)
    }
}

/// What the broker tells the caller about a token (RFC 7662 §2.2).
pub enum Introspection {
    /// Nothing: unknown, expired, revoked, rotated, or not the caller's to see.
    Inactive,
    /// One of the broker's refresh tokens.
    RefreshToken {
        scope: String,
        client_id: String,
        subject: String,
        issuer: String,
        issued_at: u64,
        expires_at: u64,
    },
    /// One of the broker's access tokens.
    AccessToken {
        scope: String,
        client_id: Option<String>,
        subject: String,
        audiences: Vec<String>,
        issuer: String,
        expires_at: u64,
    },
}

impl Grants {
    /// Authenticates an introspection caller: a configured `[[exchange.clients]]`
    /// entry (its secret from the configuration), else a registered confidential
    /// client.
    pub async fn introspection_caller(&self, presented: &Presented) -> Result<Caller, GrantError> {
        let client_id = presented.client_id();
        if let Some(caller) = self
            .settings
            .callers
            .iter()
            .find(|c| c.client_id == client_id)
        {
            if !caller.accepts(presented) {
                return Err(GrantError::CallerUnauthenticated);
            }
        } else if !self
            .clients
            .authenticate(presented)
            .await?
            .is_confidential()
        {
            return Err(GrantError::NotConfidential);
        }
        Ok(Caller {
            resource_server: self.settings.introspection.any_token(client_id),
            client_id: client_id.to_owned(),
        })
    }

    /// What `caller` may learn about `token`.
    pub async fn introspect(
        &self,
        token: &str,
        caller: &Caller,
    ) -> Result<Introspection, GrantError> {
        let now = self.clock.unix();
        let issuer = self.settings.issuer.as_str().to_owned();
        if let Some(record) = self
            .store
            .find_refresh(&refresh_tokens::hash(token))
            .await?
        {
            if record.rotated.is_some() || now >= record.expires_at {
                return Ok(Introspection::Inactive);
            }
            return Ok(match self.store.get_grant(&record.grant_id).await? {
                Some(grant)
                    if grant.revoked_at.is_none()
                        && caller.may_see(Some(&grant.client_id), true) =>
                {
                    Introspection::RefreshToken {
                        scope: record.scopes.to_string(),
                        client_id: grant.client_id,
                        subject: grant.subject,
                        issuer,
                        issued_at: record.issued_at,
                        expires_at: record.expires_at,
                    }
                }
                _ => Introspection::Inactive,
            });
        }
        let Ok(verified) = self.verifier.verify_broker(token).await else {
            return Ok(Introspection::Inactive);
        };
        let principal = &verified.principal;
        if !caller.may_see(principal.client_id.as_deref(), false) {
            return Ok(Introspection::Inactive);
        }
        Ok(Introspection::AccessToken {
            scope: principal.scopes.to_string(),
            client_id: principal.client_id.clone(),
            subject: principal.subject.clone(),
            audiences: verified.audiences.clone(),
            issuer,
            expires_at: verified.expires_at,
        })
    }
}
