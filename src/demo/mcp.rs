//! The demo's example MCP server: Streamable HTTP, stateless, plain JSON responses.
//!
//! One endpoint serves both protocol eras ("dual-era", MCP 2026-07-28 basic/versioning).
//! Legacy clients (2025-03-26 to 2025-11-25) open with `initialize`; modern clients
//! (2026-07-28) put the version in every request's `_meta` and mirror version, method and
//! tool name into headers. Nothing survives a request, so no `Mcp-Session-Id` is issued
//! or required and there is no GET stream. The caller's identity comes only from the
//! [`Principal`] that the broker's protection middleware attached: this module never
//! sees a token, so it cannot get verification wrong.

use std::sync::{Mutex, OnceLock};

use actix_web::http::{StatusCode, header};
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Map, Value, json};

use crate::tokens::Principal;

/// Versions a legacy client can negotiate with `initialize`.
const LEGACY_VERSIONS: [&str; 3] = ["2025-03-26", "2025-06-18", "2025-11-25"];
/// Versions declared per request in `_meta`; `initialize` never offers these, because a
/// modern client has no handshake and a legacy one could not speak them.
const MODERN_VERSIONS: [&str; 1] = ["2026-07-28"];
/// Offered by `initialize` when the client asks for a version it cannot have.
const LATEST_LEGACY: &str = "2025-11-25";
const VERSION_KEY: &str = "io.modelcontextprotocol/protocolVersion";
/// How long clients may cache `tools/list` and `server/discover` (2026-07-28
/// `CacheableResult.ttlMs`); the tool set only changes with a new build.
const LIST_TTL_MS: u64 = 300_000;
const INSTRUCTIONS: &str = "Demo tools behind token-broker: `whoami` shows the verified caller, \
                            `echo` repeats a message, `notes_read` and `notes_write` read and add \
                            notes, `health` answers anyone.";

/// JSON-RPC 2.0 §5.1 codes, then MCP's (2026-07-28 basic, "Error Codes").
const PARSE_ERROR: i64 = -32700;
const INVALID_REQUEST: i64 = -32600;
const METHOD_NOT_FOUND: i64 = -32601;
const INVALID_PARAMS: i64 = -32602;
const TRANSPORT_ERROR: i64 = -32000;
const HEADER_MISMATCH: i64 = -32020;
const UNSUPPORTED_VERSION: i64 = -32022;

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
    })
}

/// A JSON-RPC error and the HTTP status it travels with. Deliberately not an `ApiError`:
/// MCP clients parse a JSON-RPC body here, not RFC 6749 JSON. Errors answering a
/// well-formed legacy request travel in a 200, as 2025-era clients expect.
#[derive(Debug)]
struct RpcError {
    status: StatusCode,
    code: i64,
    message: String,
    /// JSON-RPC `error.data`; `Null` leaves it out.
    data: Value,
}

fn fail(status: StatusCode, code: i64, message: impl Into<String>) -> RpcError {
    let (message, data) = (message.into(), Value::Null);
    RpcError {
        status,
        code,
        message,
        data,
    }
}

/// 2026-07-28 `UnsupportedProtocolVersionError`: lists what we speak so a modern client
/// can retry; a legacy client just sees the 400 its revision requires.
fn unsupported(requested: &str) -> RpcError {
    let supported: Vec<&str> = MODERN_VERSIONS
        .iter()
        .chain(&LEGACY_VERSIONS)
        .copied()
        .collect();
    let message = "Unsupported protocol version";
    let error = bad(UNSUPPORTED_VERSION, message);
    RpcError {
        data: json!({ "supported": supported, "requested": requested }),
        ..error
    }
}

/// A well-formed `tools/call` that names no known tool; travels in a 200, as legacy
/// clients expect JSON-RPC errors about a readable request to.
fn invalid_params(message: String) -> RpcError {
    fail(StatusCode::OK, INVALID_PARAMS, message)
}

