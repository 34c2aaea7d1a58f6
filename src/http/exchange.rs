//! `POST /oauth/token` with `grant_type=urn:ietf:params:oauth:grant-type:token-exchange`
//! (RFC 8693): a configured caller (usually an MCP server) trades the client's token
//! for a token for a downstream API. The subject is verified like any protected
//! request; the policy bounds audience and scopes; the provider issues the token; the
//! answer is cached per subject token. Failures are errors, never the client's token.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, mime, web};
use sha2::{Digest, Sha256};

use super::error::{ApiError, ErrorCode};
use super::params::Params;
use crate::actors::exchange::{ExchangeError, ExchangeRequest, Exchanged, Holder};
use crate::config::{AudienceConfig, CallerConfig, ResourceConfig, Strategy, constant_time_eq};
use crate::domain::exchange::{self, PolicyError};
use crate::domain::scope::Scopes;
use crate::server::AppState;
use crate::store::Grant;
use crate::tokens::verify::token_digest;
use crate::tokens::{CredentialKind, Principal};
use crate::upstream::exchange::ACCESS_TOKEN_TYPE;

const JWT_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";

pub async fn token_exchange(
    state: &web::Data<AppState>,
    req: &HttpRequest,
    params: &Params,
) -> Result<HttpResponse, ApiError> {
    let caller = authenticate_caller(state, req, params)?;
    let subject_token = params.required("subject_token")?;
    match params.required("subject_token_type")? {
        ACCESS_TOKEN_TYPE | JWT_TOKEN_TYPE => {}
        other => {
            return Err(ApiError::InvalidRequest(format!(
                "subject_token_type `{other}` is not supported (use {ACCESS_TOKEN_TYPE})"
            )));
        }
    }
    let token_type = params
        .one("requested_token_type")?
        .unwrap_or(ACCESS_TOKEN_TYPE);
    if token_type != ACCESS_TOKEN_TYPE {
        return Err(ApiError::InvalidRequest(format!(
            "requested_token_type `{token_type}` is not supported (use {ACCESS_TOKEN_TYPE})"
        )));
    }
    let targets: Vec<&str> = params
        .all("audience")
        .into_iter()
        .chain(params.all("resource"))
        .collect();
    let target = match targets.as_slice() {
        [one] => *one,
        [] => {
            return Err(ApiError::InvalidRequest(
                "name the downstream API with `audience` or `resource`".to_owned(),
            ));
        }
        _ => {
            return Err(ApiError::oauth(
                ErrorCode::InvalidTarget,
                "exchange for one audience at a time",
            ));
        }
    };
    let audience = state.config.exchange.audience(target).ok_or_else(|| {
        ApiError::oauth(
            ErrorCode::InvalidTarget,
            format!("`{target}` is not a configured exchange audience"),
        )
    })?;
    exchange::target(&caller.audiences, target).map_err(policy_error)?;
    let actor_token = actor_token(params)?;
    let subject_digest = token_digest(subject_token);
    let principal =
        verify_presented(state, subject_token, &subject_digest, "subject_token").await?;
    let actor = match actor_token {
        Some(token) => {
            let digest = token_digest(token);
            let principal = verify_presented(state, token, &digest, "actor_token").await?;
            Some((token, digest, principal))
        }
        None => None,
    };
    let requested = params
        .one("scope")?
        .map(Scopes::parse)
        .transpose()
        .map_err(|e| ApiError::oauth(ErrorCode::InvalidScope, e))?;
    if let Some((_, _, actor)) = &actor {
        tracing::info!(subject = %principal.subject, actor = %actor.subject, audience = target, "token exchange on behalf of a subject by an actor");
    }
    let exchanged = downstream(
        state,
        Presented {
            token: subject_token,
            digest: &subject_digest,
            principal: &principal,
        },
        actor.as_ref().map(|(token, digest, principal)| Presented {
            token,
            digest,
            principal,
        }),
        audience,
        requested.as_ref(),
        token_type,
    )
    .await?;
    let expires_in = exchanged.expires_at.saturating_sub(state.clock.unix());
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .content_type(mime::APPLICATION_JSON)
        .body(answer(&exchanged, expires_in)))
}

