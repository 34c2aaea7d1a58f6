//! Token introspection (RFC 7662), revocation (RFC 7009) and userinfo (OIDC Core §5.3).

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use serde_json::json;

use super::error::{ErrorCode, IdpError, err};
use super::idp::{Client, Idp};
use super::params::Form;
use super::params::Params;
use crate::domain::client_auth;

/// Reads and checks the client's credentials (RFC 6749 §2.3.1) for the token,
/// introspection and revocation endpoints.
pub fn authenticate(idp: &Idp, req: &HttpRequest, params: &Params) -> Result<Client, IdpError> {
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let presented = client_auth::read(
        authorization,
        params.one("client_id")?,
        params.one("client_secret")?,
    )
    .map_err(|e| IdpError::InvalidClient(e.to_string()))?;
    idp.authenticate(&presented)
}

/// Confidential clients only; unknown, expired and revoked tokens are `active: false`.
pub async fn introspect(
    idp: web::Data<Idp>,
    req: HttpRequest,
    Form(params): Form,
) -> Result<HttpResponse, IdpError> {
    let client = authenticate(&idp, &req, &params)?;
    if client.secret.is_none() {
        return Err(IdpError::InvalidClient(
            "introspection requires a confidential client".to_owned(),
        ));
    }
    let token = params.required("token")?;
    if let Some(claims) = idp.verify_access(token) {
        let mut body =
            serde_json::to_value(&claims).map_err(|e| IdpError::Internal(e.to_string()))?;
        body["active"] = json!(true);
        body["token_type"] = json!("Bearer");
        if body.get("scope").is_none() {
            body["scope"] = json!(claims.scopes().to_string());
        }
        return Ok(HttpResponse::Ok().json(body));
    }
    let now = idp.clock.unix();
    let refresh = idp.store()?.refresh.get(token).cloned();
    Ok(HttpResponse::Ok().json(match refresh {
        Some(r) if r.expires_at > now => json!({
            "active": true,
            "token_type": "refresh_token",
            "client_id": r.client_id,
            "sub": r.sub,
            "scope": r.scopes.to_string(),
            "exp": r.expires_at,
            "iss": idp.issuer,
        }),
        _ => json!({ "active": false }),
    }))
}

/// Always 200 for tokens that are unknown or already invalid (RFC 7009 §2.2).
pub async fn revoke(
    idp: web::Data<Idp>,
    req: HttpRequest,
    Form(params): Form,
) -> Result<HttpResponse, IdpError> {
    let client = authenticate(&idp, &req, &params)?;
    let token = params.required("token")?;
    if let Some(claims) = idp.verify_access(token) {
        if claims.client_id != client.client_id {
            return Err(err(
                ErrorCode::UnauthorizedClient,
                "the token was issued to another client",
            ));
        }
        idp.store()?.revoked.insert(claims.jti, claims.exp);
        return Ok(HttpResponse::Ok().finish());
    }
    let mut store = idp.store()?;
    if let Some(refresh) = store.refresh.get(token).cloned() {
        if refresh.client_id != client.client_id {
            return Err(err(
                ErrorCode::UnauthorizedClient,
                "the token was issued to another client",
            ));
        }
        let family = refresh.family;
        store.refresh.retain(|_, r| r.family != family);
    }
    Ok(HttpResponse::Ok().finish())
}

/// The user's claims for a valid access token carrying `openid`.
pub async fn userinfo(idp: web::Data<Idp>, req: HttpRequest) -> Result<HttpResponse, IdpError> {
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| IdpError::MissingToken("a bearer token is required".to_owned()))?;
    let claims = idp.verify_access(token).ok_or_else(|| {
        IdpError::InvalidToken("the token is invalid, expired or revoked".to_owned())
    })?;
    let scopes = claims.scopes();
    if !scopes.contains("openid") {
        // RFC 6750 §3: a 403 for a token lacking scope carries the challenge too.
        let mut response = err(
            ErrorCode::InsufficientScope,
            "userinfo needs the openid scope",
        )
        .error_response();
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer error=\"insufficient_scope\", scope=\"openid\""),
        );
        return Ok(response);
    }
    let set = idp.store()?.userinfo.get(&claims.sub).cloned();
    let set = set.unwrap_or_default();
    let sub = set.answer_sub.clone().unwrap_or_else(|| claims.sub.clone());
    let mut body = json!({ "sub": sub });
    if let Some(user) = idp.user(&claims.sub) {
        // Groups only as `/_dev/userinfo` set them: by default, like many providers,
        // userinfo leaves them to the ID token.
        if let Some(groups) = set.groups {
            body["groups"] = json!(groups);
        }
        if scopes.contains("profile") {
            body["name"] = json!(user.name);
            body["preferred_username"] = json!(user.sub);
        }
        if scopes.contains("email") {
            body["email"] = json!(user.email);
            body["email_verified"] = json!(true);
        }
    }
    Ok(HttpResponse::Ok().json(body))
}
