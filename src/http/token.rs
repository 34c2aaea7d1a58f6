//! `POST /oauth/token`: the `authorization_code` grant (PKCE, one-time; a replay by
//! the client the code was issued to, with its redirect URI and verifier, revokes
//! everything the code produced — anyone else merely gets `invalid_grant`) and the
//! `refresh_token` grant (rotation, reuse detection with a grace for lost responses,
//! scope may only narrow, the provider's tokens refreshed when they expired). Every
//! answer is `no-store`.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;

use super::clients::{self, KnownClient};
use super::error::{ApiError, ErrorCode};
use super::form::Form;
use super::params::Params;
use crate::actors::sessions::{RedeemProxyCode, SessionError};
use crate::config::TokenMode;
use crate::domain::invalidation::Invalidation;
use crate::domain::passthrough as passthrough_rules;
use crate::domain::refresh as refresh_tokens;
use crate::domain::scope::Scopes;
use crate::server::AppState;
use crate::store::{Grant, PassthroughToken, RefreshRecord, RotateOutcome, StoreError};
use crate::tokens::verify::token_digest;

const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

#[derive(Serialize)]
struct TokenBody {
    access_token: String,
    token_type: &'static str,
    expires_in: u64,
    scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<String>,
}

pub async fn token(
    state: web::Data<AppState>,
    req: HttpRequest,
    Form(params): Form,
) -> Result<HttpResponse, ApiError> {
    let grant_type = params.required("grant_type")?.to_owned();
    let label = match grant_type.as_str() {
        "authorization_code" | "refresh_token" => grant_type.as_str(),
        TOKEN_EXCHANGE => "token_exchange",
        _ => "other",
    };
    let result = match grant_type.as_str() {
        "authorization_code" => authorization_code(&state, &req, &params).await,
        "refresh_token" => refresh(&state, &req, &params).await,
        TOKEN_EXCHANGE => super::exchange::token_exchange(&state.exchange, &req, &params).await,
        other => Err(ApiError::oauth(
            ErrorCode::UnsupportedGrantType,
            format!("grant_type `{other}` is not supported"),
        )),
    };
    match &result {
        Ok(_) => state.metrics.token(label, "issued"),
        Err(error) => state.metrics.token(label, error.code().as_str()),
    }
    result
}

fn invalid_grant(description: impl Into<String>) -> ApiError {
    ApiError::oauth(ErrorCode::InvalidGrant, description)
}

pub(crate) fn store_failed(error: StoreError) -> ApiError {
    ApiError::Unavailable {
        description: format!("token store unavailable: {error}"),
        retry_after: Some("5".to_owned()),
    }
}

fn may_use(client: &KnownClient, grant_type: &str) -> Result<(), ApiError> {
    if client.grant_types.iter().any(|g| g == grant_type) {
        Ok(())
    } else {
        Err(ApiError::oauth(
            ErrorCode::UnauthorizedClient,
            format!("this client did not register for the {grant_type} grant"),
        ))
    }
}

async fn authorization_code(
    state: &AppState,
    req: &HttpRequest,
    params: &Params,
) -> Result<HttpResponse, ApiError> {
    let client = clients::authenticate(state, req, params).await?;
    let code = params.required("code")?;
    let redirect_uri = params.required("redirect_uri")?;
    let verifier = params.required("code_verifier")?;
    may_use(&client, "authorization_code")?;
    let redeemed = state
        .sessions
        .send(RedeemProxyCode {
            code: code.to_owned(),
            client_id: client.client_id.clone(),
            redirect_uri: redirect_uri.to_owned(),
            verifier: verifier.to_owned(),
        })
        .await
        .unwrap_or(Err(SessionError::Stopped));
    let code_grant = match redeemed {
        Ok(grant) => grant,
        Err(SessionError::Replayed { grant_id }) => {
            revoke(state, &grant_id).await?;
            tracing::warn!(
                client_id = %client.client_id,
                "authorization code replayed: every token issued from it is revoked"
            );
            return Err(invalid_grant(
                "authorization code already used; the tokens issued from it are revoked",
            ));
        }
        Err(SessionError::Mismatch(what)) => return Err(invalid_grant(what)),
        Err(SessionError::Stopped) => {
            return Err(ApiError::Unavailable {
                description: "shutting down".to_owned(),
                retry_after: Some("1".to_owned()),
            });
        }
        Err(_) => return Err(invalid_grant("unknown, expired or already used code")),
    };
    let grant = live_grant(state, &code_grant.grant_id).await?;
    let refresh = client.gets_refresh_tokens(&code_grant.scopes);
    respond(state, &client, &grant, &code_grant.scopes, refresh).await
}

