//! The client-credentials grant (RFC 6749 §4.4; the MCP OAuth client-credentials
//! extension): a confidential client — configured in `[[clients]]`, or registered
//! with a secret or keys — gets an access token for one of the broker's resources
//! with no user involved. The subject is the client itself (RFC 9068 §2.2: `sub` names
//! the client when no resource owner is involved), the token is audience-bound to the
//! `resource` the request names (required), and its scopes are what was asked
//! narrowed to the client's ceiling and the resource's `scopes_supported`. What is
//! issued is a grant like any other — revocable, invalidated and listed — with an
//! access token and no refresh token (§4.4.3: SHOULD NOT); the client asks again.

use super::{GrantError, Grants, Issued, may_use};
use crate::config::TokenMode;
use crate::domain::resource::same_resource;
use crate::domain::scope::Scopes;
use crate::flows::clients::KnownClient;
use crate::store::{Grant, UpstreamTokens};

/// The grant as the client asked for it.
pub struct ClientCredentialsRequest<'a> {
    /// Every `resource` sent (RFC 8707): exactly one is accepted.
    pub resources: Vec<&'a str>,
    /// `scope`, when the request had one.
    pub scope: Option<&'a str>,
    /// Whether the client authenticated, with a secret or a client assertion.
    pub authenticated: bool,
}

impl Grants {
    /// Issues an access token to `client` for itself, or refuses with nothing stored.
    pub async fn client_credentials(
        &self,
        client: &KnownClient,
        request: ClientCredentialsRequest<'_>,
    ) -> Result<Issued, GrantError> {
        if self.settings.mode == TokenMode::Passthrough {
            // A machine has no provider token to hand on.
            return Err(GrantError::UnsupportedGrantType("client_credentials"));
        }
        if !request.authenticated || !client.is_confidential() {
            return Err(GrantError::UnauthorizedClient("client_credentials"));
        }
        may_use(client, "client_credentials")?;
        let requested = request
            .scope
            .map(Scopes::parse)
            .transpose()
            .map_err(GrantError::InvalidScope)?;
        let [named] = request.resources[..] else {
            return Err(GrantError::InvalidTarget(
                "name exactly one resource: the token is bound to it",
            ));
        };
        let resource = self
            .settings
            .resources
            .iter()
            .find(|r| same_resource(&r.uri, named))
            .ok_or(GrantError::InvalidTarget(
                "the resource is not one this authorization server protects",
            ))?;
        if let Some(allowed) = &client.resources
            && !allowed.iter().any(|uri| same_resource(uri, &resource.uri))
        {
            return Err(GrantError::InvalidTarget(
                "this client may not ask for this resource",
            ));
        }
        let supported = Scopes::of(resource.scopes_supported.iter().cloned());
        // The client's ceiling: configured, or the scope it registered; a client that
        // registered none is capped by the resource alone.
        let mut scopes = client.scope.clone().unwrap_or_else(|| supported.clone());
        if !resource.scopes_supported.is_empty() {
            scopes = scopes.intersection(&supported);
        }
        if let Some(requested) = &requested {
            scopes = scopes.intersection(requested);
            if scopes.is_empty() && !requested.is_empty() {
                return Err(GrantError::InvalidScope(
                    "none of the requested scopes may be granted to this client".to_owned(),
                ));
            }
        }
        let now = self.clock.unix();
        let grant = Grant {
            grant_id: super::new_grant_id(),
            subject: client.client_id.clone(),
            client_id: client.client_id.clone(),
            scopes: scopes.clone(),
            resource: Some(resource.uri.clone()),
            // No provider tokens: no user, no provider session.
            upstream: UpstreamTokens::absent(now),
            created_at: now,
            revoked_at: None,
        };
        self.store.put_grant(grant.clone()).await?;
        tracing::info!(
            client_id = %client.client_id,
            grant_id = %grant.grant_id,
            resource = %resource.uri,
            "client credentials accepted"
        );
        self.first_tokens("client_credentials", client, &grant, &scopes, false)
            .await
    }
}
