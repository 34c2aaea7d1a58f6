//! The resource-server check shared by forward-auth (`/auth/verify`) and routes the
//! broker protects itself (the demo's `/mcp`): find the protected resource for the
//! path, read the bearer token from the header only, verify it, enforce the
//! resource's required scopes, and describe any refusal the way MCP clients expect
//! (RFC 6750 §3 + RFC 9728 §5.1 `resource_metadata`).

use std::borrow::Cow;
use std::sync::Arc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap, HeaderValue};
use actix_web::http::{StatusCode, Uri};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage, HttpResponse, ResponseError, web};

use super::error::{ApiError, ErrorCode};
use crate::config::{Config, ResourceConfig};
use crate::domain::scope::Scopes;
use crate::flows::exchange;
use crate::server::AppState;
use crate::tokens::verify::token_digest;
use crate::tokens::{Principal, Rejection};

/// A refusal, ready to become a 401 or 403.
#[derive(Debug)]
pub struct Denial {
    pub status: StatusCode,
    /// `WWW-Authenticate` value; absent when no resource matched.
    pub challenge: Option<String>,
    /// Metric/log reason.
    pub reason: &'static str,
    /// For a 400: what was wrong with the request, as the body's `error_description`.
    pub description: Option<&'static str>,
}

impl Denial {
    /// A request that cannot be judged at all (400 `invalid_request`): the proxy would
    /// route it differently from how the broker reads it.
    pub fn bad_request(reason: &'static str, description: &'static str) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            challenge: None,
            reason,
            description: Some(description),
        }
    }

    pub fn response(&self) -> HttpResponse {
        if let Some(description) = self.description {
            return ApiError::oauth(ErrorCode::InvalidRequest, description).error_response();
        }
        let mut response = HttpResponse::build(self.status);
        // RFC 9110 §15.5.6: a 405 names what is allowed; only POSTs pass anonymously.
        if self.status == StatusCode::METHOD_NOT_ALLOWED {
            response.insert_header((header::ALLOW, "POST"));
        }
        if let Some(challenge) = &self.challenge {
            response.insert_header((header::WWW_AUTHENTICATE, challenge.as_str()));
        }
        response.finish()
    }
}

/// The path of `uri` as the proxy routes it (escapes decoded), or a 400 when proxies
/// and servers could resolve it differently (dot segments, encoded slashes, `//`): never
/// matched raw, so `/mcp/../mcp-admin` cannot be judged as `/mcp`.
pub fn routed_path(uri: &Uri) -> Result<Cow<'_, str>, Denial> {
    crate::domain::resource::routed_path(uri.path()).map_err(|error| {
        tracing::info!(reason = "ambiguous_path", %error, path = uri.path(), "request refused");
        Denial::bad_request("ambiguous_path", error.description())
    })
}

/// The resource a routed path (see [`routed_path`]) belongs to: the longest configured
/// path that is a prefix of it at a segment boundary.
pub fn resource_for<'a>(config: &'a Config, path: &str) -> Option<&'a ResourceConfig> {
    config
        .resources
        .iter()
        .filter(|r| crate::domain::resource::path_covers(&r.path, path))
        .max_by_key(|r| r.path.len())
}

/// Where the resource's metadata lives (RFC 9728 §3.1): its origin, the well-known
/// prefix, then its path.
pub fn metadata_url(resource: &ResourceConfig) -> String {
    let origin = url::Url::parse(&resource.uri)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default();
    format!(
        "{origin}/.well-known/oauth-protected-resource{}",
        resource.path
    )
}

pub(crate) fn challenge(
    resource: &ResourceConfig,
    error: Option<&str>,
    scope: &Scopes,
    description: Option<&str>,
) -> String {
    let mut value = format!("Bearer resource_metadata=\"{}\"", metadata_url(resource));
    let scope = if scope.is_empty() {
        resource.scopes_supported.join(" ")
    } else {
        scope.to_string()
    };
    if !scope.is_empty() {
        value.push_str(&format!(", scope=\"{scope}\""));
    }
    if let Some(error) = error {
        value.push_str(&format!(", error=\"{error}\""));
    }
    if let Some(description) = description {
        value.push_str(&format!(", error_description=\"{description}\""));
    }
    value
}

/// Checks a request to `uri` carrying `headers`.
pub async fn check(
    state: &AppState,
    headers: &HeaderMap,
    uri: &Uri,
) -> Result<Arc<Principal>, Denial> {
    check_resource(state, headers, uri)
        .await
        .map(|checked| checked.principal)
}

/// A request that passed [`check_resource`].
pub struct Checked<'a> {
    pub resource: &'a ResourceConfig,
    pub principal: Arc<Principal>,
    /// The bearer token's `token_digest`: an exchange after the check keys its cache
    /// by it rather than hashing the token again.
    pub digest: [u8; 32],
}

/// [`check`], also naming the resource the request was checked for.
pub async fn check_resource<'a>(
    state: &'a AppState,
    headers: &HeaderMap,
    uri: &Uri,
) -> Result<Checked<'a>, Denial> {
    check_operation(state, headers, uri, |resource| {
        resource.required_scopes.clone()
    })
    .await
}

