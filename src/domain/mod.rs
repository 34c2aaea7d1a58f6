//! Pure protocol rules: no I/O, no actix, no clock (time is passed in). Shared by the
//! broker's endpoints and the development IdP.

pub mod address_list;
pub mod authorize;
pub mod backoff;
pub mod client_assertion;
pub mod client_auth;
pub mod client_ip;
pub mod client_metadata;
pub mod constant_time;
pub mod digest;
pub mod display_text;
pub mod exchange;
pub mod id_jag;
pub mod identity;
pub mod identity_rule;
pub mod invalidation;
pub mod jws;
pub mod passthrough;
pub mod pkce;
pub mod protocol_version;
pub mod provider_session;
pub mod rate_limit;
pub mod redirect_uri;
pub mod refresh;
pub mod resource;
pub mod scope;
pub mod tool_policy;
pub mod upstream_registration;
pub mod upstream_request;
pub mod urlencoded;