/// The RFC 8693 §2.2.1 answer. Written here rather than by serde_json, which escapes
/// a string byte by byte: the downstream token is a kilobyte that (being base64url
/// and dots) never needs escaping, so it is checked in one pass and copied whole.
fn answer(exchanged: &Exchanged, expires_in: u64) -> Vec<u8> {
    let scope = exchanged.scope.to_string();
    let mut out = Vec::with_capacity(exchanged.access_token.len() + scope.len() + 160);
    out.extend_from_slice(b"{\"access_token\":");
    json_string(&mut out, &exchanged.access_token);
    out.extend_from_slice(b",\"issued_token_type\":");
    json_string(&mut out, &exchanged.issued_token_type);
    out.extend_from_slice(b",\"token_type\":\"Bearer\",\"expires_in\":");
    out.extend_from_slice(expires_in.to_string().as_bytes());
    out.extend_from_slice(b",\"scope\":");
    json_string(&mut out, &scope);
    out.push(b'}');
    out
}

/// `text` as a JSON string: copied as it is when nothing in it needs escaping (no
/// control character, quote or backslash), else escaped by serde_json.
fn json_string(out: &mut Vec<u8>, text: &str) {
    // A fold, not `all`: no early exit, so the check runs a vector at a time.
    let plain = text.bytes().fold(true, |plain, b| {
        plain & (b >= 0x20 && b != b'"' && b != b'\\')
    });
    if plain {
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
    } else if serde_json::to_writer(&mut *out, text).is_err() {
        // Writing to a Vec cannot fail; an empty string keeps the JSON well-formed.
        out.extend_from_slice(b"\"\"");
    }
}

/// A verified token and who it stands for.
#[derive(Clone, Copy)]
pub struct Presented<'a> {
    pub token: &'a str,
    /// `tokens::token_digest(token)`: the caches know the token by it.
    pub digest: &'a [u8; 32],
    pub principal: &'a Principal,
}

/// What the provider knows a presented token by: the token itself when the provider
/// issued it; for a broker token, its grant's provider token (refreshed first when
/// expired), with the grant.
async fn at_provider(
    state: &web::Data<AppState>,
    presented: Presented<'_>,
    what: &str,
) -> Result<(String, Option<Grant>), ApiError> {
    match presented.principal.kind {
        CredentialKind::BrokerJwt => {
            let grant_id = presented
                .principal
                .grant_id
                .as_deref()
                .ok_or_else(|| ApiError::InvalidRequest(format!("{what} names no grant")))?;
            let live = state.grant_flow.live_grant(grant_id).await?;
            let live = state.grant_flow.refresh_upstream(live).await?;
            Ok((live.upstream.access_token.clone(), Some(live)))
        }
        CredentialKind::UpstreamJwt | CredentialKind::Introspected => {
            Ok((presented.token.to_owned(), None))
        }
        CredentialKind::ApiKey => Err(ApiError::InvalidRequest(format!(
            "{what}: an API key cannot be exchanged"
        ))),
    }
}

