//! One route per `[[gateway]]` path (its servers, one per resource: `servers`): POST (JSON-RPC messages), GET (the server's event
//! stream), DELETE (the session's end); other methods 405. The request's protocol
//! revision (`version`) decides what holds: from 2026-07-28 POST only and no sessions;
//! before it, sessions bound to their opener (`sessions`).

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::web::{self, Bytes, BytesMut, ServiceConfig};
use actix_web::{HttpRequest, HttpResponse};
use futures_util::StreamExt;
use serde_json::Value;

use super::GatewayError;
use super::access::{self, Authorized, Intent};
use super::filter::Lists;
use super::jsonrpc::{self, INVALID_REQUEST, Invalid, Message, SERVER_ERROR};
use super::proxy::{Outbound, Upstream};
use super::servers::Servers;
use super::sessions::{self, Owner, Presented, SessionBinder};
use super::version::{self, Version};
use crate::config::{GatewayConfig, IdentityHeaders};
use crate::flows::access::Access;
use crate::telemetry::upstream::UpstreamCalls;

const MCP_METHOD: HeaderName = HeaderName::from_static("mcp-method");
const MCP_NAME: HeaderName = HeaderName::from_static("mcp-name");

/// The largest request body read (`server.max_body_bytes`).
#[derive(Clone, Copy)]
struct BodyLimit(usize);

/// The gateway routes, mounted by the composition root beside the HTTP API's. Called
/// once per worker, so each worker has its own client and connection pool (actix
/// workers are single-threaded runtimes). `session_key` signs session ids (derived
/// from the consent cookie key under [`super::SESSION_KEY_LABEL`]); the access flow is
/// expected among the application's data.
pub fn routes(
    gateways: &[GatewayConfig],
    identity: &IdentityHeaders,
    session_key: aws_lc_rs::hmac::Key,
    max_body_bytes: usize,
    calls: &UpstreamCalls,
) -> impl FnOnce(&mut ServiceConfig) + use<> {
    // One route per path, in configuration order, with every entry at that path.
    let mut paths: Vec<&str> = Vec::new();
    for gateway in gateways {
        if !paths.contains(&gateway.path.as_str()) {
            paths.push(&gateway.path);
        }
    }
    let routes: Vec<(String, Servers)> = paths
        .into_iter()
        .map(|path| {
            let entries = gateways.iter().filter(|g| g.path == path);
            (path.to_owned(), Servers::new(entries, identity, calls))
        })
        .collect();
    let binder = web::Data::new(SessionBinder::new(session_key));
    let limit = web::Data::new(BodyLimit(max_body_bytes));
    move |cfg: &mut ServiceConfig| {
        for (path, servers) in routes {
            cfg.service(
                web::resource(path)
                    .app_data(web::Data::new(servers))
                    .app_data(binder.clone())
                    .app_data(limit.clone())
                    .route(web::post().to(post))
                    .route(web::get().to(get))
                    .route(web::delete().to(delete))
                    .default_service(web::to(not_allowed)),
            );
        }
    }
}

async fn post(
    access: web::Data<Access>,
    servers: web::Data<Servers>,
    binder: web::Data<SessionBinder>,
    limit: web::Data<BodyLimit>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    // The address first: a refused one's body is never read.
    if let Err(refused) = access::screen(&access, &req) {
        return refused.response(&Value::Null);
    }
    let body = match read_body(payload, limit.0).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let (version, messages) = match read_messages(&req, &body) {
        Ok(read) => read,
        Err(invalid) => return invalid.response(),
    };
    let id = jsonrpc::answer_id(&messages);
    let authorized = match access::authorize(&access, &req, Intent::Messages(&messages)).await {
        Ok(authorized) => authorized,
        Err(refused) => return refused.response(&id),
    };
    let upstream = match servers.of(authorized.resource) {
        Ok(upstream) => upstream,
        Err(unserved) => return unserved.response(&id),
    };
    let lists = tool_lists(&messages);
    let visible = authorized.viewer(&access);
    let exchange = Exchange {
        req: &req,
        version: &version,
        authorized: &authorized,
        binder: &binder,
    };
    let Some(outbound) = exchange.outbound(http::Method::POST, Some(body)) else {
        return sessions::not_found(&id);
    };
    let result = upstream
        .forward(outbound, &authorized, lists, visible)
        .await;
    exchange.answer(upstream, result, &id)
}

/// The body's messages and the revision they speak: the headers must agree with the
/// body, so what is authorized is what is sent on.
fn read_messages(req: &HttpRequest, body: &Bytes) -> Result<(Version, Vec<Message>), Invalid> {
    // An unreadable header can match nothing.
    let header = |name: &HeaderName| req.headers().get(name).map(|v| v.to_str().unwrap_or("\0"));
    let version = version::of(req.headers())?;
    let messages = jsonrpc::parse(body)?;
    jsonrpc::check_headers(&messages, header(&MCP_METHOD), header(&MCP_NAME))?;
    version.check_body(&messages)?;
    Ok((version, messages))
}

/// The ids of the body's `tools/list` requests, whose answers are filtered.
fn tool_lists(messages: &[Message]) -> Option<Lists> {
    let ids: Vec<Value> = messages
        .iter()
        .filter(|m| m.lists_tools())
        .filter_map(|m| m.id.clone())
        .collect();
    (!ids.is_empty()).then_some(Lists::Ids(ids))
}

/// GET: the server's event stream (2025-03-26 to 2025-11-25), which may replay earlier
/// answers (tool lists too) on resumption, so any tool list in it is filtered.
async fn get(
    access: web::Data<Access>,
    servers: web::Data<Servers>,
    binder: web::Data<SessionBinder>,
    req: HttpRequest,
) -> HttpResponse {
    stream(access, servers, binder, req, http::Method::GET).await
}

