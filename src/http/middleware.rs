//! Middleware applied to every request: a request id and tracing span, metrics and an
//! access-log line, and the body-size guard.

use std::time::Instant;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::web::Bytes;
use actix_web::{Error, ResponseError, web};
use tracing::Instrument;
use tracing::field::Empty;

use super::error::ApiError;
use super::form::FormLimit;
use crate::telemetry::metrics::Metrics;
use crate::telemetry::propagation::Propagation;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Gives the request an id (a well-formed incoming `X-Request-Id` from the proxy in
/// front is kept, so logs correlate across hops; otherwise the broker's own replaces
/// it in the request, where the gateway reads what it sends on), runs it inside a span
/// carrying that id so every log line it causes names it, and records metrics and an
/// access log. The path is logged without its query string: queries can carry codes
/// and state. With tracing on, the span is the OpenTelemetry server span, its parent
/// the caller's `traceparent`.
pub async fn observe(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let started = Instant::now();
    let incoming = incoming_request_id(&req);
    let generated = incoming.is_none();
    let id = incoming.unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let method = method_label(req.method());
    let route = req
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let metrics = req.app_data::<web::Data<Metrics>>().cloned();
    let propagation = req
        .app_data::<web::Data<Propagation>>()
        .map_or(Propagation::OFF, |p| *p.get_ref());
    let span = if propagation.enabled() {
        let span = tracing::info_span!(
            "request",
            request_id = %id,
            method,
            route = %route,
            otel.name = %format_args!("{method} {route}"),
            otel.kind = "server",
            otel.status_code = Empty,
            http.request.method = method,
            http.route = %route,
            http.response.status_code = Empty,
        );
        propagation.adopt(&span, req.headers());
        span
    } else {
        tracing::info_span!("request", request_id = %id, method, route = %route)
    };
    // The span holds its own copy of the id; the header takes the string itself.
    let id = HeaderValue::from_maybe_shared(Bytes::from(id)).ok();
    if generated && let Some(id) = &id {
        req.headers_mut().insert(REQUEST_ID, id.clone());
    }

    let result = next.call(req).instrument(span.clone()).await;
    let status = match &result {
        Ok(response) => response.status(),
        Err(error) => error.as_response_error().status_code(),
    };
    if propagation.enabled() {
        span.record("http.response.status_code", status.as_u16());
        if status.is_server_error() {
            span.record("otel.status_code", "error");
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    if let Some(metrics) = metrics {
        metrics.observe_request(method, &route, status.as_u16(), seconds);
    }
    span.in_scope(|| {
        tracing::info!(
            status = status.as_u16(),
            elapsed_ms = seconds * 1000.0,
            "request completed"
        );
    });

    let mut response = result?;
    if let Some(id) = id {
        response.headers_mut().insert(REQUEST_ID, id);
    }
    Ok(response)
}

fn incoming_request_id(req: &ServiceRequest) -> Option<String> {
    let value = req.headers().get(REQUEST_ID)?.to_str().ok()?;
    let well_formed = (1..=64).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    well_formed.then(|| value.to_owned())
}

/// A fixed set of labels, so a client sending made-up methods cannot grow the metrics.
fn method_label(method: &actix_web::http::Method) -> &'static str {
    match method.as_str() {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        "PATCH" => "PATCH",
        _ => "other",
    }
}

/// Refuses a body whose declared length exceeds `server.max_body_bytes` before any
/// handler runs. Bodies without a length (chunked) are bounded by the extractors,
/// which are configured with the same limit.
pub async fn limit_body(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    let limit = req.app_data::<FormLimit>().map(|limit| limit.0);
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let (Some(limit), Some(declared)) = (limit, declared)
        && declared > limit as u64
    {
        let response = ApiError::PayloadTooLarge { limit }.error_response();
        return Ok(req.into_response(response).map_into_right_body());
    }
    Ok(next.call(req).await?.map_into_left_body())
}
