//! JSON-RPC 2.0 as MCP narrows it: reading one message, deciding its protocol era
//! from `_meta` and the mirrored headers, and answering the methods that need no tool.

use actix_web::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

use super::Caller;
use super::tools::{call_tool, tools};

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
pub(super) const TRANSPORT_ERROR: i64 = -32000;
const HEADER_MISMATCH: i64 = -32020;
const UNSUPPORTED_VERSION: i64 = -32022;

/// A JSON-RPC error and the HTTP status it travels with. Deliberately not an `ApiError`:
/// MCP clients parse a JSON-RPC body here, not RFC 6749 JSON. Errors answering a
/// well-formed legacy request travel in a 200, as 2025-era clients expect.
#[derive(Debug)]
pub(super) struct RpcError {
    pub(super) status: StatusCode,
    pub(super) code: i64,
    pub(super) message: String,
    /// JSON-RPC `error.data`; `Null` leaves it out.
    pub(super) data: Value,
}

pub(super) fn fail(status: StatusCode, code: i64, message: impl Into<String>) -> RpcError {
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
pub(super) fn invalid_params(message: String) -> RpcError {
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
pub(super) struct Message {
    pub(super) id: Option<Value>,
    pub(super) method: String,
    pub(super) params: Map<String, Value>,
}

/// The request headers that mirror body fields (2026-07-28 "Request Metadata").
pub(super) struct Mirrored<'a> {
    pub(super) version: Option<&'a str>,
    pub(super) method: Option<&'a str>,
    pub(super) name: Option<&'a str>,
}

/// Reads one JSON-RPC message. Batches were removed in 2025-06-18 and stateless
/// serving has no use for them, so an array is an invalid request, as is anything
/// that is not a request or notification (responses only answer server requests,
/// which this server never sends).
pub(super) fn parse(body: &[u8]) -> Result<Message, RpcError> {
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
pub(super) fn era(message: &Message, mirrored: &Mirrored) -> Result<bool, RpcError> {
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

pub(super) fn dispatch(
    message: &Message,
    modern: bool,
    caller: Option<&Caller>,
) -> Result<Value, RpcError> {
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

pub(super) fn server_info() -> Value {
    json!({ "name": "token-broker-demo", "title": "token-broker demo", "version": env!("CARGO_PKG_VERSION") })
}
