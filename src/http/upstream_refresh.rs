//! A grant's provider tokens, refreshed at the provider when they expired — for the
//! refresh grant and for an exchange of a broker token. `upstream::refresh_once`
//! makes concurrent refreshes of one grant one provider call, here and on the other
//! replicas; this file is that call and what its outcome means to a client.

use actix_web::web;

use super::clients;
use super::error::{ApiError, ErrorCode};
use super::token::{revoke, store_failed};
use crate::actors::exchange::RefreshError;
use crate::config::TokenMode;
use crate::domain::invalidation::Invalidation;
use crate::domain::provider_session::Standing;
use crate::server::AppState;
use crate::store::{Grant, StoreError, UpstreamTokens};
use crate::upstream::token as upstream_token;

/// The provider's tokens, refreshed when they expired and a refresh token exists. A
/// provider that refuses the refresh ended the user's session there: the grant is
/// revoked. A provider that cannot be reached fails the call only in passthrough
/// mode, where its access token is what the client gets; otherwise the grant comes
/// back still expired, and [`confirmed`] decides how long that may go on.
///
/// The refresh runs to its end (new tokens stored) even if this caller goes away
/// meanwhile: the provider may already have rotated its refresh token.
pub(crate) async fn refresh_upstream(
    state: &web::Data<AppState>,
    grant: Grant,
) -> Result<Grant, ApiError> {
    let owned = state.clone();
    state
        .upstream_refresh
        .refreshed(grant, move |grant| at_provider(owned, grant))
        .await
        .map_err(|e| match e {
            RefreshError::Revoked => invalid_grant("the grant was revoked; log in again"),
            RefreshError::Ended => {
                invalid_grant("the identity provider ended this session; log in again")
            }
            RefreshError::ClientGone => invalid_grant("the client no longer exists"),
            RefreshError::Unavailable(cause) => {
                tracing::warn!(%cause, "upstream refresh failed");
                ApiError::Unavailable {
                    description: "the identity provider cannot be reached".to_owned(),
                    retry_after: Some("5".to_owned()),
                }
            }
            RefreshError::Store(e) => store_failed(e),
        })
}

/// `grant`, if the provider vouched for its session recently enough for the broker
/// to issue on it (`domain::provider_session`, `refresh.max_upstream_staleness`),
/// after a refresh at the provider when that is what it takes. Past the bound, a
/// grant without a provider refresh token is revoked (nothing can confirm it again:
/// the user logs in again); one whose provider fails is refused with 503 but kept,
/// so it works again once the provider is back.
pub(crate) async fn confirmed(
    state: &web::Data<AppState>,
    grant: Grant,
) -> Result<Grant, ApiError> {
    let bound = state.config.refresh.max_upstream_staleness;
    let standing = |grant: &Grant| grant.provider_session().standing(state.clock.unix(), bound);
    if standing(&grant) == Standing::Confirmed {
        return Ok(grant);
    }
    let grant = refresh_upstream(state, grant).await?;
    match standing(&grant) {
        Standing::Confirmed => Ok(grant),
        Standing::Lapsed => {
            revoke(state, &grant.grant_id).await?;
            tracing::info!(
                client_id = %grant.client_id,
                "the provider has not confirmed the session within refresh.max_upstream_staleness and cannot be asked: grant revoked"
            );
            Err(invalid_grant(
                "the identity provider has not confirmed this session recently; log in again",
            ))
        }
        Standing::Unconfirmed => {
            tracing::warn!(
                client_id = %grant.client_id,
                "the provider cannot confirm the session and refresh.max_upstream_staleness has run out: refused"
            );
            Err(ApiError::Unavailable {
                description: "the identity provider cannot confirm this session now".to_owned(),
                retry_after: Some("5".to_owned()),
            })
        }
    }
}

fn invalid_grant(description: &str) -> ApiError {
    ApiError::oauth(ErrorCode::InvalidGrant, description)
}

/// One refresh at the provider (the grant's provider token is expired): the new
/// tokens stored on the grant, or the grant revoked when the provider refuses.
async fn at_provider(state: web::Data<AppState>, grant: Grant) -> Result<Grant, RefreshError> {
    let Some(upstream_refresh) = grant.upstream.refresh_token.clone() else {
        return Ok(grant);
    };
    let now = state.clock.unix();
    let passthrough = state.config.tokens.mode == TokenMode::Passthrough;
    let client = clients::find(&state, &grant.client_id)
        .await
        // Its only failure is the store's.
        .map_err(|e| RefreshError::Store(StoreError::Unavailable(e.to_string())))?
        .ok_or(RefreshError::ClientGone)?;
    let snapshot = match state.discovery.current().await {
        Ok(snapshot) => snapshot,
        Err(e) if passthrough => return Err(RefreshError::Unavailable(e.to_string())),
        Err(_) => return Ok(grant),
    };
    let Some(endpoint) = snapshot.info.token_endpoint.as_deref() else {
        return Err(RefreshError::Unavailable("no token_endpoint".to_owned()));
    };
    let credentials = client.upstream_credentials(&state.config);
    match upstream_token::refresh(
        &state.upstream_http,
        endpoint,
        &credentials,
        &upstream_refresh,
        None,
    )
    .await
    {
        Ok(tokens) => {
            let upstream = UpstreamTokens {
                access_token: tokens.access_token.clone(),
                refresh_token: tokens.refresh_token.clone().or(Some(upstream_refresh)),
                expires_at: tokens.expires_in.map(|s| now + s),
                scope: tokens.scope.clone().or(grant.upstream.scope.clone()),
                obtained_at: Some(now),
            };
            state
                .store
                .set_upstream_tokens(&grant.grant_id, upstream.clone())
                .await?;
            Ok(Grant { upstream, ..grant })
        }
        // Only `invalid_grant` means the provider ended the session; `invalid_client`
        // and the like are the broker's own configuration and must not cost the user
        // their grant. Revoked before the flight ends, so the waiters — here and on
        // the other replicas — read a revoked grant instead of asking again.
        Err(e) if e.is_invalid_grant() => {
            state
                .store
                .revoke_grant(&grant.grant_id, state.clock.unix())
                .await?;
            state
                .invalidate(Invalidation::GrantId(grant.grant_id.clone()))
                .await;
            Err(RefreshError::Ended)
        }
        Err(e) if passthrough => Err(RefreshError::Unavailable(e.to_string())),
        Err(e) => {
            tracing::warn!(error = %e, "upstream refresh failed; the provider's tokens stay expired");
            Ok(grant)
        }
    }
}
