//! The MCP call behind a request, as far as the broker can tell it: from the
//! transport's `Mcp-Method` / `Mcp-Name` headers at forward-auth, from the JSON-RPC
//! body at the gateway.
//!
//! Forward-auth trusts the headers only from a client of the revision that requires the
//! server to refuse a request whose headers and body disagree (2026-07-28). A POST
//! whose headers are missing, doubled or from an older revision could be any call, so
//! it must satisfy the strictest rule (MCP 2026-07-28, Streamable HTTP, "Server
//! Validation": an intermediary enforcing policy on the headers should not trust them
//! from an older or unnamed version).

use crate::config::ResourceConfig;
use crate::domain::protocol_version;
use crate::domain::scope::Scopes;
use crate::domain::tool_policy::{Caller, ToolPattern};
use crate::tokens::Principal;

/// One MCP request: its method and, for `tools/call`, the tool.
#[derive(Debug, Clone, Copy, Default)]
pub struct McpCall<'a> {
    pub method: Option<&'a str>,
    /// The tool, for `tools/call`.
    pub name: Option<&'a str>,
}

impl<'a> McpCall<'a> {
    /// The call the transport's headers describe. `Mcp-Name` may be base64 in the
    /// transport's `=?base64?…?=` form (names that are not plain ASCII); it is decoded
    /// into `scratch` so the rules see the name the server will act on. A name that
    /// does not decode becomes empty, which no rule allows.
    pub fn from_headers(
        method: Option<&'a str>,
        name: Option<&'a str>,
        scratch: &'a mut String,
    ) -> Self {
        let name = name.map(|raw| match decode_header_value(raw) {
            Decoded::Plain => raw,
            Decoded::Encoded(text) => {
                *scratch = text;
                scratch.as_str()
            }
            Decoded::Invalid => "",
        });
        Self { method, name }
    }

    /// The tool a `tools/call` names.
    pub(super) fn tool(&self) -> Option<&'a str> {
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

/// The original request's method, as forward-auth learns it from the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// A message to the MCP server: the only kind that may pass without a token.
    Post,
    /// `GET` (the server's stream) or `DELETE` (a session's end): no message.
    Stream,
    /// Anything else, or not exactly one method header: nothing passes anonymously.
    Other,
}

/// One of the transport's headers as the request carried it.
#[derive(Debug, Clone, Copy)]
pub enum Header<'a> {
    Absent,
    /// Exactly once: its value, `None` when it is not text.
    Once(Option<&'a str>),
    Repeated,
}

/// The transport's headers that say whether `Mcp-Method` / `Mcp-Name` stand for the
/// body.
#[derive(Debug, Clone, Copy)]
pub struct TransportHeaders<'a> {
    pub protocol_version: Header<'a>,
    pub method: Header<'a>,
    pub name: Header<'a>,
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
    /// `call` as the headers describe it, for a request of `method`; `headers` are read
    /// only for a request that may carry a message.
    pub fn read<'h>(
        call: McpCall<'a>,
        method: Method,
        headers: impl FnOnce() -> TransportHeaders<'h>,
    ) -> Self {
        // Without the body, the headers stand for the call only when the client's
        // revision has the MCP server check them; otherwise it could be any call.
        if method == Method::Stream {
            return Self::Described(call);
        }
        match unreliable(&headers()) {
            Some(why) => Self::Unseen(why),
            None => Self::Described(call),
        }
    }
}

/// Why the transport's headers cannot stand for the body, if they cannot.
fn unreliable(headers: &TransportHeaders<'_>) -> Option<&'static str> {
    fn once(header: Header<'_>) -> Result<Option<&str>, ()> {
        match header {
            Header::Absent => Ok(None),
            Header::Once(value) => Ok(value),
            Header::Repeated => Err(()),
        }
    }
    let (Ok(version), Ok(method), Ok(_)) = (
        once(headers.protocol_version),
        once(headers.method),
        once(headers.name),
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
pub(super) fn needed(resource: &ResourceConfig, forwarded: &Forwarded<'_>) -> Scopes {
    match forwarded {
        Forwarded::Described(call) => match call.tool() {
            Some(tool) => resource.tools.needed(&resource.required_scopes, tool),
            None => resource.required_scopes.clone(),
        },
        Forwarded::Unseen(_) => resource.tools.strictest(&resource.required_scopes),
    }
}

/// How many `tools/call`s of a tool `pattern` covers the request makes, for the
/// pattern's budget: a described call's tool; a call that cannot be seen could be any,
/// so it spends every tool budget once (as it must meet the strictest tool rule).
pub(super) fn uses(forwarded: Forwarded<'_>, pattern: &ToolPattern) -> u32 {
    match forwarded {
        Forwarded::Described(call) => u32::from(call.tool().is_some_and(|t| pattern.matches(t))),
        Forwarded::Unseen(_) => 1,
    }
}

/// [`uses`] over the messages of one body (a batch): each call counts.
pub(super) fn uses_all<'c>(calls: impl Iterator<Item = McpCall<'c>>, pattern: &ToolPattern) -> u32 {
    let hits = calls.filter(|call| call.tool().is_some_and(|t| pattern.matches(t)));
    u32::try_from(hits.count()).unwrap_or(u32::MAX)
}

/// The caller's side of the tool policy.
pub(super) fn caller(principal: &Principal) -> Caller<'_> {
    Caller {
        scopes: &principal.scopes,
        client_id: principal.client_id.as_deref(),
        tools: principal.tools.as_deref(),
    }
}
