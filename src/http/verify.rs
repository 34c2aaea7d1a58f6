//! `GET /auth/verify`: forward-auth for nginx `auth_request`, Traefik `forwardAuth`
//! and Envoy `ext_authz` (HTTP). The proxy forwards the client's `Authorization` and
//! the original URI; 200 lets the request through with `X-Auth-*` headers, 401/403
//! carry the `WWW-Authenticate` the proxy passes back to the client. For a resource
//! with an `exchange_audience`, a 200 also carries the downstream token.

use actix_web::http::Uri;
use actix_web::http::header::HeaderName;
use actix_web::{HttpRequest, HttpResponse, web};

use super::{exchange, protect};
use crate::server::AppState;
use crate::upstream::exchange::ACCESS_TOKEN_TYPE;

// Names built once, not parsed per request.
const X_AUTH_SUBJECT: HeaderName = HeaderName::from_static("x-auth-subject");
const X_AUTH_SCOPES: HeaderName = HeaderName::from_static("x-auth-scopes");
const X_AUTH_CLIENT_ID: HeaderName = HeaderName::from_static("x-auth-client-id");

/// The original request URI, as the proxy reports it.
fn original_uri(req: &HttpRequest) -> Uri {
    ["x-forwarded-uri", "x-original-uri"]
        .iter()
        .find_map(|name| req.headers().get(*name)?.to_str().ok()?.parse::<Uri>().ok())
        .unwrap_or_else(|| req.uri().clone())
}

pub async fn verify(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let uri = original_uri(&req);
    let (resource, principal) = match protect::check_resource(&state, req.headers(), &uri).await {
        Ok(checked) => checked,
        Err(denial) => return denial.response(),
    };
    let mut response = HttpResponse::Ok();
    response
        .insert_header((X_AUTH_SUBJECT, principal.subject.as_str()))
        .insert_header((X_AUTH_SCOPES, principal.scopes.to_string()))
        .insert_header((
            X_AUTH_CLIENT_ID,
            principal.client_id.as_deref().unwrap_or(""),
        ));
    // A resource that names an exchange audience gets the downstream token, so the
    // MCP server behind the proxy never sees (or needs) the client's token.
    let audience = resource
        .exchange_audience
        .as_deref()
        .and_then(|name| state.config.exchange.audience(name));
    if let Some(audience) = audience {
        let Ok(token) = protect::bearer(req.headers()) else {
            return HttpResponse::Unauthorized().finish();
        };
        match exchange::downstream(
            &state,
            exchange::Presented {
                token,
                principal: &principal,
            },
            None,
            audience,
            None,
            ACCESS_TOKEN_TYPE,
        )
        .await
        {
            Ok(exchanged) => {
                response
                    .insert_header((
                        "Authorization",
                        format!("Bearer {}", exchanged.access_token),
                    ))
                    .insert_header(("X-Auth-Access-Token", exchanged.access_token.as_str()));
            }
            // Fail closed: no downstream token, no request through.
            Err(error) => {
                tracing::warn!(%error, audience = %audience.audience, "forward-auth exchange failed");
                state.metrics.auth_failure("exchange_failed");
                return HttpResponse::ServiceUnavailable()
                    .insert_header(("Retry-After", "5"))
                    .finish();
            }
        }
    }
    response.finish()
}
