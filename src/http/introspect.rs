//! `POST /oauth/introspect` (RFC 7662) for resource servers. The caller must be a
//! confidential client (as Keycloak requires: any confidential client of the realm
//! may introspect). Broker-issued access and refresh tokens are described; anything
//! else — unknown, expired, revoked, rotated, another issuer's — is `{"active": false}`.

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

use super::clients;
use super::error::ApiError;
use super::form::Form;
use crate::domain::refresh as refresh_tokens;
use crate::server::AppState;

pub async fn introspect(
    state: web::Data<AppState>,
    req: HttpRequest,
    Form(params): Form,
) -> Result<HttpResponse, ApiError> {
    let client = clients::authenticate(&state, &req, &params).await?;
    if client.secret_hash.is_none() {
        return Err(ApiError::InvalidClient(
            "introspection is for confidential clients (resource servers)".to_owned(),
        ));
    }
    let token = params.required("token")?;
    let body = describe(&state, token).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(body))
}

async fn describe(state: &AppState, token: &str) -> Result<Value, ApiError> {
    let inactive = json!({ "active": false });
    let now = state.clock.unix();
    let unavailable = |e: crate::store::StoreError| ApiError::Unavailable {
        description: format!("token store unavailable: {e}"),
        retry_after: Some("5".to_owned()),
    };
    let record = state
        .store
        .find_refresh(&refresh_tokens::hash(token))
        .await
        .map_err(unavailable)?;
    if let Some(record) = record {
        if record.rotated.is_some() || now >= record.expires_at {
            return Ok(inactive);
        }
        let grant = state
            .store
            .get_grant(&record.grant_id)
            .await
            .map_err(unavailable)?;
        return Ok(match grant {
            Some(grant) if grant.revoked_at.is_none() => json!({
                "active": true,
                "token_type": "refresh_token",
                "scope": record.scopes.to_string(),
                "client_id": grant.client_id,
                "sub": grant.subject,
                "iss": state.config.server.public_url.as_str(),
                "iat": record.issued_at,
                "exp": record.expires_at,
            }),
            _ => inactive,
        });
    }
    let Ok(verified) = state.verifier.verify_broker(token).await else {
        return Ok(inactive);
    };
    let principal = &verified.principal;
    Ok(json!({
        "active": true,
        "token_type": "Bearer",
        "scope": principal.scopes.to_string(),
        "client_id": principal.client_id,
        "sub": principal.subject,
        "aud": verified.audiences,
        "iss": state.config.server.public_url.as_str(),
        "exp": verified.expires_at,
    }))
}
