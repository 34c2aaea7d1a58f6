//! `POST /oauth/introspect` (RFC 7662; who may learn what is `flows::grants`): the
//! answer as JSON, `{"active": false}` for anything the caller may not see.

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

use super::clients;
use super::error::ApiError;
use super::form::Form;
use crate::flows::grants::{Grants, Introspection};

pub async fn introspect(
    grants: web::Data<Grants>,
    req: HttpRequest,
    Form(params): Form,
) -> Result<HttpResponse, ApiError> {
    let presented = clients::presented(&req, &params)?;
    let caller = grants.introspection_caller(&presented).await?;
    let token = params.required("token")?;
    let answer = grants.introspect(token, &caller).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(body(answer)))
}

/// RFC 7662 §2.2's members.
fn body(answer: Introspection) -> Value {
    match answer {
        Introspection::Inactive => json!({ "active": false }),
        Introspection::RefreshToken {
            scope,
            client_id,
            subject,
            issuer,
            issued_at,
            expires_at,
        } => json!({
            "active": true,
            "token_type": "refresh_token",
            "scope": scope,
            "client_id": client_id,
            "sub": subject,
            "iss": issuer,
            "iat": issued_at,
            "exp": expires_at,
        }),
        Introspection::AccessToken {
            scope,
            client_id,
            subject,
            audiences,
            issuer,
            expires_at,
        } => json!({
            "active": true,
            "token_type": "Bearer",
            "scope": scope,
            "client_id": client_id,
            "sub": subject,
            "aud": audiences,
            "iss": issuer,
            "exp": expires_at,
        }),
    }
}