async fn refresh(
    state: &web::Data<AppState>,
    req: &HttpRequest,
    params: &Params,
) -> Result<HttpResponse, ApiError> {
    let client = clients::authenticate(state, req, params).await?;
    let presented = params.required("refresh_token")?;
    let hash = refresh_tokens::hash(presented);
    let record = state
        .store
        .find_refresh(&hash)
        .await
        .map_err(store_failed)?
        .ok_or_else(|| invalid_grant("unknown, expired or revoked refresh token"))?;
    let grant = live_grant(state, &record.grant_id).await?;
    if grant.client_id != client.client_id {
        return Err(invalid_grant(
            "the refresh token was issued to another client",
        ));
    }
    let scopes = match params.one("scope")? {
        None => record.scopes.clone(),
        Some(text) => {
            let asked =
                Scopes::parse(text).map_err(|e| ApiError::oauth(ErrorCode::InvalidScope, e))?;
            let excess = asked.missing_from(&record.scopes);
            if !excess.is_empty() {
                return Err(ApiError::oauth(
                    ErrorCode::InvalidScope,
                    format!("a refresh may only narrow the scope; not granted: {excess}"),
                ));
            }
            asked
        }
    };
    // Before the rotation: a client refused because the provider cannot confirm the
    // session keeps its refresh token unspent, and retries with it once the provider
    // is back — past the reuse grace too.
    let grant = super::upstream_refresh::confirmed(state, grant).await?;
    let now = state.clock.unix();
    let (successor, successor_hash) = refresh_tokens::new_token();
    let outcome = state
        .store
        .rotate_refresh(
            hash,
            RefreshRecord {
                hash: successor_hash,
                grant_id: grant.grant_id.clone(),
                scopes: scopes.clone(),
                issued_at: now,
                expires_at: now + state.config.refresh.ttl.as_secs(),
                rotated: None,
            },
            now,
            state.config.refresh.reuse_grace,
        )
        .await
        .map_err(store_failed)?;
    match outcome {
        RotateOutcome::Rotated { .. } => {}
        RotateOutcome::Replayed { grant_id } => {
            revoke(state, &grant_id).await?;
            tracing::warn!(
                client_id = %client.client_id,
                "rotated refresh token presented again: grant revoked"
            );
            return Err(invalid_grant(
                "refresh token already used; the grant is revoked",
            ));
        }
        _ => return Err(invalid_grant("unknown, expired or revoked refresh token")),
    }
    // After the rotation, so a replayed token does not reach the provider (unless the
    // session needed confirming, above: the replay is then caught just after); a
    // client whose answer is lost to a provider outage retries within the reuse grace.
    let grant = super::upstream_refresh::refresh_upstream(state, grant).await?;
    let body = access_token(state, &grant, &scopes, Some(successor)).await?;
    touch(state, &client.client_id).await;
    Ok(no_store(body))
}

/// A grant that exists and is not revoked.
pub(crate) async fn live_grant(state: &AppState, grant_id: &str) -> Result<Grant, ApiError> {
    match state
        .store
        .get_grant(grant_id)
        .await
        .map_err(store_failed)?
    {
        Some(grant) if grant.revoked_at.is_none() => Ok(grant),
        _ => Err(invalid_grant("the grant was revoked")),
    }
}

/// Revokes a grant everywhere: stored (its refresh tokens die) and in the verifier
/// (its access tokens stop verifying on the next request).
pub async fn revoke(state: &AppState, grant_id: &str) -> Result<(), ApiError> {
    state
        .store
        .revoke_grant(grant_id, state.clock.unix())
        .await
        .map_err(store_failed)?;
    state
        .invalidate(Invalidation::GrantId(grant_id.to_owned()))
        .await;
    Ok(())
}

