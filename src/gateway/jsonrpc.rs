//! The JSON-RPC 2.0 side of the gateway: a POSTed body read as one message or a batch,
//! each message's method and (for `tools/call`) tool name, and the error bodies MCP
//! clients expect (JSON-RPC 2.0 §5.1).

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use serde_json::{Value, json};

/// JSON-RPC 2.0 §5.1: the body is not JSON.
pub const PARSE_ERROR: i64 = -32700;
/// JSON-RPC 2.0 §5.1: JSON, but not a request object (or a batch of them).
pub const INVALID_REQUEST: i64 = -32600;
/// JSON-RPC 2.0 §5.1: a `tools/call` without a string `name`.
pub const INVALID_PARAMS: i64 = -32602;
/// JSON-RPC 2.0 §5.1 implementation-defined server error: the MCP server behind the
/// gateway failed.
pub const SERVER_ERROR: i64 = -32000;
/// MCP 2026-07-28 "Server Validation": the `Mcp-Method` / `Mcp-Name` headers say
/// something other than the body.
pub const HEADER_MISMATCH: i64 = -32020;
/// Implementation-defined (JSON-RPC 2.0 §5.1's server-error range): the request is
/// over a rate-limit budget; the 429's `Retry-After` says when to try again.
pub const RATE_LIMITED: i64 = -32029;
/// Implementation-defined (JSON-RPC 2.0 §5.1's server-error range): the client
/// address may not reach this MCP server (`[resources.addresses]`), answered in a 403.
pub const ADDRESS_REFUSED: i64 = -32003;
/// Implementation-defined (the range MCP leaves to implementations, the code the
/// reference SDKs answer with): the `Mcp-Session-Id` names no session of this caller.
pub const SESSION_NOT_FOUND: i64 = -32001;

/// One message of a POSTed body, as far as authorization cares.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// `id`: present on requests (and on responses the client sends back).
    pub id: Option<Value>,
    /// `method`: absent on a response to a server request.
    pub method: Option<String>,
    /// `params.name` of a `tools/call`.
    pub tool: Option<String>,
    /// `params._meta["io.modelcontextprotocol/protocolVersion"]` (2026-07-28: every
    /// request states its version); a value that is not a string reads as `""`, which
    /// no header matches.
    pub protocol_version: Option<String>,
}

impl Message {
    /// A `tools/list` request (with an id, so an answer will come).
    pub fn lists_tools(&self) -> bool {
        self.method.as_deref() == Some("tools/list") && self.id.is_some()
    }
}

/// A refused body: the status and JSON-RPC error to answer with.
#[derive(Debug, Clone, PartialEq)]
pub struct Invalid {
    pub code: i64,
    pub message: String,
    /// The id to answer under, when the one message has a readable one.
    pub id: Value,
}

/// Reads a POSTed body: one message or a non-empty batch. Anything else — not JSON,
/// not an object, a message without `"jsonrpc": "2.0"`, a method that is not a
/// string, an id that is neither string nor number, a `tools/call` without a string
/// `name` — refuses the whole body, so what is authorized is exactly what is sent on.
pub fn parse(body: &[u8]) -> Result<Vec<Message>, Invalid> {
    let value: Value = serde_json::from_slice(body).map_err(|_| Invalid {
        code: PARSE_ERROR,
        message: "Parse error: the body is not JSON".to_owned(),
        id: Value::Null,
    })?;
    match value {
        Value::Array(items) if items.is_empty() => {
            Err(invalid(Value::Null, "an empty batch".to_owned()))
        }
        Value::Array(items) => items
            .iter()
            .map(message)
            .collect::<Result<_, _>>()
            // In a batch no one id answers for the whole.
            .map_err(|e| Invalid {
                id: Value::Null,
                ..e
            }),
        other => Ok(vec![message(&other)?]),
    }
}

