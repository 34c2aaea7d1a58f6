//! The demo's tools: their list, and what a call does (whoami, echo, notes, health).

use std::sync::{Mutex, OnceLock};

use serde_json::{Map, Value, json};

use super::Caller;
use super::rpc::{RpcError, invalid_params};

pub(super) fn tools() -> Value {
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
pub(super) fn call_tool(
    params: &Map<String, Value>,
    caller: Option<&Caller>,
) -> Result<Value, RpcError> {
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
