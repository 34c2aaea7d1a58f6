//! token-broker: an OAuth 2.1 authorization-server facade, RFC 8693 token-exchange
//! service and forward-auth endpoint for MCP servers behind an existing OpenID
//! provider. `main.rs` is only the command line; everything it runs is built here so
//! tests and the demo start exactly what `serve` starts.
#![forbid(unsafe_code)]

pub mod actors;
pub mod clock;
pub mod config;
#[cfg(feature = "dev-idp")]
pub mod demo;
#[cfg(feature = "dev-idp")]
pub mod dev_idp;
pub mod domain;
pub mod flows;
pub mod gateway;
pub mod http;
pub mod redact;
pub mod server;
pub mod store;
pub mod telemetry;
pub mod tokens;
pub mod upstream;
