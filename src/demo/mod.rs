//! The demo (`token-broker demo`) and its example MCP server. Development only.

pub mod app;
pub mod mcp;
pub mod store;