/// DELETE: the end of a session (2025-03-26 to 2025-11-25).
async fn delete(
    access: web::Data<Access>,
    servers: web::Data<Servers>,
    binder: web::Data<SessionBinder>,
    req: HttpRequest,
) -> HttpResponse {
    stream(access, servers, binder, req, http::Method::DELETE).await
}

/// GET or DELETE: 405 for a revision without sessions (before anything else: nothing
/// of it reaches the MCP server); else the caller's own session only.
async fn stream(
    access: web::Data<Access>,
    servers: web::Data<Servers>,
    binder: web::Data<SessionBinder>,
    req: HttpRequest,
    method: http::Method,
) -> HttpResponse {
    let version = match version::of(req.headers()) {
        Ok(version) if version.stateless => return post_only(),
        Ok(version) => version,
        Err(invalid) => return invalid.response(),
    };
    let authorized = match access::authorize(&access, &req, Intent::Stream).await {
        Ok(authorized) => authorized,
        Err(refused) => return refused.response(&Value::Null),
    };
    let upstream = match servers.of(authorized.resource) {
        Ok(upstream) => upstream,
        Err(unserved) => return unserved.response(&Value::Null),
    };
    let exchange = Exchange {
        req: &req,
        version: &version,
        authorized: &authorized,
        binder: &binder,
    };
    // A stream may replay tool lists; a session's end answers none.
    let lists = (method == http::Method::GET).then_some(Lists::Any);
    let Some(outbound) = exchange.outbound(method, None) else {
        return sessions::not_found(&Value::Null);
    };
    let visible = authorized.viewer(&access);
    let result = upstream
        .forward(outbound, &authorized, lists, visible)
        .await;
    exchange.answer(upstream, result, &Value::Null)
}

/// One request on its way through: who sends it, in which revision, and the session
/// binding that applies both ways.
struct Exchange<'r> {
    req: &'r HttpRequest,
    version: &'r Version,
    authorized: &'r Authorized<'r>,
    binder: &'r SessionBinder,
}

impl Exchange<'_> {
    fn owner(&self) -> Owner<'_> {
        Owner {
            resource: &self.authorized.resource.uri,
            path: self.req.path(),
            principal: self.authorized.principal.as_deref(),
        }
    }

    /// The request for the MCP server; `None` when it presents a session that is not
    /// the caller's.
    fn outbound(&self, method: http::Method, body: Option<Bytes>) -> Option<Outbound<'_>> {
        let stateless = self.version.stateless;
        let session = match self
            .binder
            .presented(self.req.headers(), &self.owner(), stateless)
        {
            Presented::None => None,
            Presented::Bound(id) => Some(id),
            Presented::Refused => return None,
        };
        Some(Outbound {
            method,
            headers: self.req.headers(),
            query: self.req.uri().query(),
            body,
            session,
            resume: !stateless,
        })
    }

    /// The MCP server's answer with its session id bound to the caller (or dropped),
    /// or a JSON-RPC error saying it failed.
    fn answer(
        &self,
        upstream: &Upstream,
        result: Result<HttpResponse, GatewayError>,
        id: &Value,
    ) -> HttpResponse {
        let mut response = answer(upstream, result, id);
        self.binder
            .answer(&mut response, &self.owner(), self.version.stateless);
        access::budget_headers(response.headers_mut(), self.authorized.budget.as_ref());
        response
    }
}

/// The MCP server's answer, or a JSON-RPC error saying it failed (details logged).
fn answer(
    upstream: &Upstream,
    result: Result<HttpResponse, GatewayError>,
    id: &Value,
) -> HttpResponse {
    let error = match result {
        Ok(response) => return response,
        Err(error) => error,
    };
    tracing::warn!(%error, upstream = %upstream.url(), "gateway request failed");
    let (status, message) = match error {
        GatewayError::Timeout(_) => (
            StatusCode::GATEWAY_TIMEOUT,
            "the MCP server did not answer in time",
        ),
        GatewayError::Unreachable(_) => {
            (StatusCode::BAD_GATEWAY, "the MCP server cannot be reached")
        }
        GatewayError::TooLarge(_) | GatewayError::Unfilterable(_) => (
            StatusCode::BAD_GATEWAY,
            "the MCP server's answer cannot be passed on",
        ),
    };
    jsonrpc::error_response(status, id, SERVER_ERROR, message)
}

/// The body, at most `limit` bytes (a declared length past it was refused earlier by
/// the body-size guard; this bounds chunked bodies).
async fn read_body(mut payload: web::Payload, limit: usize) -> Result<Bytes, HttpResponse> {
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let Ok(chunk) = chunk else {
            let message = "the request body could not be read";
            return Err(refuse(StatusCode::BAD_REQUEST, message.to_owned()));
        };
        if body.len() + chunk.len() > limit {
            let message = format!("the request body is larger than {limit} bytes");
            return Err(refuse(StatusCode::PAYLOAD_TOO_LARGE, message));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

fn refuse(status: StatusCode, message: String) -> HttpResponse {
    jsonrpc::error_response(status, &Value::Null, INVALID_REQUEST, &message)
}

async fn not_allowed() -> HttpResponse {
    let mut response = refuse(
        StatusCode::METHOD_NOT_ALLOWED,
        "use POST, GET or DELETE".to_owned(),
    );
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET, POST, DELETE"));
    response
}

/// 2026-07-28 and later: the MCP endpoint takes POST only (no GET stream, no
/// sessions to DELETE).
fn post_only() -> HttpResponse {
    let mut response = refuse(
        StatusCode::METHOD_NOT_ALLOWED,
        "this protocol version takes POST only".to_owned(),
    );
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("POST"));
    response
}
