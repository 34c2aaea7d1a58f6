//! Floors for the CPU targets of `benches/scale.sh` (issue #22): each case's request
//! handled with the least work that still does what the case cannot do without, so
//! that its CPU per request, beside `/healthz`'s, says whether a target is within reach
//! of any handler on this machine and this HTTP stack, or only of a cheaper check.
//!
//! NOT part of the broker. `benches/floor.sh` copies this file into a scratch worktree
//! as `src/http/floor.rs`, mounts [`routes`] beside `/healthz` and builds that copy;
//! the broker itself never serves these routes. Nothing here checks anything: a
//! "verified" token is any token seen before, the exchange's answer is a fixed one.
//!
//! - `GET /floor/verify`: the bearer token's SHA-256 (as the verified-token cache's
//!   key) looked up in a per-worker map, and the six `X-Auth-*` headers of a 200 from
//!   values built once: the part of any forward-auth answer for a cached token that
//!   comes before its checks (the original URI, the resource, the token's times).
//! - `GET /floor/verify-token`: the same keyed by the token itself (no digest).
//! - `POST /floor/exchange`: the form read by the broker's own extractor, Basic
//!   credentials read and the secret's digest compared, the subject token's digest
//!   looked up, and an answer carrying a 517-byte token from a buffer built once.
//! - `POST /floor/hop`: the body read and sent to `TOKEN_BROKER_FLOOR_UPSTREAM` over
//!   hyper-util's pooled client (the gateway's), the answer read and sent back.
//! - `POST /floor/gateway`: `/floor/verify`'s lookup, then `/floor/hop`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::LazyLock;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::web::{self, Bytes, BytesMut, ServiceConfig};
use actix_web::{HttpRequest, HttpResponse};
use futures_util::StreamExt;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::domain::digest::sha256;

type Headers = Rc<[(HeaderName, HeaderValue)]>;

/// The exchange caller's secret of `benches/scale.sh`.
const CALLER_SECRET: &[u8] = b"scale-caller-secret-0123456789";

static UPSTREAM: LazyLock<Option<http::Uri>> = LazyLock::new(|| {
    std::env::var("TOKEN_BROKER_FLOOR_UPSTREAM")
        .ok()
        .and_then(|uri| uri.parse().ok())
});

thread_local! {
    static BY_DIGEST: RefCell<HashMap<[u8; 32], Headers>> = RefCell::new(HashMap::new());
    static BY_TOKEN: RefCell<HashMap<Box<[u8]>, Headers>> = RefCell::new(HashMap::new());
    static ANSWERS: RefCell<HashMap<[u8; 32], Bytes>> = RefCell::new(HashMap::new());
    static CLIENT: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
}

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.route("/floor/verify", web::get().to(verify))
        .route("/floor/verify-token", web::get().to(verify_token))
        .route("/floor/exchange", web::post().to(exchange))
        .route("/floor/hop", web::post().to(hop))
        .route("/floor/gateway", web::post().to(gateway));
}

async fn verify(req: HttpRequest) -> HttpResponse {
    match bearer(&req) {
        Some(token) => granted(&by_digest(token)),
        None => HttpResponse::Unauthorized().finish(),
    }
}

async fn verify_token(req: HttpRequest) -> HttpResponse {
    let Some(token) = bearer(&req) else {
        return HttpResponse::Unauthorized().finish();
    };
    let headers = BY_TOKEN.with(|map| {
        let mut map = map.borrow_mut();
        match map.get(token) {
            Some(headers) => headers.clone(),
            None => map.entry(token.into()).or_insert_with(identity).clone(),
        }
    });
    granted(&headers)
}

async fn exchange(req: HttpRequest, form: super::form::Form) -> HttpResponse {
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok());
    let presented = crate::domain::client_auth::read(authorization, None, None);
    let Some(secret) = presented.as_ref().ok().and_then(|p| p.secret()) else {
        return HttpResponse::Unauthorized().finish();
    };
    if sha256(secret.as_bytes()) != sha256(CALLER_SECRET) {
        return HttpResponse::Unauthorized().finish();
    }
    let params = form.0;
    let read = (
        params.one("grant_type"),
        params.one("subject_token_type"),
        params.one("audience"),
        params.one("subject_token"),
    );
    let (Ok(Some(_)), Ok(Some(_)), Ok(Some(_)), Ok(Some(subject))) = read else {
        return HttpResponse::BadRequest().finish();
    };
    let key = sha256(subject.as_bytes());
    let answer = ANSWERS.with(|map| map.borrow_mut().entry(key).or_insert_with(answer).clone());
    HttpResponse::Ok()
        .content_type("application/json")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(answer)
}

async fn hop(payload: web::Payload) -> HttpResponse {
    let Some(upstream) = UPSTREAM.clone() else {
        return HttpResponse::ServiceUnavailable().body("TOKEN_BROKER_FLOOR_UPSTREAM is not set");
    };
    let body = read(payload).await;
    let request = http::Request::post(upstream)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(body));
    let Ok(request) = request else {
        return HttpResponse::InternalServerError().finish();
    };
    let client = CLIENT.with(Client::clone);
    let Ok(response) = client.request(request).await else {
        return HttpResponse::BadGateway().finish();
    };
    let status =
        StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let Ok(answer) = response.into_body().collect().await else {
        return HttpResponse::BadGateway().finish();
    };
    HttpResponse::build(status)
        .content_type("application/json")
        .body(answer.to_bytes())
}

async fn gateway(req: HttpRequest, payload: web::Payload) -> HttpResponse {
    match bearer(&req) {
        Some(token) => drop(by_digest(token)),
        None => return HttpResponse::Unauthorized().finish(),
    }
    hop(payload).await
}

fn bearer(req: &HttpRequest) -> Option<&[u8]> {
    req.headers()
        .get(header::AUTHORIZATION)?
        .as_bytes()
        .strip_prefix(b"Bearer ")
}

fn by_digest(token: &[u8]) -> Headers {
    let key = sha256(token);
    BY_DIGEST.with(|map| map.borrow_mut().entry(key).or_insert_with(identity).clone())
}

/// The six headers of forward-auth's 200, fixed values of the usual lengths.
fn identity() -> Headers {
    let value = HeaderValue::from_static;
    Rc::new([
        (
            HeaderName::from_static("x-auth-subject"),
            value("scale-machine"),
        ),
        (
            HeaderName::from_static("x-auth-scopes"),
            value("notes:read"),
        ),
        (
            HeaderName::from_static("x-auth-client-id"),
            value("scale-machine"),
        ),
        (HeaderName::from_static("x-auth-email"), value("")),
        (HeaderName::from_static("x-auth-user"), value("")),
        (HeaderName::from_static("x-auth-groups"), value("")),
    ])
}

fn granted(headers: &Headers) -> HttpResponse {
    let mut response = HttpResponse::Ok();
    for (name, value) in headers.iter() {
        response.insert_header((name.clone(), value.clone()));
    }
    response.finish()
}

/// An exchange's answer with a 517-byte token (the EdDSA dev IdP's).
fn answer() -> Bytes {
    let token = "t".repeat(517);
    Bytes::from(format!(
        r#"{{"access_token":"{token}","issued_token_type":"urn:ietf:params:oauth:token-type:access_token","token_type":"Bearer","expires_in":3600,"scope":"notes:read"}}"#
    ))
}

async fn read(mut payload: web::Payload) -> Bytes {
    let mut body = BytesMut::new();
    while let Some(Ok(chunk)) = payload.next().await {
        body.extend_from_slice(&chunk);
    }
    body.freeze()
}
