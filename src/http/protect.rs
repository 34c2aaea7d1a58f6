//! The HTTP side of the access flow (`flows::access`): a request's path, query and
//! bearer token read for it, and its refusals rendered the way MCP clients expect
//! (RFC 6750 §3 + RFC 9728 §5.1 `resource_metadata`); and the middleware that
//! protects routes the broker serves itself (the demo's `/mcp`).

use std::sync::Arc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::http::{StatusCode, Uri};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage, HttpResponse, ResponseError, web};

use super::error::{ApiError, ErrorCode};
use crate::flows::access::{self, Access, Checked, Denial, Refusal, Request};
use crate::flows::addresses::AddressRefused;
pub use crate::flows::exchange::NoDownstream;
use crate::flows::exchange::{Exchange, Exchanged};
use crate::flows::limits::{Budget, Origin};
use crate::tokens::{Principal, Rejection};

/// draft-ietf-httpapi-ratelimit-headers: the budget's policy and what is left of it.
pub const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
pub const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");
/// The status forward-auth means when it refuses for a rate limit (429) or without its
/// counters (503): nginx's `auth_request` turns both into 500, and its `error_page`
/// for 500 reads this to answer the client with the real one (README, "Rate limits").
pub const X_AUTH_STATUS: HeaderName = HeaderName::from_static("x-auth-status");

// Names built once, not parsed per request.
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// What the access flow judges of a request to `uri` carrying `headers` from `peer`.
pub fn request<'r>(
    headers: &'r HeaderMap,
    uri: &'r Uri,
    peer: Option<std::net::IpAddr>,
) -> Request<'r> {
    Request {
        path: uri.path(),
        query: uri.query(),
        token: bearer(headers),
        origin: Origin {
            peer,
            forwarded_for: headers.get(X_FORWARDED_FOR).and_then(|v| v.to_str().ok()),
            host: headers.get(header::HOST).and_then(|v| v.to_str().ok()),
            forwarded_host: headers.get(X_FORWARDED_HOST).and_then(|v| v.to_str().ok()),
        },
    }
}

/// The `RateLimit-Policy` and `RateLimit` fields for `budget`, if any.
pub fn budget_headers(headers: &mut HeaderMap, budget: Option<&Budget>) {
    let Some(budget) = budget else { return };
    if let Ok(value) = HeaderValue::from_str(budget.policy_header()) {
        headers.insert(RATELIMIT_POLICY, value);
    }
    if let Ok(value) = HeaderValue::try_from(budget.header()) {
        headers.insert(RATELIMIT, value);
    }
}

/// The bearer token from `Authorization` (scheme case-insensitive, RFC 6750 §2.1).
pub(crate) fn bearer(headers: &HeaderMap) -> Result<&str, Rejection> {
    access::bearer(
        headers
            .get(header::AUTHORIZATION)
            .map(HeaderValue::as_bytes),
    )
}

/// A refusal as an HTTP answer: 400 with the RFC 6749 body, else the status with its
/// `WWW-Authenticate` challenge and no body.
pub fn refusal(denial: &Denial) -> HttpResponse {
    let status = match denial.refusal {
        Refusal::Unjudgeable(description) => {
            return ApiError::oauth(ErrorCode::InvalidRequest, description).error_response();
        }
        Refusal::Unauthenticated => StatusCode::UNAUTHORIZED,
        Refusal::Forbidden => StatusCode::FORBIDDEN,
        Refusal::StreamRefused => StatusCode::METHOD_NOT_ALLOWED,
        Refusal::Limited { retry_after_secs } => {
            return limited(StatusCode::TOO_MANY_REQUESTS, retry_after_secs, denial);
        }
        Refusal::LimitUnavailable { retry_after_secs }
        | Refusal::Unavailable { retry_after_secs } => {
            return limited(StatusCode::SERVICE_UNAVAILABLE, retry_after_secs, denial);
        }
        // A status nginx's auth_request passes on as it is.
        Refusal::AddressRefused => return address_refused(),
    };
    let mut response = HttpResponse::build(status);
    // RFC 9110 §15.5.6: a 405 names what is allowed; only POSTs pass anonymously.
    if denial.refusal == Refusal::StreamRefused {
        response.insert_header((header::ALLOW, "POST"));
    }
    if let Some(challenge) = &denial.challenge {
        response.insert_header((header::WWW_AUTHENTICATE, challenge.to_string()));
    }
    response.finish()
}

