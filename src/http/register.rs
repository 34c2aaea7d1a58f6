//! `POST /oauth/register`: dynamic client registration (RFC 7591). Validates the
//! metadata, answers identical public registrations with their existing client,
//! rate-limits per client IP, and asks the registration actor for a new client.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

use super::error::{ApiError, ErrorCode};
use super::rate_limit::Refusal;
use crate::actors::registration::RegistrationError;
use crate::domain::client_ip::client_ip;
use crate::domain::client_metadata::{self, MetadataError, RedirectPolicy, SupportedScopes};
use crate::server::AppState;
use crate::store::StoredClient;

pub async fn register(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let config = &state.config.registration;
    let policy = RedirectPolicy {
        allow_private_use_schemes: config.allow_private_use_schemes,
        allowed_patterns: config.redirect_uri_allow_list.clone(),
    };
    let metadata =
        client_metadata::validate(&body, &policy, &SupportedScopes(None)).map_err(|e| {
            state.metrics.registration("invalid");
            match e {
                MetadataError::InvalidRedirectUri(d) => {
                    ApiError::oauth(ErrorCode::InvalidRedirectUri, d)
                }
                MetadataError::InvalidClientMetadata(d) => {
                    ApiError::oauth(ErrorCode::InvalidClientMetadata, d)
                }
            }
        })?;
    if let Some(existing) = state.registration.existing_public(&metadata).await {
        state.metrics.registration("reused");
        return Ok(created(&existing, None));
    }
    let peer = req.peer_addr().map(|a| a.ip());
    let forwarded = req
        .headers()
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok());
    if let Some(peer) = peer {
        let ip = client_ip(peer, forwarded, &state.config.server.trusted_proxies);
        match state.registration_limiter.admit(&ip.to_string()).await {
            Ok(()) => {}
            Err(Refusal::Limited { retry_after_secs }) => {
                state.metrics.registration("rate_limited");
                return Err(ApiError::RateLimited {
                    retry_after: Some(retry_after_secs.to_string()),
                });
            }
            Err(Refusal::Unavailable(error)) => {
                // Registering needs the same store for the client record anyway.
                tracing::warn!(%error, "registration rate limit unavailable");
                state.metrics.registration("failed");
                return Err(ApiError::Unavailable {
                    description: "registration is unavailable; retry later".to_owned(),
                    retry_after: Some("5".to_owned()),
                });
            }
        }
    }
    let registered = state
        .registration
        .register(metadata)
        .await
        .map_err(|e| match e {
            RegistrationError::Full => ApiError::Unavailable {
                description: "registration is closed for now; retry later".to_owned(),
                retry_after: Some("60".to_owned()),
            },
            RegistrationError::Store(error) => {
                tracing::warn!(%error, "registration could not be stored");
                ApiError::Unavailable {
                    description: "registration is unavailable; retry later".to_owned(),
                    retry_after: Some("5".to_owned()),
                }
            }
            RegistrationError::Stopped => {
                ApiError::Internal("registration actor stopped".to_owned())
            }
            RegistrationError::UpstreamRefused(description) => ApiError::oauth(
                ErrorCode::InvalidClientMetadata,
                format!("the identity provider refused the registration: {description}"),
            ),
            RegistrationError::UpstreamBusy { retry_after } => ApiError::Unavailable {
                description: "the identity provider is busy; retry later".to_owned(),
                retry_after: Some(retry_after.as_secs().max(1).to_string()),
            },
            RegistrationError::Upstream(cause) => {
                tracing::error!(%cause, "proxied registration failed");
                ApiError::Unavailable {
                    description: "registration at the identity provider failed; retry later"
                        .to_owned(),
                    retry_after: Some("30".to_owned()),
                }
            }
        })?;
    tracing::info!(client_id = %registered.client.client_id, "client registered");
    Ok(created(&registered.client, registered.secret.as_deref()))
}

/// The RFC 7591 §3.2.1 response: the registered metadata plus the credentials.
fn created(client: &StoredClient, secret: Option<&str>) -> HttpResponse {
    let mut body = match &client.metadata {
        Value::Object(map) => map.clone(),
        _ => serde_json::Map::new(),
    };
    body.insert("client_id".into(), json!(client.client_id));
    body.insert("client_id_issued_at".into(), json!(client.issued_at));
    if let Some(secret) = secret {
        body.insert("client_secret".into(), json!(secret));
        body.insert("client_secret_expires_at".into(), json!(0));
    }
    HttpResponse::Created()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(Value::Object(body))
}
