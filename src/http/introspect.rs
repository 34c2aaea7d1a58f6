//! `POST /oauth/introspect` (RFC 7662) for resource servers. The caller must be a
//! confidential client: a `[[exchange.clients]]` entry or a registered client with a
//! secret. Only the resource servers named in `[introspection] clients` learn about
//! any access token (RFC 7662 §4: otherwise whoever registers could probe everyone's
//! tokens); any other caller, and a resource server asking about a refresh token,
//! learns only about tokens issued to itself. Everything else — unknown, expired,
//! revoked, rotated, another issuer's, another client's — is `{"active": false}`
//! (§2.2: an inactive answer reveals nothing).

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

use super::clients;
use super::error::ApiError;
use super::form::Form;
use super::params::Params;
use crate::domain::refresh as refresh_tokens;
use crate::server::AppState;

pub async fn introspect(
    state: web::Data<AppState>,
    req: HttpRequest,
    Form(params): Form,
) -> Result<HttpResponse, ApiError> {
    let caller = caller(&state, &req, &params).await?;
    let token = params.required("token")?;
    let body = describe(&state, token, &caller).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(body))
}

/// Who asks, authenticated.
struct Caller {
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

/// A configured `[[exchange.clients]]` entry (its secret from the configuration), else
/// a registered confidential client.
async fn caller(state: &AppState, req: &HttpRequest, params: &Params) -> Result<Caller, ApiError> {
    let presented = clients::presented(req, params)?;
    let client_id = if state
        .config
        .exchange
        .caller(presented.client_id())
        .is_some()
    {
        super::exchange::authenticate_caller(&state.exchange, req, params)?
            .client_id
            .clone()
    } else {
        let client = clients::authenticate(state, req, params).await?;
        if client.secret_hash.is_none() {
            return Err(ApiError::InvalidClient(
                "introspection is for confidential clients (resource servers)".to_owned(),
            ));
        }
        client.client_id
    };
    Ok(Caller {
        resource_server: state.config.introspection.any_token(&client_id),
        client_id,
    })
}

async fn describe(state: &AppState, token: &str, caller: &Caller) -> Result<Value, ApiError> {
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
            Some(grant)
                if grant.revoked_at.is_none() && caller.may_see(Some(&grant.client_id), true) =>
            {
                json!({
                "active": true,
                "token_type": "refresh_token",
                "scope": record.scopes.to_string(),
                "client_id": grant.client_id,
                "sub": grant.subject,
                "iss": state.config.server.public_url.as_str(),
                "iat": record.issued_at,
                "exp": record.expires_at,
                })
            }
            _ => inactive,
        });
    }
    let Ok(verified) = state.verifier.verify_broker(token).await else {
        return Ok(inactive);
    };
    let principal = &verified.principal;
    if !caller.may_see(principal.client_id.as_deref(), false) {
        return Ok(inactive);
    }
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
