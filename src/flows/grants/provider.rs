//! A grant's provider tokens, refreshed at the provider when they expired — for the
//! refresh grant and for an exchange of a broker token — and revoked there when the
//! client revokes a token it held itself. the Exchange actor (`actors::exchange::RefreshOnce`) makes concurrent
//! refreshes of one grant one provider call, here and on the other replicas; this
//! file is that call and what its outcome means to a client.

use std::sync::Arc;
use std::time::Duration;

use super::{GrantError, Grants};
use crate::actors::discovery::DiscoveryHandle;
use crate::actors::exchange::RefreshError;
use crate::actors::scopes::handle::InvalidatorHandle;
use crate::clock::Clock;
use crate::config::Issuer;
use crate::domain::identity::{ClaimNames, Identity};
use crate::domain::invalidation::Invalidation;
use crate::domain::provider_session::Standing;
use crate::flows::clients::Clients;
use crate::store::{Grant, Store, StoreError, UpstreamTokens};
use crate::upstream::discovery::ProviderInfo;
use crate::upstream::http::UpstreamHttp;
use crate::upstream::id_token;
use crate::upstream::token::{self as upstream_token, ClientCredentials};
use crate::upstream::userinfo;

/// What a call to the provider on a grant's behalf needs. Shared (`Arc`) with the
/// tasks that outlive the request: a refresh runs to its end, a revocation at the
/// provider happens in the background.
pub(super) struct Provider {
    pub store: Arc<dyn Store>,
    pub clock: Clock,
    pub clients: Arc<Clients>,
    pub discovery: DiscoveryHandle,
    pub http: UpstreamHttp,
    pub invalidator: InvalidatorHandle,
    /// The broker's own client at the provider.
    pub own: ClientCredentials,
    /// `tokens.mode = "passthrough"`: the provider's access token is what the client
    /// holds, so failing to refresh it fails the call.
    pub passthrough: bool,
    /// The provider's issuer, `verify.leeway` and `[upstream.claims]`: the ID token a
    /// refresh returns is validated and its identity replaces the grant's.
    pub issuer: Issuer,
    pub leeway: Duration,
    pub claims: ClaimNames,
}

impl Grants {
    /// The provider's tokens, refreshed when they expired and a refresh token exists.
    /// A provider that refuses the refresh ended the user's session there: the grant
    /// is revoked. A provider that cannot be reached fails the call only in passthrough
    /// mode, where its access token is what the client gets; otherwise the grant comes
    /// back still expired, and [`Grants::confirmed`] decides how long that may go on.
    ///
    /// The refresh runs to its end (new tokens stored) even if this caller goes away
    /// meanwhile: the provider may already have rotated its refresh token.
    pub async fn refresh_upstream(&self, grant: Grant) -> Result<Grant, GrantError> {
        let provider = self.provider.clone();
        self.refresh_once
            .refreshed(
                grant,
                move |grant| async move { provider.refresh(grant).await },
            )
            .await
            .map_err(|e| match e {
                RefreshError::Revoked => {
                    GrantError::InvalidGrant("the grant was revoked; log in again")
                }
                RefreshError::Ended => GrantError::InvalidGrant(
                    "the identity provider ended this session; log in again",
                ),
                RefreshError::ClientGone => GrantError::InvalidGrant("the client no longer exists"),
                RefreshError::Unavailable(cause) => {
                    tracing::warn!(%cause, "upstream refresh failed");
                    GrantError::ProviderUnreachable
                }
                RefreshError::Store(e) => GrantError::Store(e),
            })
    }

