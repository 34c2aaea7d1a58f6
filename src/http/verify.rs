//! `GET /auth/verify`: forward-auth for nginx `auth_request`, Traefik `forwardAuth`
//! and Envoy `ext_authz` (HTTP). The proxy forwards the client's `Authorization` and
//! the original URI; 200 lets the request through with `X-Auth-*` headers, 401/403
//! carry the `WWW-Authenticate` the proxy passes back to the client.

use actix_web::http::Uri;
use actix_web::{HttpRequest, HttpResponse, web};

use super::protect;
use crate::server::AppState;

/// The original request URI, as the proxy reports it.
fn original_uri(req: &HttpRequest) -> Uri {
    ["x-forwarded-uri", "x-original-uri"]
        .iter()
        .find_map(|name| req.headers().get(*name)?.to_str().ok()?.parse::<Uri>().ok())
        .unwrap_or_else(|| req.uri().clone())
}

pub async fn verify(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    match protect::check(&state, req.headers(), &original_uri(&req)).await {
        Ok(principal) => HttpResponse::Ok()
            .insert_header(("X-Auth-Subject", principal.subject.as_str()))
            .insert_header(("X-Auth-Scopes", principal.scopes.to_string()))
            .insert_header((
                "X-Auth-Client-Id",
                principal.client_id.as_deref().unwrap_or(""),
            ))
            .finish(),
        Err(denial) => denial.response(),
    }
}
