//! The dev IdP's route table, the extractor settings that turn bad input into its
//! JSON errors, and its one observing middleware (an access log line per request, and
//! the `traceparent` each request carried, kept for `/_dev/traceparents`).

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{Error, HttpResponse, web};

use super::error::{self, IdpError};
use super::params::BODY_LIMIT;
use super::{authorize, control, discovery, register, resource, token};

/// Body limits and error handlers for the extractors the endpoints use.
pub fn extractor_configs(cfg: &mut web::ServiceConfig) {
    cfg.app_data(
        web::JsonConfig::default()
            .limit(BODY_LIMIT)
            .error_handler(error::json_error),
    )
    .app_data(web::QueryConfig::default().error_handler(error::query_error))
    .app_data(web::PathConfig::default().error_handler(error::path_error))
    .app_data(web::PayloadConfig::new(BODY_LIMIT));
}

pub async fn not_found() -> Result<HttpResponse, IdpError> {
    Err(IdpError::refused(StatusCode::NOT_FOUND, "no such endpoint"))
}

async fn method_not_allowed() -> Result<HttpResponse, IdpError> {
    Err(IdpError::refused(
        StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed",
    ))
}

/// One log line per request: method, path without its query (queries carry codes and
/// state), status and time taken.
pub async fn log(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let started = Instant::now();
    let method = req.method().to_string();
    let path = req.path().to_owned();
    if let (Some(idp), Some(traceparent)) = (
        req.app_data::<web::Data<super::idp::Idp>>(),
        req.headers()
            .get("traceparent")
            .and_then(|v| v.to_str().ok()),
    ) {
        idp.faults.record_traceparent(&path, traceparent);
    }
    let result = next.call(req).await;
    let status = match &result {
        Ok(response) => response.status(),
        Err(error) => error.as_response_error().status_code(),
    };
    tracing::info!(
        method,
        path,
        status = status.as_u16(),
        elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
        "dev IdP request"
    );
    result
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    let not_allowed = || web::to(method_not_allowed);
    cfg.service(
        web::resource("/.well-known/openid-configuration")
            .get(discovery::discovery)
            .default_service(not_allowed()),
    )
    .service(
        web::resource("/.well-known/oauth-authorization-server")
            .get(discovery::discovery)
            .default_service(not_allowed()),
    )
    .service(
        web::resource("/jwks")
            .get(discovery::jwks)
            .default_service(not_allowed()),
    )
    .service(
        web::resource("/authorize")
            .get(authorize::authorize)
            .default_service(not_allowed()),
    )
    .service(
        web::resource("/token")
            .post(token::token)
            .default_service(not_allowed()),
    )
    .service(
        web::resource("/register")
            .post(register::register)
            .default_service(not_allowed()),
    )
    .service(
        web::resource("/register/{client_id}")
            .get(register::read)
            .delete(register::delete)
            .default_service(not_allowed()),
    )
    .service(
        web::resource("/introspect")
            .post(resource::introspect)
            .default_service(not_allowed()),
    )
    .service(
        web::resource("/revoke")
            .post(resource::revoke)
            .default_service(not_allowed()),
    )
    .service(
        web::resource("/userinfo")
            .get(resource::userinfo)
            .post(resource::userinfo)
            .default_service(not_allowed()),
    )
    .service(
        web::scope("/_dev")
            .route("/calls", web::get().to(control::calls))
            .route("/traceparents", web::get().to(control::traceparents))
            .route("/faults", web::post().to(control::add_fault))
            .route("/down", web::post().to(control::down))
            .route("/up", web::post().to(control::up))
            .route("/exchange", web::post().to(control::exchange))
            .route("/keys/rotate", web::post().to(control::rotate))
            .route("/clock", web::post().to(control::clock))
            .route("/groups", web::post().to(control::groups))
            .route("/userinfo", web::post().to(control::userinfo))
            .route("/reset", web::post().to(control::reset)),
    );
}
