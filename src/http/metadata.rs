//! Authorization-server metadata (RFC 8414), served at
//! `/.well-known/oauth-authorization-server` and, for OpenID-style discovery, at
//! `/.well-known/openid-configuration`. Built once from configuration.
//!
//! Only what exists is advertised: endpoints are added here as they are built, so a
//! client never follows a link to a 404.

use actix_web::HttpResponse;
use actix_web::http::header;
use actix_web::web;
use serde::Serialize;

use crate::config::Config;

/// The grant types the token endpoint implements (RFC 8414 §2).
pub const GRANT_TYPES: &[&str] = &[
    "authorization_code",
    "refresh_token",
    "urn:ietf:params:oauth:grant-type:token-exchange",
];

/// Client authentication methods. `none` must be listed: public MCP clients (and
/// Claude's choice of CIMD) depend on it; `private_key_jwt` (RFC 7523 §2.2) is what
/// the MCP client-credentials extension recommends.
pub const TOKEN_ENDPOINT_AUTH_METHODS: &[&str] = &[
    "none",
    "client_secret_basic",
    "client_secret_post",
    "private_key_jwt",
];

/// The methods a confidential client (a resource server introspecting) may use.
const CONFIDENTIAL_AUTH_METHODS: &[&str] = &[
    "client_secret_basic",
    "client_secret_post",
    "private_key_jwt",
];

/// The RFC 8414 document.
#[derive(Debug, Clone, Serialize)]
pub struct ServerMetadata {
    /// Exactly `server.public_url`; equal to every `iss` the broker sends.
    pub issuer: String,
    pub response_types_supported: &'static [&'static str],
    pub response_modes_supported: &'static [&'static str],
    /// [`GRANT_TYPES`], plus `client_credentials` when the broker issues its own
    /// tokens, plus the ID-JAG grant when `[[enterprise.issuers]]` are configured.
    pub grant_types_supported: Vec<&'static str>,
    /// S256 only (OAuth 2.1); MCP clients refuse a server that omits this field.
    pub code_challenge_methods_supported: &'static [&'static str],
    pub token_endpoint_auth_methods_supported: &'static [&'static str],
    /// The algorithms a `private_key_jwt` client assertion may be signed with
    /// (RFC 8414 §2; required by the MCP client-credentials extension).
    pub token_endpoint_auth_signing_alg_values_supported: &'static [&'static str],
    /// RFC 7591 dynamic registration.
    pub registration_endpoint: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    /// RFC 7009.
    pub revocation_endpoint: String,
    pub revocation_endpoint_auth_methods_supported: &'static [&'static str],
    /// RFC 7662, for resource servers (confidential clients).
    pub introspection_endpoint: String,
    pub introspection_endpoint_auth_methods_supported: &'static [&'static str],
    /// The broker's signing keys (its access tokens are JWTs, RFC 9068).
    pub jwks_uri: String,
    /// RFC 9207: every authorization response carries `iss`.
    pub authorization_response_iss_parameter_supported: bool,
    /// The resources' scopes plus OpenID's and `offline_access`.
    pub scopes_supported: Vec<String>,
    /// An https URL may be used as `client_id` (Client ID Metadata Documents).
    pub client_id_metadata_document_supported: bool,
    /// `urn:ietf:params:oauth:grant-profile:id-jag` when ID-JAGs are honoured
    /// (draft-ietf-oauth-identity-assertion-authz-grant §7.2; the MCP extension
    /// "Enterprise-Managed Authorization" §6); absent otherwise.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub authorization_grant_profiles_supported: &'static [&'static str],
}

impl ServerMetadata {
    pub fn from_config(config: &Config) -> Self {
        let id_jag = !config.enterprise.issuers.is_empty();
        Self {
            issuer: config.server.public_url.as_str().to_owned(),
            response_types_supported: &["code"],
            response_modes_supported: &["query"],
            grant_types_supported: grant_types(config, id_jag),
            code_challenge_methods_supported: &["S256"],
            token_endpoint_auth_methods_supported: TOKEN_ENDPOINT_AUTH_METHODS,
            token_endpoint_auth_signing_alg_values_supported:
                crate::domain::client_metadata::CLIENT_ASSERTION_ALGS,
            registration_endpoint: config.server.public_url.endpoint("/oauth/register"),
            authorization_endpoint: config.server.public_url.endpoint("/oauth/authorize"),
            token_endpoint: config.server.public_url.endpoint("/oauth/token"),
            revocation_endpoint: config.server.public_url.endpoint("/oauth/revoke"),
            revocation_endpoint_auth_methods_supported: TOKEN_ENDPOINT_AUTH_METHODS,
            introspection_endpoint: config.server.public_url.endpoint("/oauth/introspect"),
            introspection_endpoint_auth_methods_supported: CONFIDENTIAL_AUTH_METHODS,
            jwks_uri: config.server.public_url.endpoint("/jwks.json"),
            authorization_response_iss_parameter_supported: true,
            scopes_supported: scopes_supported(config),
            client_id_metadata_document_supported: config.registration.metadata_documents,
            authorization_grant_profiles_supported: if id_jag {
                &[crate::domain::id_jag::GRANT_PROFILE]
            } else {
                &[]
            },
        }
    }
}

fn grant_types(config: &Config, id_jag: bool) -> Vec<&'static str> {
    let mut grants = GRANT_TYPES.to_vec();
    // In passthrough mode a machine would have no provider token to be handed.
    if config.tokens.mode == crate::config::TokenMode::Issue {
        grants.push("client_credentials");
    }
    if id_jag {
        grants.push(crate::domain::id_jag::JWT_BEARER);
    }
    grants
}

fn scopes_supported(config: &Config) -> Vec<String> {
    let mut scopes: Vec<String> = crate::domain::authorize::BASE_SCOPES
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    for resource in &config.resources {
        for scope in &resource.scopes_supported {
            if !scopes.contains(scope) {
                scopes.push(scope.clone());
            }
        }
    }
    scopes
}

/// Both well-known documents. Public and identical for everyone, so caches and
/// browsers (the Inspector fetches it cross-origin) may keep it for a few minutes.
pub async fn authorization_server(metadata: web::Data<ServerMetadata>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .json(&**metadata)
}
