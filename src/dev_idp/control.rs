//! The fault gate in front of every IdP endpoint, and the control API under `/_dev/`
//! that tests (and curious developers) use to set knobs, read counters, rotate keys
//! and move the IdP's clock.

use std::time::Duration;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{Error, HttpResponse, ResponseError, web};
use serde::Deserialize;
use serde_json::json;

use super::error::IdpError;
use super::faults::{FaultSpec, Verdict};
use super::idp::Idp;
use super::keys::SigningAlg;
use super::records::UserinfoAnswer;

/// Which counted endpoint a path belongs to; `None` for the control API and 404s.
fn endpoint_of(path: &str) -> Option<&'static str> {
    Some(match path {
        "/.well-known/openid-configuration" | "/.well-known/oauth-authorization-server" => {
            "discovery"
        }
        "/jwks" => "jwks",
        "/authorize" => "authorize",
        "/token" => "token",
        "/introspect" => "introspect",
        "/revoke" => "revoke",
        "/userinfo" => "userinfo",
        p if p == "/register" || p.starts_with("/register/") => "register",
        _ => return None,
    })
}

/// Counts the call, then serves it, delays it, or answers with the injected fault.
pub async fn gate(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    let verdict = match (endpoint_of(req.path()), req.app_data::<web::Data<Idp>>()) {
        (Some(endpoint), Some(idp)) => idp.faults.gate(endpoint),
        _ => Verdict::Serve { delay: None },
    };
    let failure = match verdict {
        Verdict::Serve { delay } => {
            if let Some(delay) = delay {
                actix_web::rt::time::sleep(delay).await;
            }
            return Ok(next.call(req).await?.map_into_left_body());
        }
        Verdict::Down => IdpError::Unavailable {
            description: "the provider is down".to_owned(),
            retry_after: None,
        },
        Verdict::Fail {
            status: 429,
            retry_after,
        } => IdpError::RateLimited { retry_after },
        Verdict::Fail { retry_after, .. } => IdpError::Unavailable {
            description: "the provider is overloaded".to_owned(),
            retry_after,
        },
    };
    Ok(req
        .into_response(failure.error_response())
        .map_into_right_body())
}

pub async fn calls(idp: web::Data<Idp>) -> HttpResponse {
    HttpResponse::Ok().json(json!({ "calls": idp.faults.calls() }))
}

/// The `traceparent` headers each path received (`Faults::record_traceparent`).
pub async fn traceparents(idp: web::Data<Idp>) -> HttpResponse {
    HttpResponse::Ok().json(json!({ "traceparents": idp.faults.traceparents() }))
}

pub async fn add_fault(
    idp: web::Data<Idp>,
    spec: web::Json<FaultSpec>,
) -> Result<HttpResponse, IdpError> {
    idp.faults.set(&spec).map_err(IdpError::invalid_request)?;
    Ok(HttpResponse::NoContent().finish())
}

pub async fn down(idp: web::Data<Idp>) -> HttpResponse {
    idp.faults.set_down(true);
    HttpResponse::NoContent().finish()
}

pub async fn up(idp: web::Data<Idp>) -> HttpResponse {
    idp.faults.set_down(false);
    HttpResponse::NoContent().finish()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExchangeKnob {
    refuse: bool,
    /// The `error` code refused exchanges get (default `unauthorized_client`).
    error: Option<String>,
}

pub async fn exchange(idp: web::Data<Idp>, knob: web::Json<ExchangeKnob>) -> HttpResponse {
    let knob = knob.into_inner();
    idp.faults.set_refuse_exchange(knob.refuse.then(|| {
        knob.error
            .unwrap_or_else(|| "unauthorized_client".to_owned())
    }));
    HttpResponse::NoContent().finish()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rotate {
    alg: Option<String>,
}

pub async fn rotate(idp: web::Data<Idp>, body: web::Bytes) -> Result<HttpResponse, IdpError> {
    // A bare `curl -X POST .../_dev/keys/rotate` rotates with the configured algorithm.
    let body: Rotate = if body.is_empty() {
        Rotate { alg: None }
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| IdpError::invalid_request(format!("the JSON body is invalid: {e}")))?
    };
    let alg = body
        .alg
        .as_deref()
        .map(SigningAlg::parse)
        .transpose()
        .map_err(IdpError::invalid_request)?;
    let kid = idp
        .keys
        .rotate(alg, idp.clock.unix())
        .map_err(|e| IdpError::Internal(e.to_string()))?;
    Ok(HttpResponse::Ok().json(json!({ "kid": kid })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Advance {
    advance_secs: u64,
}

pub async fn clock(idp: web::Data<Idp>, body: web::Json<Advance>) -> HttpResponse {
    idp.clock.advance(Duration::from_secs(body.advance_secs));
    HttpResponse::Ok().json(json!({ "now": idp.clock.unix() }))
}

/// `POST /_dev/groups`: a user's groups from now on (what the next ID token says,
/// at a login or a refresh).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Groups {
    sub: String,
    groups: Vec<String>,
}

pub async fn groups(
    idp: web::Data<Idp>,
    body: web::Json<Groups>,
) -> Result<HttpResponse, IdpError> {
    let Groups { sub, groups } = body.into_inner();
    idp.store()?.groups.insert(sub, groups);
    Ok(HttpResponse::NoContent().finish())
}

/// `POST /_dev/userinfo`: what userinfo answers for `sub` from now on — groups its
/// ID tokens do not state, or another `sub`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Userinfo {
    sub: String,
    groups: Option<Vec<String>>,
    answer_sub: Option<String>,
}

pub async fn userinfo(
    idp: web::Data<Idp>,
    body: web::Json<Userinfo>,
) -> Result<HttpResponse, IdpError> {
    let Userinfo {
        sub,
        groups,
        answer_sub,
    } = body.into_inner();
    let answer = UserinfoAnswer { groups, answer_sub };
    idp.store()?.userinfo.insert(sub, answer);
    Ok(HttpResponse::NoContent().finish())
}

pub async fn reset(idp: web::Data<Idp>) -> HttpResponse {
    idp.faults.reset();
    HttpResponse::NoContent().finish()
}