/// A downstream token for `audience` on behalf of the verified subject (and actor):
/// the policy's scopes, the provider's answer (cached). Shared by the token endpoint
/// and forward-auth.
pub async fn downstream(
    state: &web::Data<AppState>,
    subject: Presented<'_>,
    actor: Option<Presented<'_>>,
    audience: &AudienceConfig,
    requested: Option<&Scopes>,
    token_type: &str,
) -> Result<std::sync::Arc<Exchanged>, ApiError> {
    let principal = subject.principal;
    let scopes =
        exchange::scopes(&principal.scopes, &audience.scopes, requested).map_err(policy_error)?;
    if actor.is_some() && audience.strategy != Strategy::Rfc8693 {
        return Err(ApiError::InvalidRequest(format!(
            "`{}` is reached with the {} strategy, which cannot carry an actor_token",
            audience.audience,
            audience.strategy.name()
        )));
    }
    if audience.strategy == Strategy::Refresh && principal.kind != CredentialKind::BrokerJwt {
        return Err(ApiError::InvalidRequest(
            "this audience is reached with the refresh strategy, which needs a subject_token the broker issued".to_owned(),
        ));
    }
    let key = exchange::cache_key(
        subject.digest,
        &audience.audience,
        &scopes,
        token_type,
        actor.map(|a| a.digest),
    );
    // A hit needs nothing from the store: the verifier has just checked the grant's
    // standing.
    if let Some(hit) = state.exchanger.cached(&key).await {
        return Ok(hit);
    }
    let (upstream_subject, grant) = at_provider(state, subject, "subject_token").await?;
    let upstream_actor = match actor {
        Some(actor) => Some(at_provider(state, actor, "actor_token").await?.0),
        None => None,
    };
    let refresh_token = grant
        .as_ref()
        .and_then(|g| g.upstream.refresh_token.clone());
    let exchanged = state
        .exchanger
        .exchange(ExchangeRequest {
            key,
            strategy: audience.strategy,
            upstream_audience: audience.upstream_audience.clone(),
            scopes,
            subject_token: upstream_subject,
            actor_token: upstream_actor,
            refresh_token,
            credentials: crate::upstream::token::ClientCredentials {
                client_id: state.config.upstream.client_id.clone(),
                secret: state.config.upstream.client_secret.clone(),
            },
            holder: Holder {
                subject: principal.subject.clone(),
                client_id: principal.client_id.clone(),
                grant_id: principal.grant_id.clone(),
            },
        })
        .await
        .map_err(|e| upstream_error(e, &audience.audience))?;
    if let (Some(grant), Some(rotated), Strategy::Refresh) = (
        grant,
        exchanged.rotated_refresh_token.clone(),
        audience.strategy,
    ) && grant.upstream.refresh_token.as_deref() != Some(rotated.as_str())
    {
        let mut upstream = grant.upstream;
        upstream.refresh_token = Some(rotated);
        state
            .store
            .set_upstream_tokens(&grant.grant_id, upstream)
            .await
            .map_err(|e| ApiError::Unavailable {
                description: format!("token store unavailable: {e}"),
                retry_after: Some("5".to_owned()),
            })?;
    }
    Ok(exchanged)
}

/// The downstream token a protected resource hands on (its `exchange_audience`), for
/// forward-auth and the routes the broker serves itself: `Ok(None)` when the resource
/// names none; `Err` (logged and counted) when it cannot be had — fail closed, the
/// request must not go through.
pub async fn for_resource(
    state: &web::Data<AppState>,
    resource: &ResourceConfig,
    subject: Presented<'_>,
) -> Result<Option<std::sync::Arc<Exchanged>>, ()> {
    let Some(audience) = resource
        .exchange_audience
        .as_deref()
        .and_then(|name| state.config.exchange.audience(name))
    else {
        return Ok(None);
    };
    match downstream(state, subject, None, audience, None, ACCESS_TOKEN_TYPE).await {
        Ok(exchanged) => Ok(Some(exchanged)),
        Err(error) => {
            tracing::warn!(%error, audience = %audience.audience, resource = %resource.uri, "exchange for a protected resource failed");
            state.metrics.auth_failure("exchange_failed");
            Err(())
        }
    }
}

/// `actor_token` with its type (RFC 8693 §2.1: the type is required with it and
/// meaningless without it).
fn actor_token(params: &Params) -> Result<Option<&str>, ApiError> {
    match (params.one("actor_token")?, params.one("actor_token_type")?) {
        (None, None) => Ok(None),
        (Some(token), Some(ACCESS_TOKEN_TYPE | JWT_TOKEN_TYPE)) => Ok(Some(token)),
        (Some(_), Some(other)) => Err(ApiError::InvalidRequest(format!(
            "actor_token_type `{other}` is not supported (use {ACCESS_TOKEN_TYPE})"
        ))),
        (Some(_), None) => Err(ApiError::InvalidRequest(
            "actor_token_type is required with actor_token".to_owned(),
        )),
        (None, Some(_)) => Err(ApiError::InvalidRequest(
            "actor_token_type without actor_token".to_owned(),
        )),
    }
}