fn bad(code: i64, message: impl Into<String>) -> RpcError {
    fail(StatusCode::BAD_REQUEST, code, message)
}

fn mismatch(header: &str) -> RpcError {
    let message = format!("Header mismatch: {header} does not match the body");
    bad(HEADER_MISMATCH, message)
}

/// One JSON-RPC request (`id` present) or notification from the client.
struct Message {
    id: Option<Value>,
    method: String,
    params: Map<String, Value>,
}

/// The request headers that mirror body fields (2026-07-28 "Request Metadata").
struct Mirrored<'a> {
    version: Option<&'a str>,
    method: Option<&'a str>,
    name: Option<&'a str>,
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

/// Reads one JSON-RPC message. Batches were removed in 2025-06-18 and stateless
/// serving has no use for them, so an array is an invalid request, as is anything
/// that is not a request or notification (responses only answer server requests,
/// which this server never sends).
fn parse(body: &[u8]) -> Result<Message, RpcError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|_| bad(PARSE_ERROR, "Parse error: invalid JSON"))?;
    let invalid = |why: &str| bad(INVALID_REQUEST, format!("Invalid request: {why}"));
    let Value::Object(mut object) = value else {
        return Err(invalid(if value.is_array() {
            "batches are not supported"
        } else {
            "not a JSON-RPC object"
        }));
    };
    if object.get("jsonrpc") != Some(&json!("2.0")) {
        return Err(invalid("jsonrpc must be \"2.0\""));
    }
    let Some(Value::String(method)) = object.remove("method") else {
        return Err(invalid("method must be a string"));
    };
    // MCP narrows JSON-RPC: ids are strings or integers, never null.
    let id = object.remove("id");
    if id
        .as_ref()
        .is_some_and(|id| !id.is_string() && !id.is_i64() && !id.is_u64())
    {
        return Err(invalid("id must be a string or an integer"));
    }
    let params = match object.remove("params") {
        None => Map::new(),
        Some(Value::Object(params)) => params,
        Some(_) => return Err(invalid("params must be an object")),
    };
    Ok(Message { id, method, params })
}

/// Decides the era of one message: `true` for modern (a `_meta` version claim, which
/// must agree with the mirrored headers), `false` for legacy. A client-declared version
/// we do not speak is refused whichever era it names.
fn era(message: &Message, mirrored: &Mirrored) -> Result<bool, RpcError> {
    let claim = message.params.get("_meta").and_then(|m| m.get(VERSION_KEY));
    let Some(claim) = claim else {
        return match mirrored.version {
            Some(v) if MODERN_VERSIONS.contains(&v) && message.id.is_some() => Err(bad(
                INVALID_PARAMS,
                format!("missing _meta \"{VERSION_KEY}\""),
            )),
            Some(v) if MODERN_VERSIONS.contains(&v) => Ok(true),
            Some(v) if !LEGACY_VERSIONS.contains(&v) => Err(unsupported(v)),
            _ => Ok(false),
        };
    };
    let Some(claim) = claim.as_str() else {
        return Err(bad(
            INVALID_PARAMS,
            format!("_meta \"{VERSION_KEY}\" must be a string"),
        ));
    };
    if !MODERN_VERSIONS.contains(&claim) {
        return Err(unsupported(claim));
    }
    // A gateway may have routed on these headers: acting on a body that says otherwise
    // would let the two disagree about what was authorized (2026-07-28 "Server Validation").
    if mirrored.version != Some(claim) {
        return Err(mismatch("MCP-Protocol-Version"));
    }
    if mirrored.method != Some(message.method.as_str()) {
        return Err(mismatch("Mcp-Method"));
    }
    if message.method == "tools/call" {
        let body_name = message.params.get("name").and_then(Value::as_str);
        if mirrored.name.and_then(decode_header_value).as_deref() != body_name {
            return Err(mismatch("Mcp-Name"));
        }
    }
    Ok(true)
}

