//! Per-tool authorization at the broker's edge (`/auth/verify` with the MCP transport's
//! `Mcp-Method` / `Mcp-Name` headers, and the gateway with the JSON-RPC body): public
//! tools without a token (on a resource that opted in), per-tool scopes with a step-up
//! challenge, allow-lists.
//!
//! Forward-auth trusts the headers only from a client of the revision that requires the
//! server to refuse a request whose headers and body disagree (2026-07-28); the gateway
//! reads the body itself. A POST whose headers are missing, doubled or from an older
//! revision could be any call, so it must satisfy the strictest rule (MCP 2026-07-28,
//! Streamable HTTP, "Server Validation": an intermediary enforcing policy on the
//! headers should not trust them from an older or unnamed version).

use actix_web::http::StatusCode;
use actix_web::http::header::HeaderMap;

use super::protect::{Denial, challenge};
use crate::config::ResourceConfig;
use crate::domain::protocol_version;
use crate::domain::scope::Scopes;
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

/// What forward-auth can tell of the JSON-RPC message behind a request.
#[derive(Debug, Clone, Copy)]
pub enum Forwarded<'a> {
    /// The headers stand for the body (or the request carries none: GET or DELETE).
    Described(McpCall<'a>),
    /// A POST (or a request of unknown method) whose headers cannot stand for its body;
    /// why, for the refusal's description. It could be any call.
    Unseen(&'static str),
}

impl<'a> Forwarded<'a> {
    /// `call` as read from `headers`; `may_carry_message` unless the original method
    /// is known to be one without a JSON-RPC message.
    pub fn read(headers: &HeaderMap, call: McpCall<'a>, may_carry_message: bool) -> Self {
        if !may_carry_message {
            return Self::Described(call);
        }
        match unreliable(headers) {
            Some(why) => Self::Unseen(why),
            None => Self::Described(call),
        }
    }
}

/// Why the transport's headers cannot stand for the body, if they cannot.
fn unreliable(headers: &HeaderMap) -> Option<&'static str> {
    let once = |name: &str| {
        let mut values = headers.get_all(name);
        match (values.next(), values.next()) {
            (Some(value), None) => Ok(value.to_str().ok()),
            (None, _) => Ok(None),
            (Some(_), Some(_)) => Err(()),
        }
    };
    let (Ok(version), Ok(method), Ok(_)) = (
        once("mcp-protocol-version"),
        once("mcp-method"),
        once("mcp-name"),
    ) else {
        return Some("the request carried an MCP header more than once");
    };
    if method.is_none() {
        return Some("the request carried no Mcp-Method");
    }
    match version {
        None => Some("the request carried no MCP-Protocol-Version"),
        Some(version) if !protocol_version::at_least_2026_07_28(version) => Some(
            "the request's MCP-Protocol-Version predates checked Mcp-Method headers (2026-07-28)",
        ),
        Some(_) => None,
    }
}

/// Every scope the request needs of `resource`, for its challenges (401 and 403 alike),
/// so that one authorization covers the operation (MCP 2026-07-28, "Scope Challenge
/// Handling"): the resource's own, the tool's for a described `tools/call`, and every
/// rule's for a request that could be any call.
pub fn needed(resource: &ResourceConfig, forwarded: &Forwarded<'_>) -> Scopes {
    match forwarded {
        Forwarded::Described(call) => match call.tool() {
            Some(tool) => resource.tools.needed(&resource.required_scopes, tool),
            None => resource.required_scopes.clone(),
        },
        Forwarded::Unseen(_) => resource.tools.strictest(&resource.required_scopes),
    }
}

