//! The HTTP API: thin handlers that parse, call actors or domain functions, and map
//! results to responses through the one error type in [`error`].

pub mod addresses;
pub mod admin;
pub mod admin_auth;
pub mod admin_clients;
pub mod admin_grants;
pub mod admin_limits;
pub mod admin_openapi;
pub mod admin_routes;
pub mod admin_sessions;
pub mod authorize;
pub mod callback;
pub mod clients;
pub mod consent;
pub mod consent_page;
pub mod error;
pub mod exchange;
pub mod form;
pub mod health;
pub mod introspect;
pub mod jwks;
pub mod login;
pub mod login_cookies;
pub mod metadata;
pub mod metrics;
pub mod middleware;
pub mod params;
pub mod protect;
pub mod register;
pub mod resource_metadata;
pub mod revoke;
pub mod routes;
pub mod token;
pub mod verify;