/// Undoes the `=?base64?...?=` sentinel clients use for values that are not plain
/// header-safe ASCII; `None` when the encoding is broken.
fn decode_header_value(value: &str) -> Option<String> {
    let sentinel = value
        .strip_prefix("=?base64?")
        .and_then(|v| v.strip_suffix("?="));
    let Some(encoded) = sentinel else {
        return Some(value.to_owned());
    };
    String::from_utf8(STANDARD.decode(encoded).ok()?).ok()
}

fn dispatch(message: &Message, modern: bool, caller: Option<&Caller>) -> Result<Value, RpcError> {
    match message.method.as_str() {
        // The modern era has no handshake; there `initialize` is just an unknown method.
        "initialize" if !modern => {
            let asked = message
                .params
                .get("protocolVersion")
                .and_then(Value::as_str);
            let asked = asked.unwrap_or_default();
            let version = if LEGACY_VERSIONS.contains(&asked) {
                asked
            } else {
                LATEST_LEGACY
            };
            Ok(json!({
                "protocolVersion": version,
                "capabilities": capabilities(),
                "serverInfo": server_info(),
                "instructions": INSTRUCTIONS,
            }))
        }
        "server/discover" => Ok(json!({
            "supportedVersions": MODERN_VERSIONS,
            "capabilities": capabilities(),
            "instructions": INSTRUCTIONS,
            "ttlMs": LIST_TTL_MS,
            "cacheScope": "public",
        })),
        "ping" => Ok(json!({})),
        // The list is the same for every caller, so shared caches may keep it.
        "tools/list" => {
            Ok(json!({ "tools": tools(), "ttlMs": LIST_TTL_MS, "cacheScope": "public" }))
        }
        "tools/call" => call_tool(&message.params, caller),
        other => {
            // 2026-07-28 wants 404 so clients can tell "no such method" from "no such
            // endpoint"; legacy clients expect the error in a 200.
            let status = if modern {
                StatusCode::NOT_FOUND
            } else {
                StatusCode::OK
            };
            Err(fail(
                status,
                METHOD_NOT_FOUND,
                format!("Method not found: {other}"),
            ))
        }
    }
}

fn capabilities() -> Value {
    json!({ "tools": { "listChanged": false } })
}

fn server_info() -> Value {
    json!({ "name": "token-broker-demo", "title": "token-broker demo", "version": env!("CARGO_PKG_VERSION") })
}

fn tools() -> Value {
    let caller = json!({
        "type": "object",
        "properties": {
            "subject": { "type": "string" },
            "scope": { "type": "string", "description": "granted scopes, space-separated" },
            "scopes": { "type": "array", "items": { "type": "string" } },
            "client_id": { "type": ["string", "null"] },
            "received_token": {
                "type": "object",
                "description": "issuer and audience of the token this server received (the downstream token when the broker exchanged the client's)",
                "properties": {
                    "issuer": { "type": ["string", "null"] },
                    "audience": { "type": ["string", "array", "null"] },
                },
            },
        },
        "required": ["subject", "scope", "scopes", "client_id", "received_token"],
    });
    json!([
        {
            "name": "whoami",
            "title": "Who am I",
            "description": "Shows the caller as the broker verified it (subject, scopes, client id) and the audience of the token this server received.",
            "inputSchema": { "type": "object", "properties": {}, "additionalProperties": false },
            "outputSchema": caller,
            "annotations": { "readOnlyHint": true, "openWorldHint": false },
        },
        {
            "name": "echo",
            "title": "Echo",
            "description": "Returns the given message unchanged.",
            "inputSchema": {
                "type": "object",
                "properties": { "message": { "type": "string", "description": "text to repeat" } },
                "required": ["message"],
            },
            "annotations": { "readOnlyHint": true, "openWorldHint": false },
        },
        {
            "name": "notes_read",
            "title": "Read notes",
            "description": "Lists the notes (the broker asks for notes:read).",
            "inputSchema": { "type": "object", "properties": {}, "additionalProperties": false },
            "annotations": { "readOnlyHint": true, "openWorldHint": false },
        },
        {
            "name": "notes_write",
            "title": "Write a note",
            "description": "Adds a note (the broker asks for notes:write).",
            "inputSchema": {
                "type": "object",
                "properties": { "text": { "type": "string", "description": "the note" } },
                "required": ["text"],
            },
            "annotations": { "readOnlyHint": false, "destructiveHint": false, "openWorldHint": false },
        },
        {
            "name": "health",
            "title": "Health",
            "description": "Says the server is up (public: no token needed).",
            "inputSchema": { "type": "object", "properties": {}, "additionalProperties": false },
            "annotations": { "readOnlyHint": true, "openWorldHint": false },
        },
    ])
}

