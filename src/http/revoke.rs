//! `POST /oauth/revoke` (RFC 7009). Revoking a refresh token or an access token
//! revokes its grant: every refresh token of the chain dies and the grant's access
//! tokens — the broker's, or in passthrough mode the provider's it handed out — stop
//! verifying on their next use, on every replica. The answer is 200 whether or not the
//! token was known (§2.2), so the endpoint tells an attacker nothing; a token issued
//! to another client is left alone.

use actix_web::{HttpRequest, HttpResponse, web};

use super::clients;
use super::error::{ApiError, ErrorCode};
use super::form::Form;
use super::token::{revoke as revoke_grant, store_failed};
use crate::config::TokenMode;
use crate::domain::refresh as refresh_tokens;
use crate::server::AppState;
use crate::store::Grant;
use crate::tokens::verify::token_digest;
use crate::upstream::token as upstream_token;

pub async fn revoke(
    state: web::Data<AppState>,
    req: HttpRequest,
    Form(params): Form,
) -> Result<HttpResponse, ApiError> {
    let client = clients::authenticate(&state, &req, &params).await?;
    let token = params.required("token")?;
    match params.one("token_type_hint")? {
        None | Some("refresh_token" | "access_token") => {}
        Some(other) => {
            return Err(ApiError::oauth(
                ErrorCode::InvalidRequest,
                format!("unsupported token_type_hint `{other}`"),
            ));
        }
    }
    if let Some(grant_id) = grant_of(&state, token).await? {
        let grant = state
            .store
            .get_grant(&grant_id)
            .await
            .map_err(store_failed)?
            .filter(|g| g.client_id == client.client_id);
        if let Some(grant) = grant {
            revoke_grant(&state, &grant_id).await?;
            state.metrics.token("revoke", "revoked");
            // The client held the provider's token itself: ask the provider to end it
            // too, in the background — the broker refuses it already.
            if state.config.tokens.mode == TokenMode::Passthrough && grant.revoked_at.is_none() {
                actix_web::rt::spawn(at_provider(state.clone(), grant));
            }
        } else {
            tracing::info!(client_id = %client.client_id, "revocation of another client's token ignored");
        }
    }
    Ok(HttpResponse::Ok().finish())
}

/// RFC 7009 at the provider, when it has a revocation endpoint: the grant's refresh
/// token (which most providers take to end the session's access tokens too), then its
/// access token. Failures are logged: the broker's own revocation already holds.
async fn at_provider(state: web::Data<AppState>, grant: Grant) {
    let Ok(snapshot) = state.discovery.current().await else {
        return;
    };
    let Some(endpoint) = snapshot.info.revocation_endpoint.as_deref() else {
        return;
    };
    let credentials = match clients::find(&state, &grant.client_id).await {
        Ok(Some(client)) => client.upstream_credentials(&state.config),
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
            upstream_token::revoke(&state.upstream_http, endpoint, &credentials, token, hint).await
        {
            tracing::warn!(%error, hint, "the provider did not revoke its token");
        }
    }
}

/// The grant a token the broker handed out belongs to: a refresh token by its hash, a
/// provider access token (passthrough mode) by the record of handing it out, a broker
/// access token by its verified `sid`.
pub async fn grant_of(state: &AppState, token: &str) -> Result<Option<String>, ApiError> {
    let record = state
        .store
        .find_refresh(&refresh_tokens::hash(token))
        .await
        .map_err(store_failed)?;
    if let Some(record) = record {
        return Ok(Some(record.grant_id));
    }
    let handed_out = state
        .store
        .find_passthrough(&token_digest(token), state.clock.unix())
        .await
        .map_err(store_failed)?;
    if let Some(handed_out) = handed_out {
        return Ok(Some(handed_out.grant_id));
    }
    Ok(state
        .verifier
        .verify_broker(token)
        .await
        .ok()
        .and_then(|verified| verified.principal.grant_id.clone()))
}
