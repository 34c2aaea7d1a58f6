//! Who may send a request through the gateway, decided per message: the rules
//! forward-auth applies to the transport's headers (`http::tool_access`), applied here
//! to every message of the JSON-RPC body.

use std::sync::Arc;

use actix_web::http::header::{self, HeaderMap};
use actix_web::http::{StatusCode, Uri};
use actix_web::{HttpResponse, web};
use serde_json::Value;

use super::jsonrpc::{self, Message};
use crate::config::{Config, ResourceConfig};
use crate::flows::exchange::{self, Exchanged};
use crate::http::protect::{self, Denial};
use crate::http::tool_access::{self, McpCall};
use crate::server::AppState;
use crate::tokens::Principal;

/// What a request asks of the MCP server.
#[derive(Clone, Copy)]
pub enum Intent<'m> {
    /// A POSTed body: these messages.
    Messages(&'m [Message]),
    /// A GET (the server's event stream) or DELETE (the session's end): no tool call.
    Stream,
}

/// A request let through.
pub struct Authorized<'a> {
    pub resource: &'a ResourceConfig,
    /// The verified caller; `None` for a request allowed without a token.
    pub principal: Option<Arc<Principal>>,
    /// The token the MCP server gets in place of the client's (the resource's
    /// `exchange_audience`).
    pub downstream: Option<Arc<Exchanged>>,
}

/// Why a request was not let through.
pub enum Refused {
    /// 401 or 403 with its challenge, as forward-auth answers.
    Denied(Denial),
    /// No downstream token could be had: fail closed (503).
    Unavailable,
}

impl Refused {
    pub fn response(&self, id: &Value) -> HttpResponse {
        match self {
            Self::Denied(denial) => denial.response(),
            Self::Unavailable => {
                let mut response = jsonrpc::error_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    id,
                    jsonrpc::SERVER_ERROR,
                    "the MCP server's credentials are unavailable; retry later",
                );
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, header::HeaderValue::from_static("5"));
                response
            }
        }
    }
}

fn call(message: &Message) -> McpCall<'_> {
    McpCall {
        method: message.method.as_deref(),
        name: message.tool.as_deref(),
    }
}

/// Without a token, on a resource with `anonymous = "public-tools"`: every message
/// public (a batch as a whole); streams (GET, DELETE) never (405). Otherwise the
/// resource check (401/403), then each `tools/call` against the tool rules, then the
/// downstream token.
pub async fn authorize<'a>(
    state: &'a web::Data<AppState>,
    headers: &HeaderMap,
    uri: &Uri,
    intent: Intent<'_>,
) -> Result<Authorized<'a>, Refused> {
    if !headers.contains_key(header::AUTHORIZATION)
        && let Ok(path) = protect::routed_path(uri)
        && let Some(resource) = protect::resource_for(&state.config, &path)
        && match intent {
            Intent::Messages(messages) => messages
                .iter()
                .all(|m| tool_access::anonymous_allowed(resource, call(m))),
            // A stream or a session's end belongs to whoever opened the session, which
            // the gateway cannot tell without a token: never anonymous. On a resource
            // open to anonymous callers it is 405, not 401, so that it does not start
            // a login beside the one the client's next POST starts.
            Intent::Stream if resource.tools.anonymous_open() => {
                return Err(Refused::Denied(tool_access::anonymous_stream(state)));
            }
            Intent::Stream => false,
        }
    {
        return Ok(Authorized {
            resource,
            principal: None,
            downstream: None,
        });
    }
    let protect::Checked {
        resource,
        principal,
        digest,
    } = protect::check_operation(state, headers, uri, |resource| match intent {
        // A refusal names what every message needs, so one authorization does.
        Intent::Messages(messages) => messages.iter().fold(Default::default(), |all, m| {
            all.union(&tool_access::needed(
                resource,
                &tool_access::Forwarded::Described(call(m)),
            ))
        }),
        Intent::Stream => resource.required_scopes.clone(),
    })
    .await
    .map_err(Refused::Denied)?;
    if let Intent::Messages(messages) = intent {
        tool_access::check_calls(state, resource, &principal, messages.iter().map(call))
            .map_err(Refused::Denied)?;
    }
    let mut downstream = None;
    if resource.exchange_audience.is_some() {
        // Verified above, so present.
        let token = protect::bearer(headers).map_err(|_| Refused::Unavailable)?;
        let subject = exchange::Presented {
            token,
            digest: &digest,
            principal: &principal,
        };
        downstream = state
            .exchange
            .for_resource(resource, subject)
            .await
            .map_err(|()| Refused::Unavailable)?;
    }
    Ok(Authorized {
        resource,
        principal: Some(principal),
        downstream,
    })
}

impl Authorized<'_> {
    /// Whether `tools/list` may show a tool to this caller (anonymous: public tools
    /// only), owning what it needs so a streamed answer can ask after the handler
    /// returned.
    pub fn viewer(&self, config: &Arc<Config>) -> impl Fn(&str) -> bool + 'static {
        let config = Arc::clone(config);
        let index = config
            .resources
            .iter()
            .position(|r| std::ptr::eq(r, self.resource));
        let principal = self.principal.clone();
        move |tool| {
            // Not found cannot happen (the resource is the config's own); hide all.
            let Some(resource) = index.and_then(|i| config.resources.get(i)) else {
                return false;
            };
            let caller = principal.as_deref().map(tool_access::caller);
            resource
                .tools
                .visible(&resource.required_scopes, tool, caller)
        }
    }
}