fn message(value: &Value) -> Result<Message, Invalid> {
    let Value::Object(object) = value else {
        return Err(invalid(
            Value::Null,
            "a message must be a JSON object".to_owned(),
        ));
    };
    let id = match object.get("id") {
        None => None,
        Some(id @ (Value::String(_) | Value::Number(_))) => Some(id.clone()),
        Some(_) => {
            return Err(invalid(
                Value::Null,
                "id must be a string or a number".to_owned(),
            ));
        }
    };
    let answer_id = id.clone().unwrap_or_default();
    if object.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(invalid(answer_id, "jsonrpc must be \"2.0\"".to_owned()));
    }
    let method = match object.get("method") {
        Some(Value::String(method)) => Some(method.clone()),
        None if object.contains_key("result") || object.contains_key("error") => None,
        _ => {
            return Err(invalid(
                answer_id,
                "a request needs a string method".to_owned(),
            ));
        }
    };
    let tool = match method.as_deref() {
        Some("tools/call") => {
            let name = object
                .get("params")
                .and_then(|p| p.get("name"))
                .and_then(Value::as_str);
            let Some(name) = name else {
                return Err(Invalid {
                    code: INVALID_PARAMS,
                    message: "Invalid params: tools/call needs a string name".to_owned(),
                    id: answer_id,
                });
            };
            Some(name.to_owned())
        }
        _ => None,
    };
    let protocol_version = object
        .get("params")
        .and_then(|p| p.get("_meta"))
        .and_then(|m| m.get(PROTOCOL_VERSION_META))
        .map(|v| v.as_str().unwrap_or_default().to_owned());
    Ok(Message {
        id,
        method,
        tool,
        protocol_version,
    })
}

/// Where a 2026-07-28 request states its protocol version in the body.
const PROTOCOL_VERSION_META: &str = "io.modelcontextprotocol/protocolVersion";

/// The transport's `Mcp-Method` / `Mcp-Name` headers, when sent, must describe the one
/// message: the gateway authorizes the body and passes the headers on, so an MCP
/// server acting on the headers must not be told about a different call.
pub fn check_headers(
    messages: &[Message],
    method: Option<&str>,
    name: Option<&str>,
) -> Result<(), Invalid> {
    if method.is_none() && name.is_none() {
        return Ok(());
    }
    let mismatch = |header: &str| Invalid {
        code: HEADER_MISMATCH,
        message: format!("Header mismatch: {header} does not match the body"),
        id: answer_id(messages),
    };
    let [message] = messages else {
        return Err(mismatch("Mcp-Method"));
    };
    if method.is_some_and(|m| Some(m) != message.method.as_deref()) {
        return Err(mismatch("Mcp-Method"));
    }
    if let (Some(name), Some(tool)) = (name, message.tool.as_deref())
        && decode_header_value(name).as_deref() != Some(tool)
    {
        return Err(mismatch("Mcp-Name"));
    }
    Ok(())
}

/// Undoes the `=?base64?…?=` form clients use for values that are not plain header
/// text; `None` when that encoding is broken.
fn decode_header_value(value: &str) -> Option<String> {
    use base64::Engine;
    let encoded = value
        .strip_prefix("=?base64?")
        .and_then(|v| v.strip_suffix("?="));
    let Some(encoded) = encoded else {
        return Some(value.to_owned());
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    String::from_utf8(bytes).ok()
}

fn invalid(id: Value, why: String) -> Invalid {
    Invalid {
        code: INVALID_REQUEST,
        message: format!("Invalid request: {why}"),
        id,
    }
}

/// A JSON-RPC error response body.
pub fn error_body(id: &Value, code: i64, message: &str) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "error": { "code": code, "message": message } })
}

/// A JSON-RPC error in an HTTP response with `status`.
pub fn error_response(status: StatusCode, id: &Value, code: i64, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(error_body(id, code, message))
}

impl Invalid {
    /// 400 with the error, as the Streamable HTTP transport answers unreadable input.
    pub fn response(&self) -> HttpResponse {
        error_response(StatusCode::BAD_REQUEST, &self.id, self.code, &self.message)
    }
}

