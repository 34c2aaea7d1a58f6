//! The integration tests: one binary (it links once), a module per capability.
//! Servers bind 127.0.0.1:0 and are driven over real HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

mod broker_tokens;
mod cimd;
mod compose_replicas;
mod config_cli;
mod demo;
mod dev_idp;
mod e2e_oidc_exchange;
mod e2e_oidc_login;
mod e2e_oidc_provider;
mod errors;
mod exchange;
mod exchange_strategies;
mod gateway;
mod introspection;
mod invalidation;
mod login_browser;
mod login_cimd;
mod login_consent;
mod login_consent_display;
mod login_flow;
mod login_remember;
mod login_sdk;
mod mcp_server;
mod nginx;
mod nginx_bypass;
mod passthrough;
mod process;
mod proxy_examples;
mod redis_outage;
mod register;
mod register_proxy;
mod register_proxy_rig;
mod replica_abandoned_refresh;
mod replica_consent_key;
mod replica_registration;
mod replica_upstream_refresh;
mod replicas;
mod replicas_exchange;
mod shutdown;
mod signing_rotation;
mod store_default;
mod store_restart;
mod surface;
mod token_replay;
mod tool_access;
mod upstream;
mod upstream_id_token;
mod upstream_login;
mod upstream_staleness;
mod verify;
mod verify_opaque;
mod verify_original;