/// 403 `access_denied` for a client address a list refuses (RFC 6749 JSON).
pub fn address_refused() -> HttpResponse {
    ApiError::oauth(ErrorCode::AccessDenied, AddressRefused.to_string()).error_response()
}

/// 429 (or 503) with `Retry-After`, the budget's fields and `X-Auth-Status`, no body.
fn limited(status: StatusCode, retry_after_secs: u64, denial: &Denial) -> HttpResponse {
    let mut response = HttpResponse::build(status)
        .insert_header((header::RETRY_AFTER, retry_after_secs))
        .insert_header((X_AUTH_STATUS, status.as_str()))
        .finish();
    budget_headers(response.headers_mut(), denial.budget.as_deref());
    response
}

/// The downstream token for a checked request to a resource with an
/// `exchange_audience` (`Ok(None)` for one without); `Err` when none can be had, and
/// the request must not go through (also when no exchange flow is registered).
pub(crate) async fn downstream(
    flow: Option<&web::Data<Exchange>>,
    checked: &Checked<'_>,
    token: &str,
) -> Result<Option<Arc<Exchanged>>, NoDownstream> {
    let flow = flow.ok_or(NoDownstream::Unavailable)?;
    flow.for_checked(checked, token).await
}

/// The answer for a request whose downstream token cannot be had (fail closed): 503
/// with `Retry-After` when a retry may help, else the token's refusal.
pub fn no_downstream(why: &NoDownstream) -> HttpResponse {
    match why {
        NoDownstream::Unavailable => HttpResponse::ServiceUnavailable()
            .insert_header((header::RETRY_AFTER, "5"))
            .finish(),
        NoDownstream::Refused(denial) => refusal(denial),
    }
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
    let Some(flow) = req.app_data::<web::Data<Access>>().cloned() else {
        return Ok(req
            .into_response(HttpResponse::InternalServerError().finish())
            .map_into_right_body());
    };
    let peer = req.peer_addr().map(|a| a.ip());
    let checked = match flow.resource(request(req.headers(), req.uri(), peer)).await {
        Ok(checked) => checked,
        Err(denial) => return Ok(req.into_response(refusal(&denial)).map_into_right_body()),
    };
    if checked.resource.exchange_audience.is_some() {
        let token = bearer(req.headers()).map(str::to_owned).unwrap_or_default();
        // Fail closed: without a downstream token the client's must not go through.
        let exchanged = match downstream(req.app_data(), &checked, &token).await {
            Ok(exchanged) => exchanged,
            Err(why) => return Ok(req.into_response(no_downstream(&why)).map_into_right_body()),
        };
        let Some(value) = exchanged.and_then(|exchanged| {
            let value = HeaderValue::from_str(&format!("Bearer {}", exchanged.access_token));
            Some((value.ok()?, exchanged))
        }) else {
            let why = NoDownstream::Unavailable;
            return Ok(req.into_response(no_downstream(&why)).map_into_right_body());
        };
        req.headers_mut().insert(header::AUTHORIZATION, value.0);
        req.extensions_mut().insert(Downstream(value.1));
    }
    req.extensions_mut()
        .insert(Principal::clone(&checked.principal));
    let budget = checked.budget.clone();
    let mut response = next.call(req).await?;
    budget_headers(response.headers_mut(), budget.as_ref());
    Ok(response.map_into_left_body())
}