    /// `grant`, if the provider vouched for its session recently enough for the broker
    /// to issue on it (`domain::provider_session`, `refresh.max_upstream_staleness`),
    /// after a refresh at the provider when that is what it takes. Past the bound, a
    /// grant without a provider refresh token is revoked (nothing can confirm it again:
    /// the user logs in again); one whose provider fails is refused with 503 but kept,
    /// so it works again once the provider is back.
    pub async fn confirmed(&self, grant: Grant) -> Result<Grant, GrantError> {
        let bound = self.settings.refresh.max_upstream_staleness;
        let standing = |grant: &Grant| grant.provider_session().standing(self.clock.unix(), bound);
        if standing(&grant) == Standing::Confirmed {
            return Ok(grant);
        }
        let grant = self.refresh_upstream(grant).await?;
        match standing(&grant) {
            Standing::Confirmed => Ok(grant),
            Standing::Lapsed => {
                self.revoke_grant(&grant.grant_id).await?;
                tracing::info!(
                    client_id = %grant.client_id,
                    "the provider has not confirmed the session within refresh.max_upstream_staleness and cannot be asked: grant revoked"
                );
                Err(GrantError::InvalidGrant(
                    "the identity provider has not confirmed this session recently; log in again",
                ))
            }
            Standing::Unconfirmed => {
                tracing::warn!(
                    client_id = %grant.client_id,
                    "the provider cannot confirm the session and refresh.max_upstream_staleness has run out: refused"
                );
                Err(GrantError::ProviderUnconfirmed)
            }
        }
    }
}

impl Provider {
    /// One refresh at the provider (the grant's provider token is expired): the new
    /// tokens stored on the grant, or the grant revoked when the provider refuses.
    async fn refresh(&self, grant: Grant) -> Result<Grant, RefreshError> {
        let Some(upstream_refresh) = grant.upstream.refresh_token.clone() else {
            return Ok(grant);
        };
        let now = self.clock.unix();
        let client = self
            .clients
            .find(&grant.client_id)
            .await
            // Its only failure is the store's.
            .map_err(|e| RefreshError::Store(StoreError::Unavailable(e.to_string())))?
            .ok_or(RefreshError::ClientGone)?;
        let snapshot = match self.discovery.current().await {
            Ok(snapshot) => snapshot,
            Err(e) if self.passthrough => return Err(RefreshError::Unavailable(e.to_string())),
            Err(_) => return Ok(grant),
        };
        let Some(endpoint) = snapshot.info.token_endpoint.as_deref() else {
            return Err(RefreshError::Unavailable("no token_endpoint".to_owned()));
        };
        let credentials = client.credentials_at_provider(&self.own);
        match upstream_token::refresh(&self.http, endpoint, &credentials, &upstream_refresh, None)
            .await
        {
            Ok(tokens) => {
                let identity = self
                    .identity(&grant, &credentials.client_id, tokens.id_token.as_deref())
                    .await;
                let identity = self
                    .with_userinfo(&grant, &snapshot.info, &tokens.access_token, identity)
                    .await;
                let changed = identity != grant.upstream.identity;
                let upstream = UpstreamTokens {
                    access_token: tokens.access_token.clone(),
                    refresh_token: tokens.refresh_token.clone().or(Some(upstream_refresh)),
                    expires_at: tokens.expires_in.map(|s| now + s),
                    scope: tokens.scope.clone().or(grant.upstream.scope.clone()),
                    obtained_at: Some(now),
                    identity,
                };
                self.store
                    .set_upstream_tokens(&grant.grant_id, upstream.clone())
                    .await?;
                // Every replica judges the grant's next request on the new identity.
                if changed {
                    self.invalidator
                        .invalidate(Invalidation::GrantId(grant.grant_id.clone()))
                        .await;
                }
                Ok(Grant { upstream, ..grant })
            }
            // Only `invalid_grant` means the provider ended the session; `invalid_client`
            // and the like are the broker's own configuration and must not cost the user
            // their grant. Revoked before the flight ends, so the waiters — here and on
            // the other replicas — read a revoked grant instead of asking again.
            Err(e) if e.is_invalid_grant() => {
                self.store
                    .revoke_grant(&grant.grant_id, self.clock.unix())
                    .await?;
                self.invalidator
                    .invalidate(Invalidation::GrantId(grant.grant_id.clone()))
                    .await;
                Err(RefreshError::Ended)
            }
            Err(e) if self.passthrough => Err(RefreshError::Unavailable(e.to_string())),
            Err(e) => {
                tracing::warn!(error = %e, "upstream refresh failed; the provider's tokens stay expired");
                Ok(grant)
            }
        }
    }