/// [`check_resource`] for an operation that needs `needs(resource)`, a superset of the
/// resource's required scopes (a tool's, say): the token must hold only the required
/// ones here, but a refusal's `scope` names all of them, so that one authorization
/// covers the operation (MCP 2026-07-28, "Scope Challenge Handling").
pub async fn check_operation<'a>(
    state: &'a AppState,
    headers: &HeaderMap,
    uri: &Uri,
    needs: impl Fn(&ResourceConfig) -> Scopes,
) -> Result<Checked<'a>, Denial> {
    let path = routed_path(uri).inspect_err(|denial| state.metrics.auth_failure(denial.reason))?;
    let Some(resource) = resource_for(&state.config, &path) else {
        return Err(Denial {
            status: StatusCode::FORBIDDEN,
            challenge: None,
            reason: "no_resource",
            description: None,
        });
    };
    // Only a refusal asks: the request that passes allocates nothing for it.
    let needed = || resource.required_scopes.union(&needs(resource));
    let reject = |rejection: Rejection| {
        state.metrics.auth_failure(rejection.reason());
        tracing::info!(reason = rejection.reason(), resource = %resource.uri, "request refused");
        Denial {
            status: StatusCode::UNAUTHORIZED,
            challenge: Some(challenge(resource, rejection.error_code(), &needed(), None)),
            reason: rejection.reason(),
            description: None,
        }
    };
    let token_in_query = uri.query().is_some_and(|q| {
        url::form_urlencoded::parse(q.as_bytes()).any(|(k, _)| k == "access_token")
    });
    if token_in_query {
        return Err(reject(Rejection::TokenInQuery));
    }
    let token = bearer(headers).map_err(reject)?;
    let digest = token_digest(token);
    let principal = state
        .verifier
        .verify_digested(token, &digest, resource)
        .await
        .map_err(reject)?;
    let missing = resource.required_scopes.missing_from(&principal.scopes);
    if !missing.is_empty() {
        state.metrics.auth_failure("insufficient_scope");
        tracing::info!(reason = "insufficient_scope", %missing, resource = %resource.uri, "request refused");
        // `scope` names everything needed, so a client that re-requests exactly it
        // keeps what it had; the description names what was missing of it.
        let needed = needed();
        let description = format!("missing scope: {}", needed.missing_from(&principal.scopes));
        return Err(Denial {
            status: StatusCode::FORBIDDEN,
            challenge: Some(challenge(
                resource,
                Some("insufficient_scope"),
                &needed,
                Some(&description),
            )),
            reason: "insufficient_scope",
            description: None,
        });
    }
    Ok(Checked {
        resource,
        principal,
        digest,
    })
}

/// The bearer token from `Authorization` (scheme case-insensitive, RFC 6750 §2.1).
pub(crate) fn bearer(headers: &HeaderMap) -> Result<&str, Rejection> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or(Rejection::Missing)?
        .as_bytes();
    let space = value
        .iter()
        .position(|b| *b == b' ')
        .ok_or(Rejection::WrongScheme)?;
    if !value[..space].eq_ignore_ascii_case(b"bearer") {
        return Err(Rejection::WrongScheme);
    }
    // Visible ASCII only (RFC 6750's b64token, loosened for providers whose opaque
    // tokens use other punctuation); checked as bytes, cheaper than `to_str`.
    let token = value[space + 1..].trim_ascii();
    if token.is_empty() || !token.iter().all(|b| (0x21..=0x7e).contains(b)) {
        return Err(Rejection::Malformed);
    }
    std::str::from_utf8(token).map_err(|_| Rejection::Malformed)
}

pub use crate::flows::exchange::Downstream;

/// Middleware for routes the broker serves itself: verified requests continue with
/// the `Principal` in their extensions; others get the 401/403 described above. For a
/// resource with an `exchange_audience` the client's token is replaced by the
/// downstream token before the route sees the request (503 when none can be had).
pub async fn require_token(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Ok(req
            .into_response(HttpResponse::InternalServerError().finish())
            .map_into_right_body());
    };
    let Checked {
        resource,
        principal,
        digest,
    } = match check_resource(&state, req.headers(), req.uri()).await {
        Ok(checked) => checked,
        Err(denial) => return Ok(req.into_response(denial.response()).map_into_right_body()),
    };
    if resource.exchange_audience.is_some() {
        let token = bearer(req.headers()).map(str::to_owned).unwrap_or_default();
        let subject = exchange::Presented {
            token: &token,
            digest: &digest,
            principal: &principal,
        };
        let exchanged = state.exchange.for_resource(resource, subject).await;
        // Fail closed: without a downstream token the client's must not go through.
        let Some(value) = exchanged.ok().flatten().and_then(|exchanged| {
            let value = HeaderValue::from_str(&format!("Bearer {}", exchanged.access_token));
            Some((value.ok()?, exchanged))
        }) else {
            let unavailable = HttpResponse::ServiceUnavailable()
                .insert_header((header::RETRY_AFTER, "5"))
                .finish();
            return Ok(req.into_response(unavailable).map_into_right_body());
        };
        req.headers_mut().insert(header::AUTHORIZATION, value.0);
        req.extensions_mut().insert(Downstream(value.1));
    }
    req.extensions_mut().insert(Principal::clone(&principal));
    Ok(next.call(req).await?.map_into_left_body())
}
