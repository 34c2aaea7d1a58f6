//! The demo's example MCP server: Streamable HTTP, stateless, plain JSON responses.
//!
//! One endpoint serves both protocol eras ("dual-era", MCP 2026-07-28 basic/versioning).
//! Legacy clients (2025-03-26 to 2025-11-25) open with `initialize`; modern clients
//! (2026-07-28) put the version in every request's `_meta` and mirror version, method and
//! tool name into headers. Nothing survives a request, so no `Mcp-Session-Id` is issued
//! or required and there is no GET stream. The caller's identity comes only from the
//! [`Principal`] that the broker's protection middleware attached: this module never
//! sees a token, so it cannot get verification wrong.

mod rpc;
mod tools;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::tokens::Principal;
use rpc::{Mirrored, RpcError, TRANSPORT_ERROR, dispatch, era, fail, parse, server_info};

/// Registers the MCP endpoint at `path`: POST carries JSON-RPC; every other method
/// (GET, DELETE, ...) is 405 with `Allow: POST`, since a stateless server has neither a
/// server-to-client stream nor a session to delete.
pub fn configure(cfg: &mut web::ServiceConfig, path: &str) {
    cfg.service(
        web::resource(path)
            .route(web::post().to(post))
            .default_service(web::to(not_allowed)),
    );
}

/// Marks a server that sits behind the broker's gateway on loopback and takes the
/// caller from the `X-Auth-*` headers the gateway sets (and strips from clients).
#[derive(Clone, Copy)]
pub struct BehindGateway;

/// The example MCP server on its own listener, for the broker's gateway to front.
pub fn serve_behind_gateway(
    listener: std::net::TcpListener,
) -> std::io::Result<actix_web::dev::Server> {
    Ok(actix_web::HttpServer::new(|| {
        actix_web::App::new()
            .app_data(web::Data::new(BehindGateway))
            .configure(|cfg| configure(cfg, "/mcp"))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)?
    .run())
}

/// The caller as the gateway described it, when this server trusts it.
fn from_gateway(req: &HttpRequest) -> Option<Principal> {
    req.app_data::<web::Data<BehindGateway>>()?;
    let subject = header_str(req, "x-auth-subject").filter(|s| !s.is_empty())?;
    let scopes = header_str(req, "x-auth-scopes").unwrap_or_default();
    Some(Principal {
        subject: subject.to_owned(),
        scopes: crate::domain::scope::Scopes::parse(scopes).unwrap_or_default(),
        client_id: header_str(req, "x-auth-client-id")
            .filter(|c| !c.is_empty())
            .map(str::to_owned),
        kind: crate::tokens::CredentialKind::UpstreamJwt,
        expires_at: None,
        grant_id: None,
        tools: None,
        identity: None,
    })
}

/// POST: one JSON-RPC message in; a JSON result, a JSON-RPC error, or 202 out.
async fn post(req: HttpRequest, body: web::Bytes) -> HttpResponse {
    match answer(&req, &body) {
        // Notifications need no answer, and this server has no state for them to change.
        Ok(None) => HttpResponse::Accepted().finish(),
        Ok(Some((id, result))) => {
            HttpResponse::Ok().json(json!({ "jsonrpc": "2.0", "id": id, "result": result }))
        }
        Err((id, error)) => error_response(id, error),
    }
}

/// The result for a request, `None` for a notification, or the error with the id to
/// answer it under (`null` when the message has none or could not be read).
fn answer(req: &HttpRequest, body: &[u8]) -> Result<Option<(Value, Value)>, (Value, RpcError)> {
    let unread = |error| (Value::Null, error);
    let refuse = |status, message: &str| Err(unread(fail(status, TRANSPORT_ERROR, message)));
    if !req.content_type().eq_ignore_ascii_case("application/json") {
        return refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type must be application/json",
        );
    }
    // Plain JSON is the one form we answer in; clients also list text/event-stream.
    let accept = header_str(req, header::ACCEPT.as_str()).unwrap_or_default();
    if !accept.contains("application/json") && !accept.contains("*/*") {
        return refuse(
            StatusCode::NOT_ACCEPTABLE,
            "Accept must include application/json",
        );
    }
    let message = parse(body).map_err(unread)?;
    let mirrored = Mirrored {
        version: header_str(req, "mcp-protocol-version"),
        method: header_str(req, "mcp-method"),
        name: header_str(req, "mcp-name"),
    };
    let id = message.id.clone();
    let modern = era(&message, &mirrored).map_err(|e| (id.clone().unwrap_or_default(), e))?;
    let Some(id) = id else {
        return Ok(None);
    };
    let principal = req
        .extensions()
        .get::<Principal>()
        .cloned()
        .or_else(|| from_gateway(req));
    let caller = principal.map(|principal| Caller {
        principal,
        received: received_token(req),
    });
    let mut result = dispatch(&message, modern, caller.as_ref()).map_err(|e| (id.clone(), e))?;
    if modern {
        result["resultType"] = json!("complete");
        result["_meta"] = json!({ "io.modelcontextprotocol/serverInfo": server_info() });
    }
    Ok(Some((id, result)))
}

async fn not_allowed() -> HttpResponse {
    let message = "Method not allowed; POST JSON-RPC messages";
    let error = fail(StatusCode::METHOD_NOT_ALLOWED, TRANSPORT_ERROR, message);
    let mut response = error_response(Value::Null, error);
    let allow = header::HeaderValue::from_static("POST");
    response.headers_mut().insert(header::ALLOW, allow);
    response
}

fn header_str<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

fn error_response(id: Value, error: RpcError) -> HttpResponse {
    tracing::debug!(code = error.code, message = %error.message, "mcp request refused");
    let mut body = json!({ "code": error.code, "message": error.message });
    if !error.data.is_null() {
        body["data"] = error.data;
    }
    HttpResponse::build(error.status).json(json!({ "jsonrpc": "2.0", "id": id, "error": body }))
}

/// The verified caller, and what this server itself received as its token.
pub(super) struct Caller {
    principal: Principal,
    received: Value,
}

/// The issuer and audience of the bearer token this server received: with an
/// `exchange_audience` on its resource, the downstream token the broker put in place of
/// the client's. Read, not verified — the broker verified what it let through.
fn received_token(req: &HttpRequest) -> Value {
    let claims = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .and_then(|token| token.split('.').nth(1))
        .and_then(|payload| URL_SAFE_NO_PAD.decode(payload).ok())
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        .unwrap_or(Value::Null);
    json!({ "issuer": claims.get("iss"), "audience": claims.get("aud") })
}
