//! The MCP servers at one gateway path: one per resource (`[[gateway]]` entries on
//! several hosts may share a path). The access flow picks the resource by host and
//! path; the server of that resource takes the request, so no request reaches a server
//! judged by another server's rules.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use serde_json::Value;

use super::jsonrpc::{self, SERVER_ERROR};
use super::proxy::Upstream;
use crate::config::{GatewayConfig, IdentityHeaders, ResourceConfig};
use crate::telemetry::upstream::UpstreamCalls;

/// The servers at one path, each with the URI of the resource it is.
pub struct Servers {
    by_resource: Vec<(String, Result<Upstream, String>)>,
}

impl Servers {
    /// The servers of `entries` (all at one path); an entry whose client cannot be
    /// built answers 502 rather than disappearing.
    pub fn new<'a>(
        entries: impl IntoIterator<Item = &'a GatewayConfig>,
        identity: &IdentityHeaders,
        calls: &UpstreamCalls,
    ) -> Self {
        let by_resource = entries
            .into_iter()
            .map(|entry| {
                let upstream = Upstream::new(entry, identity, calls.clone());
                if let Err(error) = &upstream {
                    tracing::error!(%error, path = %entry.path, resource = %entry.resource, "gateway route unavailable");
                }
                (entry.resource.clone(), upstream)
            })
            .collect();
        Self { by_resource }
    }

    /// The server of `resource` (the one the access flow judged the request by).
    pub fn of(&self, resource: &ResourceConfig) -> Result<&Upstream, Unserved> {
        match self
            .by_resource
            .iter()
            .find(|(uri, _)| *uri == resource.uri)
        {
            Some((_, Ok(upstream))) => Ok(upstream),
            Some((_, Err(_))) => Err(Unserved::Broken),
            None => Err(Unserved::NotHere),
        }
    }
}

/// Why no server takes a request at this path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unserved {
    /// This path serves no MCP server for the request's resource (another host's): 404.
    NotHere,
    /// Its HTTP client could not be built at start-up (logged then): 502.
    Broken,
}

impl Unserved {
    pub fn response(self, id: &Value) -> HttpResponse {
        let (status, message) = match self {
            Self::NotHere => (
                StatusCode::NOT_FOUND,
                "no MCP server is served at this path for this host",
            ),
            Self::Broken => (StatusCode::BAD_GATEWAY, "the gateway is not available"),
        };
        jsonrpc::error_response(status, id, SERVER_ERROR, message)
    }
}