/// The response for a new grant: an access token and, when the client may have one,
/// the first refresh token of the chain.
async fn respond(
    state: &AppState,
    client: &KnownClient,
    grant: &Grant,
    scopes: &Scopes,
    with_refresh: bool,
) -> Result<HttpResponse, ApiError> {
    let refresh = if with_refresh {
        let now = state.clock.unix();
        let (token, hash) = refresh_tokens::new_token();
        state
            .store
            .put_refresh(RefreshRecord {
                hash,
                grant_id: grant.grant_id.clone(),
                scopes: scopes.clone(),
                issued_at: now,
                expires_at: now + state.config.refresh.ttl.as_secs(),
                rotated: None,
            })
            .await
            .map_err(store_failed)?;
        Some(token)
    } else {
        None
    };
    let body = access_token(state, grant, scopes, refresh).await?;
    touch(state, &client.client_id).await;
    Ok(no_store(body))
}

async fn access_token(
    state: &AppState,
    grant: &Grant,
    scopes: &Scopes,
    refresh_token: Option<String>,
) -> Result<TokenBody, ApiError> {
    if state.config.tokens.mode == TokenMode::Passthrough {
        return passthrough(state, grant, refresh_token).await;
    }
    let now = state.clock.unix();
    let (access_token, expires_at) = match state.config.tokens.mode {
        TokenMode::Issue => {
            let audience = grant
                .resource
                .clone()
                .unwrap_or_else(|| state.config.server.public_url.as_str().to_owned());
            crate::tokens::issue::mint(
                &state.signing,
                &crate::tokens::issue::Minting {
                    issuer: state.config.server.public_url.as_str(),
                    subject: &grant.subject,
                    client_id: &grant.client_id,
                    audience: &audience,
                    scopes,
                    grant_id: &grant.grant_id,
                    now,
                    ttl: state.config.tokens.access_token_ttl,
                },
            )
            .map_err(|e| match e {
                // The store was unreachable when the broker started: no key yet.
                crate::tokens::signing::SigningError::NoKey => ApiError::Unavailable {
                    description: "the broker's signing keys are not loaded yet".to_owned(),
                    retry_after: Some("1".to_owned()),
                },
                e => ApiError::Internal(format!("cannot sign the access token: {e}")),
            })?
        }
        // Answered above.
        TokenMode::Passthrough => return passthrough(state, grant, refresh_token).await,
    };
    Ok(TokenBody {
        access_token,
        token_type: "Bearer",
        expires_in: expires_at.saturating_sub(now),
        scope: scopes.to_string(),
        refresh_token,
    })
}

/// The provider's access token as it is, with the scope it carries (not the scope
/// asked for: the client must learn what it actually holds, RFC 6749 §5.1). The
/// broker remembers having handed it to this grant's client, by digest, until it
/// expires: the verifier then knows whose it is, and revoking the grant refuses it.
async fn passthrough(
    state: &AppState,
    grant: &Grant,
    refresh_token: Option<String>,
) -> Result<TokenBody, ApiError> {
    let now = state.clock.unix();
    let upstream = &grant.upstream;
    let carried = passthrough_rules::carried(&upstream.access_token);
    let expires_at = carried
        .expires_at
        .or(upstream.expires_at)
        .unwrap_or(now + state.config.tokens.access_token_ttl.as_secs());
    state
        .store
        .put_passthrough(
            PassthroughToken {
                digest: token_digest(&upstream.access_token),
                grant_id: grant.grant_id.clone(),
                client_id: grant.client_id.clone(),
                expires_at: passthrough_rules::remember_until(
                    &carried,
                    upstream.expires_at,
                    now,
                    state.config.verify.leeway.as_secs(),
                    state.config.refresh.ttl.as_secs(),
                ),
            },
            now,
        )
        .await
        .map_err(store_failed)?;
    Ok(TokenBody {
        access_token: upstream.access_token.clone(),
        token_type: "Bearer",
        expires_in: expires_at.saturating_sub(now),
        scope: passthrough_rules::response_scope(
            &carried,
            upstream.scope.as_deref(),
            &grant.scopes,
        ),
        refresh_token,
    })
}

async fn touch(state: &AppState, client_id: &str) {
    if let Err(error) = state
        .store
        .touch_client(client_id, state.clock.unix())
        .await
    {
        tracing::warn!(%error, "could not record the client's use");
    }
}

fn no_store(body: TokenBody) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("Pragma", "no-cache"))
        .json(body)
}
