//! Gateway mode: the broker fronts an MCP server itself (`[[gateway]]`), for clients
//! that do not send the transport's `Mcp-Method` / `Mcp-Name` headers and for
//! operators who want one hop. A Streamable HTTP reverse proxy that reads the JSON-RPC
//! body (single or batch) to enforce the resource's tool rules per message, filters
//! `tools/list` results down to what the caller may call (plain JSON and event
//! streams), never hands on the client's token (the resource's downstream token
//! instead, from the exchange), and streams answers through as they come.
//!
//! `jsonrpc` reads requests and writes JSON-RPC errors, `version` tells the protocol
//! revision a request speaks, `access` decides who may send them, `sessions` binds a
//! session to whoever opened it, `filter` rewrites tool lists (marked private: each is
//! one caller's), `proxy` talks to the MCP server and `routes` ties these together per
//! `[[gateway]]` path.

mod access;
pub mod filter;
pub mod jsonrpc;
mod proxy;
mod routes;
mod servers;
mod sessions;
mod version;

pub use routes::routes;
pub use sessions::KEY_LABEL as SESSION_KEY_LABEL;

/// Why a forwarded exchange failed; logged, answered with a generic JSON-RPC error.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The MCP server could not be reached or broke off its answer: the error with
    /// its causes (a bare "client error (Connect)" would not say why).
    #[error("MCP server unreachable: {0}")]
    Unreachable(String),
    /// It did not start answering within `[[gateway]] timeout`.
    #[error("MCP server did not answer within {0:?}")]
    Timeout(std::time::Duration),
    /// A tool list too large to filter (its whole JSON body or one event).
    #[error("a tool list larger than {0} bytes cannot be filtered")]
    TooLarge(usize),
    /// A `tools/list` answer that cannot be read, so cannot be filtered: refused rather
    /// than passed on unfiltered.
    #[error("the answer to tools/list cannot be filtered: {0}")]
    Unfilterable(&'static str),
}

impl GatewayError {
    fn unreachable(error: impl std::error::Error) -> Self {
        let mut text = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        Self::Unreachable(text)
    }
}