/// The id to answer a failure of the whole request under: the one message's id,
/// `null` for a batch.
pub fn answer_id(messages: &[Message]) -> Value {
    match messages {
        [one] => one.id.clone().unwrap_or_default(),
        _ => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(body: &str) -> i64 {
        parse(body.as_bytes()).unwrap_err().code
    }

    #[test]
    fn single_messages_and_batches_are_read() {
        let one = parse(
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_note"}}"#,
        )
        .unwrap();
        assert_eq!(
            one,
            [Message {
                id: Some(json!(1)),
                method: Some("tools/call".to_owned()),
                tool: Some("get_note".to_owned()),
                protocol_version: None,
            }]
        );
        let batch = parse(
            br#"[{"jsonrpc":"2.0","id":"a","method":"tools/list"},
                 {"jsonrpc":"2.0","method":"notifications/initialized"},
                 {"jsonrpc":"2.0","id":7,"result":{}}]"#,
        )
        .unwrap();
        assert_eq!(batch.len(), 3);
        assert!(batch[0].lists_tools());
        assert_eq!(batch[1].id, None);
        assert_eq!(batch[2].method, None);
        assert_eq!(answer_id(&batch), Value::Null);
        assert_eq!(answer_id(&one), json!(1));
    }

    #[test]
    fn bad_bodies_get_their_json_rpc_codes() {
        for body in ["", "{", "nul", "\u{0}", "[1,"] {
            assert_eq!(codes(body), PARSE_ERROR, "{body:?}");
        }
        for body in [
            "[]",
            "1",
            "\"x\"",
            "null",
            "[1]",
            r#"{"id":1,"method":"ping"}"#,
            r#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":7}"#,
            r#"{"jsonrpc":"2.0","id":{},"method":"ping"}"#,
            r#"{"jsonrpc":"2.0","id":1}"#,
            r#"[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0"}]"#,
        ] {
            assert_eq!(codes(body), INVALID_REQUEST, "{body}");
        }
        for body in [
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":3}}"#,
        ] {
            assert_eq!(codes(body), INVALID_PARAMS, "{body}");
        }
        // The one message's id is kept for the answer; a batch answers under null.
        let single = parse(br#"{"jsonrpc":"1.0","id":"x","method":"ping"}"#).unwrap_err();
        assert_eq!(single.id, json!("x"));
        let batch = parse(br#"[{"jsonrpc":"1.0","id":"x","method":"ping"}]"#).unwrap_err();
        assert_eq!(batch.id, Value::Null);
    }

    #[test]
    fn transport_headers_must_agree_with_the_body() {
        let one = parse(
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"notes_write"}}"#,
        )
        .unwrap();
        assert!(check_headers(&one, None, None).is_ok());
        assert!(check_headers(&one, Some("tools/call"), Some("notes_write")).is_ok());
        // "notes_write" in the encoded form.
        assert!(
            check_headers(
                &one,
                Some("tools/call"),
                Some("=?base64?bm90ZXNfd3JpdGU=?=")
            )
            .is_ok()
        );
        for (method, name) in [
            (Some("tools/list"), None),
            (Some("tools/call"), Some("health")),
            (None, Some("=?base64?!!?=")),
        ] {
            let refused = check_headers(&one, method, name).unwrap_err();
            assert_eq!(
                (refused.code, refused.id.clone()),
                (HEADER_MISMATCH, json!(1))
            );
        }
        let batch = parse(br#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#).unwrap();
        assert!(check_headers(&batch, None, None).is_ok());
        assert!(check_headers(&[batch[0].clone(), batch[0].clone()], Some("ping"), None).is_err());
    }

    #[test]
    fn deeply_nested_input_is_refused_not_a_crash() {
        let deep = "[".repeat(100_000);
        assert_eq!(codes(&deep), PARSE_ERROR);
    }

    #[test]
    fn error_bodies_are_json_rpc() {
        assert_eq!(
            error_body(&json!(3), PARSE_ERROR, "Parse error"),
            json!({"jsonrpc":"2.0","id":3,"error":{"code":-32700,"message":"Parse error"}})
        );
    }
}
