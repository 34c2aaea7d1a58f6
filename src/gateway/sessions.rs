//! Sessions of the revisions that have them (2025-03-26 to 2025-11-25), bound to
//! whoever opened them. A session id is not a credential (MCP security best
//! practices: "MCP servers MUST NOT use sessions for authentication", bind session ids
//! to the user), yet an MCP server behind the gateway may look up state by it alone:
//! another caller presenting it could read or inject into the owner's session.
//!
//! So the client never sees the server's session id as it is: the gateway hands out
//! `tag.id`, where the tag is an HMAC over the resource and the gateway path, the caller (subject and
//! client, or anonymous) and the server's id; it hands the server `id` only when the
//! tag verifies for the caller presenting it. Nothing is stored: every replica with
//! the key (the store's, see `LoginCookies::derived_key`) checks the binding, it
//! survives restarts, and a flood of `initialize` requests fills no table. Any other
//! caller, and any id the gateway did not hand out, gets 404, the answer the transport
//! gives for an unknown session (the client then opens a new one).
//!
//! 2026-07-28 and later have no sessions: the header is dropped both ways (the
//! transport's advice: ignore it, neither mint nor echo one).

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

use super::jsonrpc::{self, SESSION_NOT_FOUND};
use crate::config::constant_time_eq;
use crate::tokens::Principal;

/// The transport's session header.
pub const HEADER: HeaderName = HeaderName::from_static("mcp-session-id");
/// What the key is derived for.
pub const KEY_LABEL: &str = "gateway mcp-session binding";
/// Tag bytes kept (128 bits; HMAC truncation per RFC 2104 §5).
const TAG_BYTES: usize = 16;

/// Binds session ids to callers with a key shared by the replicas.
pub struct SessionBinder {
    key: hmac::Key,
}

/// Who a session belongs to: the verified caller, or nobody in particular.
pub struct Owner<'a> {
    /// The resource the request was judged by (gateways on several hosts may share a
    /// path) and the gateway path (each `[[gateway]]` fronts its own MCP server).
    pub resource: &'a str,
    pub path: &'a str,
    /// `None` for a request let through without a token.
    pub principal: Option<&'a Principal>,
}

/// What became of a presented session id.
#[derive(Debug, PartialEq, Eq)]
pub enum Presented {
    /// None presented (or a stateless revision's, ignored).
    None,
    /// The server's id, bound to this caller.
    Bound(String),
    /// Not this caller's, or not one the gateway handed out.
    Refused,
}

impl SessionBinder {
    pub fn new(key: hmac::Key) -> Self {
        Self { key }
    }

    /// The id the client gets for the server's `id`.
    pub fn bind(&self, owner: &Owner<'_>, id: &str) -> String {
        format!("{}.{id}", URL_SAFE_NO_PAD.encode(self.tag(owner, id)))
    }

    /// The session id the request presents, checked against its caller; with
    /// `stateless`, ignored.
    pub fn presented(&self, headers: &HeaderMap, owner: &Owner<'_>, stateless: bool) -> Presented {
        let mut values = headers.get_all(HEADER);
        let value = match (values.next(), values.next()) {
            (None, _) => return Presented::None,
            _ if stateless => return Presented::None,
            (Some(one), None) => one.to_str().ok(),
            // Two sessions at once is none of them.
            (Some(_), Some(_)) => None,
        };
        let Some((tag, id)) = value.and_then(|v| v.split_once('.')) else {
            return Presented::Refused;
        };
        let expected = URL_SAFE_NO_PAD.encode(self.tag(owner, id));
        if constant_time_eq(tag.as_bytes(), expected.as_bytes()) {
            Presented::Bound(id.to_owned())
        } else {
            Presented::Refused
        }
    }

    /// The MCP server's answer with its session id bound to `owner`, or (stateless)
    /// without one. An id that is not header text is dropped: it could not come back.
    pub fn answer(&self, response: &mut HttpResponse, owner: &Owner<'_>, stateless: bool) {
        let headers = response.headers_mut();
        let Some(id) = headers.get(&HEADER).cloned() else {
            return;
        };
        headers.remove(&HEADER);
        if stateless {
            return;
        }
        let bound = id
            .to_str()
            .ok()
            .and_then(|id| HeaderValue::from_str(&self.bind(owner, id)).ok());
        match bound {
            Some(bound) => {
                headers.insert(HEADER, bound);
            }
            None => tracing::warn!("the MCP server's session id is not header text; dropped"),
        }
    }

    fn tag(&self, owner: &Owner<'_>, id: &str) -> [u8; TAG_BYTES] {
        let mut context = hmac::Context::with_key(&self.key);
        // Each part length-prefixed, so no two different owners sign the same bytes.
        let mut part = |bytes: &[u8]| {
            context.update(&(bytes.len() as u64).to_be_bytes());
            context.update(bytes);
        };
        part(owner.resource.as_bytes());
        part(owner.path.as_bytes());
        match owner.principal {
            Some(principal) => {
                part(b"subject");
                part(principal.subject.as_bytes());
                part(principal.client_id.as_deref().unwrap_or("").as_bytes());
            }
            None => part(b"anonymous"),
        }
        part(id.as_bytes());
        let mut tag = [0u8; TAG_BYTES];
        tag.copy_from_slice(&context.sign().as_ref()[..TAG_BYTES]);
        tag
    }
}

/// 404 for a session that is not the caller's: the transport's answer for a session
/// the server does not know (2025-11-25: the client then starts a new one).
pub fn not_found(id: &Value) -> HttpResponse {
    jsonrpc::error_response(
        StatusCode::NOT_FOUND,
        id,
        SESSION_NOT_FOUND,
        "Session not found",
    )
}

#[cfg(test)]
mod tests;
