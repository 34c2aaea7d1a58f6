//! `POST /oauth/token`: the `authorization_code`, `refresh_token`, `client_credentials`
//! and ID-JAG (`jwt-bearer`) grants (the lifecycle itself is `flows::grants`) and the token-exchange grant
//! (`http/exchange.rs`). Every answer is `no-store`. Also the one mapping of the grant
//! lifecycle's errors to RFC 6749 answers, shared with revoke, introspect and admin.

use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;

use super::clients::authenticate;
use super::error::{ApiError, ErrorCode};
use super::form::Form;
use super::params::Params;
use crate::domain::id_jag::JWT_BEARER;
use crate::flows::clients::Clients;
use crate::flows::exchange::Exchange;
use crate::flows::grants::{
    ClientCredentialsRequest, CodeRedemption, GrantError, Grants, IdJagRequest, Issued, may_use,
};

const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// The token endpoint: each grant type to its flow.
pub async fn token(
    grants: web::Data<Grants>,
    clients: web::Data<Clients>,
    exchange: web::Data<Exchange>,
    req: HttpRequest,
    Form(params): Form,
) -> Result<HttpResponse, ApiError> {
    let grant_type = params.required("grant_type")?;
    let result = match grant_type {
        "authorization_code" => authorization_code(&grants, &clients, &req, &params).await,
        "refresh_token" => refresh(&grants, &clients, &req, &params).await,
        TOKEN_EXCHANGE => super::exchange::token_exchange(&exchange, &req, &params).await,
        JWT_BEARER => id_jag(&grants, &clients, &req, &params).await,
        "client_credentials" => client_credentials(&grants, &clients, &req, &params).await,
        other => Err(ApiError::oauth(
            ErrorCode::UnsupportedGrantType,
            format!("grant_type `{other}` is not supported"),
        )),
    };
    match &result {
        Ok(_) => grants.count(label(grant_type), "issued"),
        Err(error) => grants.count(label(grant_type), error.code().as_str()),
    }
    result
}

/// The metrics' `grant_type` label: the grants the broker knows, else `other`.
fn label(grant_type: &str) -> &str {
    match grant_type {
        "authorization_code" | "refresh_token" | "client_credentials" => grant_type,
        TOKEN_EXCHANGE => "token_exchange",
        JWT_BEARER => "jwt_bearer",
        _ => "other",
    }
}

async fn authorization_code(
    grants: &Arc<Grants>,
    clients: &Clients,
    req: &HttpRequest,
    params: &Params,
) -> Result<HttpResponse, ApiError> {
    let client = authenticate(clients, req, params).await?;
    let code = params.required("code")?;
    let redirect_uri = params.required("redirect_uri")?;
    let verifier = params.required("code_verifier")?;
    may_use(&client, "authorization_code")?;
    let presented = CodeRedemption {
        code,
        redirect_uri,
        verifier,
    };
    Ok(no_store(grants.redeem(&client, presented).await?))
}

async fn refresh(
    grants: &Grants,
    clients: &Clients,
    req: &HttpRequest,
    params: &Params,
) -> Result<HttpResponse, ApiError> {
    let client = authenticate(clients, req, params).await?;
    let presented = params.required("refresh_token")?;
    let scope = params.one("scope")?;
    Ok(no_store(grants.refresh(&client, presented, scope).await?))
}

/// The ID-JAG grant: the client authenticates as registered (a secret: the grant is
/// for confidential clients) and presents the grant as `assertion` (RFC 7523 §2.1).
async fn id_jag(
    grants: &Grants,
    clients: &Clients,
    req: &HttpRequest,
    params: &Params,
) -> Result<HttpResponse, ApiError> {
    let presented = super::clients::presented(req, params)?;
    let client = clients.authenticate(&presented).await?;
    let request = IdJagRequest {
        assertion: params.required("assertion")?,
        scope: params.one("scope")?,
        confidential: presented.authenticates(),
    };
    Ok(no_store(grants.id_jag(&client, request).await?))
}

/// The client-credentials grant (RFC 6749 §4.4): the client authenticates (a secret
/// or a client assertion) and names the one resource the token is for.
async fn client_credentials(
    grants: &Grants,
    clients: &Clients,
    req: &HttpRequest,
    params: &Params,
) -> Result<HttpResponse, ApiError> {
    let presented = super::clients::presented(req, params)?;
    let client = clients.authenticate(&presented).await?;
    let request = ClientCredentialsRequest {
        resources: params.all("resource"),
        scope: params.one("scope")?,
        authenticated: presented.authenticates(),
    };
    Ok(no_store(grants.client_credentials(&client, request).await?))
}

/// RFC 6749 §5.1's body.
#[derive(Serialize)]
struct TokenBody {
    access_token: String,
    token_type: &'static str,
    expires_in: u64,
    scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<String>,
}

fn no_store(issued: Issued) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("Pragma", "no-cache"))
        .json(TokenBody {
            access_token: issued.access_token,
            token_type: "Bearer",
            expires_in: issued.expires_in,
            scope: issued.scope,
            refresh_token: issued.refresh_token,
        })
}

impl From<GrantError> for ApiError {
    fn from(error: GrantError) -> Self {
        let description = error.to_string();
        match error {
            GrantError::Client(inner) => inner.into(),
            GrantError::InvalidGrant(why) => ApiError::oauth(ErrorCode::InvalidGrant, why),
            GrantError::InvalidScope(why) => ApiError::oauth(ErrorCode::InvalidScope, why),
            GrantError::UnsupportedGrant | GrantError::UnsupportedGrantType(_) => {
                ApiError::oauth(ErrorCode::UnsupportedGrantType, description)
            }
            GrantError::InvalidTarget(why) => ApiError::oauth(ErrorCode::InvalidTarget, why),
            GrantError::UnauthorizedClient(_) | GrantError::ConfidentialOnly => {
                ApiError::oauth(ErrorCode::UnauthorizedClient, description)
            }
            GrantError::UnsupportedHint(_) => ApiError::InvalidRequest(description),
            GrantError::CallerUnauthenticated | GrantError::NotConfidential => {
                ApiError::InvalidClient(description)
            }
            GrantError::Store(_)
            | GrantError::ProviderUnreachable
            | GrantError::ProviderUnconfirmed => unavailable(description, "5"),
            GrantError::ShuttingDown | GrantError::KeysNotLoaded => unavailable(description, "1"),
            GrantError::Signing(_) => ApiError::Internal(description),
            GrantError::AdminOff => ApiError::NotFound,
            GrantError::AdminTokenMissing => ApiError::MissingToken(description),
            GrantError::AdminTokenWrong => ApiError::InvalidToken(description),
        }
    }
}

fn unavailable(description: String, retry_after: &str) -> ApiError {
    ApiError::Unavailable {
        description,
        retry_after: Some(retry_after.to_owned()),
    }
}