    /// The grant's identity after a refresh: what the new ID token says (OIDC Core
    /// §12.2: same issuer and audience, the same subject; no nonce to compare), the
    /// one held when the provider sent no ID token, and nothing — every identity
    /// rule then refuses — when the ID token it sent cannot be trusted.
    async fn identity(
        &self,
        grant: &Grant,
        client_id: &str,
        id_token: Option<&str>,
    ) -> Option<Identity> {
        let Some(id_token) = id_token else {
            return grant.upstream.identity.clone();
        };
        let expected = id_token::Expected {
            issuer: &self.issuer,
            client_id,
            nonce: None,
            access_token: None,
            leeway: self.leeway,
        };
        match id_token::validate_with(&self.discovery, &expected, id_token, &self.clock).await {
            Ok(claims) if claims.subject == grant.subject => {
                Some(self.claims.identity(&claims.payload)).filter(|i| !i.is_empty())
            }
            Ok(_) => {
                tracing::warn!(
                    "the refreshed ID token names another subject: the grant's identity is dropped"
                );
                None
            }
            Err(error) => {
                tracing::warn!(%error, "the refreshed ID token is not valid: the grant's identity is dropped");
                None
            }
        }
    }

    /// `identity` with what the userinfo endpoint says over it, with the refreshed
    /// access token, when `upstream.claims.userinfo` asks for it. An identity already
    /// dropped stays dropped. A userinfo endpoint that cannot answer now leaves the
    /// identity the grant held (as a refresh without an ID token does); one that
    /// answers wrongly (another `sub`, not JSON) drops it: every identity rule refuses.
    async fn with_userinfo(
        &self,
        grant: &Grant,
        provider: &ProviderInfo,
        access_token: &str,
        identity: Option<Identity>,
    ) -> Option<Identity> {
        if !self.claims.userinfo {
            return identity;
        }
        let base = identity?;
        let said = userinfo::identity(
            &self.http,
            provider,
            &self.claims,
            access_token,
            &grant.subject,
            base,
        )
        .await;
        match said {
            Ok(identity) => Some(identity).filter(|i| !i.is_empty()),
            Err(error) if error.is_transient() => {
                tracing::warn!(%error, "userinfo cannot answer now: the grant keeps its identity");
                grant.upstream.identity.clone()
            }
            Err(error) => {
                tracing::warn!(%error, "userinfo answered wrongly: the grant's identity is dropped");
                None
            }
        }
    }

    /// RFC 7009 at the provider, when it has a revocation endpoint: the grant's refresh
    /// token (which most providers take to end the session's access tokens too), then
    /// its access token. Failures are logged: the broker's own revocation already holds.
    pub(super) async fn revoke(&self, grant: Grant) {
        let Ok(snapshot) = self.discovery.current().await else {
            return;
        };
        let Some(endpoint) = snapshot.info.revocation_endpoint.as_deref() else {
            return;
        };
        let credentials = match self.clients.find(&grant.client_id).await {
            Ok(Some(client)) => client.credentials_at_provider(&self.own),
            _ => return,
        };
        let upstream = &grant.upstream;
        let tokens = upstream
            .refresh_token
            .iter()
            .map(|t| (t.as_str(), "refresh_token"))
            .chain([(upstream.access_token.as_str(), "access_token")]);
        for (token, hint) in tokens {
            if let Err(error) =
                upstream_token::revoke(&self.http, endpoint, &credentials, token, hint).await
            {
                tracing::warn!(%error, hint, "the provider did not revoke its token");
            }
        }
    }
}

/// The exchange of a broker token presents its grant's provider token: fresh, through
/// the same one-refresh-per-grant path as the refresh grant.
#[async_trait::async_trait(?Send)]
impl crate::flows::exchange::GrantTokens for Grants {
    async fn fresh(&self, grant: Grant) -> Result<Grant, crate::flows::exchange::GrantError> {
        use crate::flows::exchange::GrantError as Refused;
        self.refresh_upstream(grant).await.map_err(|e| match e {
            GrantError::InvalidGrant(why) => Refused::Invalid(why.to_owned()),
            other => Refused::Unavailable(other.to_string()),
        })
    }
}
