//! Per-tool authorization at the broker's edge (`/auth/verify` with the MCP transport's
//! `Mcp-Method` / `Mcp-Name` headers, and the gateway with the JSON-RPC body): public
//! tools without a token (on a resource that opted in), per-tool scopes with a step-up
//! challenge, allow-lists.
//!
//! Forward-auth trusts the headers, so the MCP server must refuse a request whose
//! headers and body disagree (the 2026-07-28 transport requires it); the gateway reads
//! the body itself.

use actix_web::http::StatusCode;
use actix_web::http::header::HeaderMap;

use super::protect::{Denial, challenge};
use crate::config::ResourceConfig;
use crate::domain::tool_policy::{Caller, ToolDecision, anonymous_method};
use crate::server::AppState;
use crate::tokens::Principal;

/// The MCP request as the transport's headers describe it.
#[derive(Debug, Clone, Copy, Default)]
pub struct McpCall<'a> {
    pub method: Option<&'a str>,
    /// The tool, for `tools/call`.
    pub name: Option<&'a str>,
}

impl<'a> McpCall<'a> {
    /// The call the headers describe. `Mcp-Name` may be base64 in the transport's
    /// `=?base64?…?=` form (names that are not plain ASCII); it is decoded into
    /// `scratch` so the rules see the name the server will act on. A name that does not
    /// decode becomes empty, which no rule allows.
    pub fn from_headers(headers: &'a HeaderMap, scratch: &'a mut String) -> Self {
        let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let name = get("mcp-name").map(|raw| match decode_header_value(raw) {
            Decoded::Plain => raw,
            Decoded::Encoded(text) => {
                *scratch = text;
                scratch.as_str()
            }
            Decoded::Invalid => "",
        });
        Self {
            method: get("mcp-method"),
            name,
        }
    }

    fn tool(&self) -> Option<&'a str> {
        match self.method {
            Some("tools/call") => self.name,
            _ => None,
        }
    }
}

enum Decoded {
    Plain,
    Encoded(String),
    Invalid,
}

/// MCP 2026-07-28 header values: plain, or `=?base64?<standard base64 of UTF-8>?=`.
fn decode_header_value(value: &str) -> Decoded {
    use base64::Engine;
    let Some(encoded) = value
        .strip_prefix("=?base64?")
        .and_then(|v| v.strip_suffix("?="))
    else {
        return Decoded::Plain;
    };
    base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .map_or(Decoded::Invalid, Decoded::Encoded)
}

/// The caller's side of the policy.
pub fn caller(principal: &Principal) -> Caller<'_> {
    Caller {
        scopes: &principal.scopes,
        client_id: principal.client_id.as_deref(),
        tools: principal.tools.as_deref(),
    }
}

/// Whether a request without a token may pass: the resource lets tokenless requests
/// in (`anonymous = "public-tools"`, with public tools) and the call is the handshake,
/// a notification, or a public tool. By default nothing passes: the first request of a
/// connecting client, `initialize`, gets the 401 that starts its one login.
pub fn anonymous_allowed(resource: &ResourceConfig, call: McpCall<'_>) -> bool {
    if !resource.tools.anonymous_open() {
        return false;
    }
    match (call.method, call.tool()) {
        (Some("tools/call"), Some(tool)) => resource.tools.rule(tool).is_some_and(|r| r.public),
        (Some(method), _) => anonymous_method(method),
        (None, _) => false,
    }
}

/// A tokenless `GET` stream or `DELETE` on a resource open to anonymous callers: 405,
/// which MCP clients take as "no stream here" (the transport allows a server to offer
/// none). A 401 would start a login beside the one the client's next POST starts.
pub fn anonymous_stream(state: &AppState) -> Denial {
    state.metrics.auth_failure("anonymous_stream");
    Denial {
        status: StatusCode::METHOD_NOT_ALLOWED,
        challenge: None,
        reason: "anonymous_stream",
        description: None,
    }
}

/// The tool rules for a verified caller: `Ok` for anything but a `tools/call` the
/// policy refuses.
pub fn check_call(
    state: &AppState,
    resource: &ResourceConfig,
    principal: &Principal,
    call: McpCall<'_>,
) -> Result<(), Denial> {
    if call.method == Some("tools/call") && call.name.is_none_or(str::is_empty) {
        return Err(denied(
            state,
            resource,
            "(no name)",
            "tools/call without a valid Mcp-Name",
        ));
    }
    let Some(tool) = call.tool() else {
        return Ok(());
    };
    let decision = resource
        .tools
        .call(&resource.required_scopes, tool, Some(caller(principal)));
    match decision {
        ToolDecision::Allowed => Ok(()),
        ToolDecision::MissingScopes { needed, missing } => {
            let label = resource.tools.label(tool);
            state.metrics.tool_denial(label, "insufficient_scope");
            tracing::info!(tool, rule = label, %missing, resource = %resource.uri, "tool call refused: insufficient scope");
            // `scope` names what the call needs (RFC 6750 §3.1); the description
            // names what was missing. Clients union it with what they hold (MCP
            // 2026-07-28), and one that replaces its scopes still keeps the
            // resource's own.
            let description = format!("missing scope: {missing}");
            Err(Denial {
                status: StatusCode::FORBIDDEN,
                challenge: Some(challenge(
                    resource,
                    Some("insufficient_scope"),
                    &needed,
                    Some(&description),
                )),
                reason: "insufficient_scope",
                description: None,
            })
        }
        ToolDecision::NotAllowed => Err(denied(state, resource, tool, "not in the allow-list")),
        // A verified caller is never unauthenticated.
        ToolDecision::Unauthenticated => Err(denied(state, resource, tool, "no caller")),
    }
}

fn denied(state: &AppState, resource: &ResourceConfig, tool: &str, why: &str) -> Denial {
    let label = resource.tools.label(tool);
    state.metrics.tool_denial(label, "access_denied");
    tracing::info!(tool, rule = label, why, resource = %resource.uri, "tool call refused");
    Denial {
        status: StatusCode::FORBIDDEN,
        challenge: Some(format!(
            "Bearer error=\"access_denied\", error_description=\"this client may not call this tool\", resource_metadata=\"{}\"",
            super::protect::metadata_url(resource)
        )),
        reason: "access_denied",
        description: None,
    }
}