/// The caller must be a configured `[[exchange.clients]]` entry with its secret.
pub(crate) fn authenticate_caller<'a>(
    state: &'a AppState,
    req: &HttpRequest,
    params: &Params,
) -> Result<&'a CallerConfig, ApiError> {
    let presented = super::clients::presented(req, params)?;
    let failed = || ApiError::InvalidClient("client authentication failed".to_owned());
    let caller = state
        .config
        .exchange
        .caller(presented.client_id())
        .ok_or_else(failed)?;
    let secret = presented.secret().ok_or_else(failed)?;
    // Hashes first: equal lengths, so the comparison leaks nothing about the length.
    let (a, b): ([u8; 32], [u8; 32]) = (
        Sha256::digest(secret.as_bytes()).into(),
        Sha256::digest(caller.client_secret.expose().as_bytes()).into(),
    );
    if constant_time_eq(&a, &b) {
        Ok(caller)
    } else {
        Err(failed())
    }
}

/// A presented token (`subject_token`, `actor_token`), verified as if it called one of
/// the protected resources. Invalid → `invalid_request` (RFC 8693 §2.2.2).
async fn verify_presented(
    state: &AppState,
    token: &str,
    digest: &[u8; 32],
    what: &str,
) -> Result<std::sync::Arc<Principal>, ApiError> {
    let mut last = None;
    for resource in &state.config.resources {
        match state
            .verifier
            .verify_digested(token, digest, resource)
            .await
        {
            Ok(principal) => return Ok(principal),
            Err(rejection) => last = Some(rejection),
        }
    }
    let reason = last.map_or("no protected resource is configured", |r| r.reason());
    state.metrics.auth_failure(reason);
    Err(ApiError::InvalidRequest(format!(
        "{what} is not valid ({reason})"
    )))
}

fn policy_error(error: PolicyError) -> ApiError {
    match error {
        PolicyError::Target(d) => ApiError::oauth(ErrorCode::InvalidTarget, d),
        PolicyError::Scope(d) => ApiError::oauth(ErrorCode::InvalidScope, d),
    }
}

/// RFC 8693 §2.2.2, with what an operator needs to act on.
fn upstream_error(error: ExchangeError, target: &str) -> ApiError {
    tracing::warn!(%error, audience = target, "token exchange failed");
    match error {
        ExchangeError::Refused { error, description } => {
            let detail = description.unwrap_or_default();
            // The provider no longer accepting the subject (revoked, expired there) is
            // an unacceptable subject_token to our caller (RFC 8693 §2.2.2); anything
            // else it refuses is about the audience.
            let code = match error.as_str() {
                "invalid_scope" => ErrorCode::InvalidScope,
                "invalid_grant" | "invalid_request" | "invalid_token" => ErrorCode::InvalidRequest,
                _ => ErrorCode::InvalidTarget,
            };
            ApiError::oauth(
                code,
                format!("the identity provider refused a token for `{target}`: {error} {detail}")
                    .trim_end()
                    .to_owned(),
            )
        }
        ExchangeError::Unavailable(_) => ApiError::Unavailable {
            description: "the identity provider cannot be reached".to_owned(),
            retry_after: Some("5".to_owned()),
        },
        ExchangeError::NotPossible(d) => ApiError::oauth(ErrorCode::InvalidGrant, d),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_copied_when_plain_and_escaped_otherwise() {
        for text in [
            "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1In0.c2ln-_",
            "",
            "quote \" backslash \\ tab \t nul \u{0} bell \u{7}",
            "unicode é ✓ \u{7f}",
        ] {
            let mut out = Vec::new();
            json_string(&mut out, text);
            let back: String = serde_json::from_slice(&out).unwrap();
            assert_eq!(back, text);
        }
    }

    #[test]
    fn the_answer_is_the_rfc_8693_response() {
        let exchanged = Exchanged {
            access_token: "a.b.c".to_owned(),
            issued_token_type: ACCESS_TOKEN_TYPE.to_owned(),
            expires_at: 1_000,
            scope: Scopes::parse("notes:read notes:write").unwrap(),
            rotated_refresh_token: None,
            holder: Holder::default(),
        };
        let body: serde_json::Value = serde_json::from_slice(&answer(&exchanged, 42)).unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "access_token": "a.b.c",
                "issued_token_type": ACCESS_TOKEN_TYPE,
                "token_type": "Bearer",
                "expires_in": 42,
                "scope": "notes:read notes:write",
            })
        );
    }
}