/// Bad arguments are a tool result with `isError` (so a model can read and fix them);
/// only an unknown tool or a malformed call is a protocol error (MCP tools, "Error Handling").
fn call_tool(params: &Map<String, Value>, caller: Option<&Caller>) -> Result<Value, RpcError> {
    let name = params.get("name").and_then(Value::as_str);
    let name = name.ok_or_else(|| invalid_params("tools/call needs a string `name`".into()))?;
    let arguments = params.get("arguments");
    match name {
        "whoami" => Ok(whoami(caller)),
        "echo" => Ok(match arguments.and_then(|a| a.get("message")) {
            Some(Value::String(text)) => json!({ "content": [text_block(text)], "isError": false }),
            _ => tool_error("echo needs a string argument `message`"),
        }),
        "notes_read" => Ok(notes_read()),
        "notes_write" => Ok(match arguments.and_then(|a| a.get("text")) {
            Some(Value::String(text)) if !text.trim().is_empty() => notes_write(text),
            _ => tool_error("notes_write needs a non-empty string argument `text`"),
        }),
        "health" => Ok(json!({ "content": [text_block("ok")], "isError": false })),
        other => Err(invalid_params(format!("unknown tool: {other}"))),
    }
}

/// The demo's notes: in memory, shared by every caller, bounded.
fn notes() -> &'static Mutex<Vec<String>> {
    static NOTES: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    NOTES.get_or_init(|| Mutex::new(vec!["Welcome to the token-broker demo.".to_owned()]))
}

const MAX_NOTES: usize = 100;
const MAX_NOTE_CHARS: usize = 1_000;

fn notes_read() -> Value {
    let list = notes().lock().map(|n| n.clone()).unwrap_or_default();
    json!({ "content": [text_block(&list.join("\n"))], "structuredContent": { "notes": list }, "isError": false })
}

fn notes_write(text: &str) -> Value {
    if text.chars().count() > MAX_NOTE_CHARS {
        return tool_error("a note holds at most 1000 characters");
    }
    let Ok(mut list) = notes().lock() else {
        return tool_error("the notes are unavailable");
    };
    if list.len() >= MAX_NOTES {
        list.remove(0);
    }
    list.push(text.to_owned());
    json!({ "content": [text_block("noted")], "isError": false })
}

/// The verified caller, and what this server itself received as its token.
struct Caller {
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

fn whoami(caller: Option<&Caller>) -> Value {
    // Mounted without the broker's protection there is no one to describe; saying so
    // beats inventing an anonymous caller.
    let Some(caller) = caller else {
        return tool_error("no verified caller");
    };
    let who = json!({
        "subject": caller.principal.subject,
        "scope": caller.principal.scopes.to_string(),
        "scopes": caller.principal.scopes.iter().collect::<Vec<_>>(),
        "client_id": caller.principal.client_id,
        "received_token": caller.received,
    });
    let text = serde_json::to_string_pretty(&who).unwrap_or_default();
    json!({ "content": [text_block(&text)], "structuredContent": who, "isError": false })
}

fn tool_error(text: &str) -> Value {
    json!({ "content": [text_block(text)], "isError": true })
}

fn text_block(text: &str) -> Value {
    json!({ "type": "text", "text": text })
}