/// The tool rules for a verified caller at forward-auth: a described call as
/// [`check_call`] judges it; one that cannot be seen only if the caller could make any.
pub fn check_forwarded(
    state: &AppState,
    resource: &ResourceConfig,
    principal: &Principal,
    forwarded: &Forwarded<'_>,
) -> Result<(), Denial> {
    let why = match forwarded {
        Forwarded::Described(call) => return check_call(state, resource, principal, *call),
        Forwarded::Unseen(why) => *why,
    };
    let label = "(unseen)";
    match resource
        .tools
        .any_call(&resource.required_scopes, caller(principal))
    {
        ToolDecision::Allowed => Ok(()),
        ToolDecision::MissingScopes { needed, missing } => Err(step_up(
            state,
            resource,
            label,
            &needed,
            &missing,
            Some(why),
        )),
        ToolDecision::NotAllowed | ToolDecision::Unauthenticated => {
            state.metrics.tool_denial(label, "access_denied");
            tracing::info!(why, resource = %resource.uri, "request refused: its call cannot be seen and this caller may not call every tool");
            Err(access_denied(
                resource,
                &format!("{why}, and this client may not call every tool"),
            ))
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
        ToolDecision::MissingScopes { needed, missing } => Err(step_up(
            state,
            resource,
            resource.tools.label(tool),
            &needed,
            &missing,
            None,
        )),
        ToolDecision::NotAllowed => Err(denied(state, resource, tool, "not in the allow-list")),
        // A verified caller is never unauthenticated.
        ToolDecision::Unauthenticated => Err(denied(state, resource, tool, "no caller")),
    }
}

/// [`check_call`] for the messages of one body (a batch), judged together: refused
/// outright if one is outside an allow-list, else a step-up naming what all of them
/// need, so one authorization covers the batch (MCP 2026-07-28, "Scope Challenge
/// Handling").
pub fn check_calls<'c>(
    state: &AppState,
    resource: &ResourceConfig,
    principal: &Principal,
    calls: impl Iterator<Item = McpCall<'c>> + Clone,
) -> Result<(), Denial> {
    let mut step_up = None;
    for call in calls.clone() {
        match check_call(state, resource, principal, call) {
            Ok(()) => {}
            Err(denial) if denial.reason == "insufficient_scope" => {
                step_up.get_or_insert(denial);
            }
            Err(denial) => return Err(denial),
        }
    }
    let Some(mut denial) = step_up else {
        return Ok(());
    };
    let needed = calls.fold(resource.required_scopes.clone(), |all, call| {
        all.union(&needed(resource, &Forwarded::Described(call)))
    });
    let description = format!("missing scope: {}", needed.missing_from(&principal.scopes));
    denial.challenge = Some(challenge(
        resource,
        Some("insufficient_scope"),
        &needed,
        Some(&description),
    ));
    Err(denial)
}

/// 403 `insufficient_scope` for a call the caller lacks `missing` of `needed` for;
/// `why` prefixes the description when the call could not be seen.
fn step_up(
    state: &AppState,
    resource: &ResourceConfig,
    label: &str,
    needed: &Scopes,
    missing: &Scopes,
    why: Option<&str>,
) -> Denial {
    state.metrics.tool_denial(label, "insufficient_scope");
    tracing::info!(rule = label, %missing, why, resource = %resource.uri, "tool call refused: insufficient scope");
    // `scope` names what the call needs (RFC 6750 §3.1); the description names what
    // was missing. Clients union it with what they hold (MCP 2026-07-28), and one that
    // replaces its scopes still keeps the resource's own.
    let description = match why {
        Some(why) => format!("{why}; missing scope: {missing}"),
        None => format!("missing scope: {missing}"),
    };
    Denial {
        status: StatusCode::FORBIDDEN,
        challenge: Some(challenge(
            resource,
            Some("insufficient_scope"),
            needed,
            Some(&description),
        )),
        reason: "insufficient_scope",
        description: None,
    }
}

fn denied(state: &AppState, resource: &ResourceConfig, tool: &str, why: &str) -> Denial {
    let label = resource.tools.label(tool);
    state.metrics.tool_denial(label, "access_denied");
    tracing::info!(tool, rule = label, why, resource = %resource.uri, "tool call refused");
    access_denied(resource, "this client may not call this tool")
}

/// 403 `access_denied`: no step-up helps, so no `scope`.
fn access_denied(resource: &ResourceConfig, description: &str) -> Denial {
    Denial {
        status: StatusCode::FORBIDDEN,
        challenge: Some(format!(
            "Bearer error=\"access_denied\", error_description=\"{description}\", resource_metadata=\"{}\"",
            super::protect::metadata_url(resource)
        )),
        reason: "access_denied",
        description: None,
    }
}
