//! `POST /oauth/register`: dynamic client registration (RFC 7591) over
//! `flows::registration`; this file renders the 201 and maps the flow's errors.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

use super::error::{ApiError, ErrorCode};
use crate::flows::registration::{RegisterError, RegisterRequest, Registrar};
use crate::store::StoredClient;

pub async fn register(
    registrar: web::Data<Registrar>,
    req: HttpRequest,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let request = RegisterRequest {
        metadata: &body,
        peer: req.peer_addr().map(|a| a.ip()),
        forwarded_for: req
            .headers()
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok()),
    };
    let registered = registrar.register(request).await?;
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

impl From<RegisterError> for ApiError {
    fn from(error: RegisterError) -> Self {
        let unavailable = |description: &str, retry_after: u64| ApiError::Unavailable {
            description: description.to_owned(),
            retry_after: Some(retry_after.to_string()),
        };
        match error {
            RegisterError::InvalidRedirectUri(d) => {
                ApiError::oauth(ErrorCode::InvalidRedirectUri, d)
            }
            RegisterError::InvalidMetadata(d) => {
                ApiError::oauth(ErrorCode::InvalidClientMetadata, d)
            }
            refused @ RegisterError::UpstreamRefused(_) => {
                ApiError::oauth(ErrorCode::InvalidClientMetadata, refused.to_string())
            }
            RegisterError::RateLimited { retry_after_secs } => ApiError::RateLimited {
                retry_after: Some(retry_after_secs.to_string()),
            },
            RegisterError::StoreUnavailable => {
                unavailable("registration is unavailable; retry later", 5)
            }
            RegisterError::Full => unavailable("registration is closed for now; retry later", 60),
            RegisterError::UpstreamBusy { retry_after } => unavailable(
                "the identity provider is busy; retry later",
                retry_after.as_secs().max(1),
            ),
            RegisterError::UpstreamFailed => unavailable(
                "registration at the identity provider failed; retry later",
                30,
            ),
            RegisterError::Stopped => ApiError::Internal("registration actor stopped".to_owned()),
        }
    }
}
