//! The configuration file as written: serde structs with every field optional and
//! unknown keys refused. `super::validate` turns these into the typed `Config`.
//!
//! No `Debug` here: raw sections may hold inline secrets.

use serde::{Deserialize, Deserializer};

/// `[server]`: where the broker listens and what it calls itself.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    pub listen: Option<String>,
    pub management_listen: Option<String>,
    pub public_url: Option<String>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub max_body_bytes: Option<u64>,
    pub shutdown_timeout: Option<String>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub workers: Option<u64>,
    pub trusted_proxies: Option<Vec<String>>,
    /// `[server.oauth_addresses]`: who may reach the OAuth endpoints at all.
    pub oauth_addresses: Option<RawAddresses>,
}

/// `[server.oauth_addresses]`, `[resources.addresses]`: CIDR deny and allow lists.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawAddresses {
    pub allow: Option<Vec<String>>,
    pub deny: Option<Vec<String>>,
}

/// `[registration]`: how MCP clients register (RFC 7591).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawRegistration {
    pub mode: Option<String>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub rate_limit_per_minute: Option<u64>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub rate_limit_burst: Option<u64>,
    #[serde(default, deserialize_with = "lenient_bool")]
    pub allow_private_use_schemes: Option<bool>,
    pub redirect_uri_allow_list: Option<Vec<String>>,
    pub dedupe_window: Option<String>,
    pub unused_ttl: Option<String>,
    pub idle_ttl: Option<String>,
    pub sweep_interval: Option<String>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub max_clients: Option<u64>,
    pub retry_base: Option<String>,
    pub retry_cap: Option<String>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub retry_attempts: Option<u64>,
    pub retry_deadline: Option<String>,
    pub max_retry_after: Option<String>,
    #[serde(default, deserialize_with = "lenient_bool")]
    pub metadata_documents: Option<bool>,
    #[serde(default, deserialize_with = "lenient_bool")]
    pub metadata_documents_allow_private: Option<bool>,
    #[serde(default, deserialize_with = "lenient_bool")]
    pub metadata_documents_allow_loopback: Option<bool>,
}

/// `[upstream]`: the OpenID provider the broker fronts, and the broker's client there.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawUpstream {
    pub issuer: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub client_auth: Option<String>,
    pub client_key: Option<String>,
    pub client_key_id: Option<String>,
    pub client_key_alg: Option<String>,
    #[serde(default, deserialize_with = "lenient_bool")]
    pub allow_insecure_http: Option<bool>,
    pub timeout: Option<String>,
    pub discovery_ttl: Option<String>,
    pub discovery_grace: Option<String>,
    pub jwks_refetch_interval: Option<String>,
    pub profile: Option<String>,
    /// `[upstream.claims]`: where the email, username and groups are.
    pub claims: Option<super::identity::RawClaims>,
}

/// `[sessions]`: logins in progress and the one-time codes they end in.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawSessions {
    pub ttl: Option<String>,
    pub code_ttl: Option<String>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub max_sessions: Option<u64>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub max_codes: Option<u64>,
    pub run_interval: Option<String>,
}

/// `[consent]`: the broker's consent page.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawConsent {
    pub remember_for: Option<String>,
    pub cookie_key: Option<String>,
}

/// `[tokens]`: what the broker hands to clients at its token endpoint.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawTokens {
    pub mode: Option<String>,
    pub access_token_ttl: Option<String>,
    pub algorithm: Option<String>,
    pub key_file: Option<String>,
    pub key_grace: Option<String>,
    #[serde(default, deserialize_with = "lenient_bool")]
    pub identity_claims: Option<bool>,
}

/// `[refresh]`: refresh-token rotation.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawRefresh {
    pub ttl: Option<String>,
    pub reuse_grace: Option<String>,
    pub max_upstream_staleness: Option<String>,
}

/// `[verify]`: how tokens are checked.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawVerify {
    pub leeway: Option<String>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub cache_capacity: Option<u64>,
    #[serde(default, deserialize_with = "lenient_bool")]
    pub introspection: Option<bool>,
    pub introspection_cache_ttl: Option<String>,
}

/// `[[api_keys]]`: a static API key for development and service accounts.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawApiKey {
    pub name: Option<String>,
    pub hash: Option<String>,
    pub subject: Option<String>,
    pub scopes: Option<Vec<String>>,
    pub expires_at: Option<String>,
    #[serde(default, deserialize_with = "lenient_bool")]
    pub active: Option<bool>,
    pub resources: Option<Vec<String>>,
    pub tools: Option<Vec<String>>,
}

/// `[[resources]]`: one protected resource (an MCP server).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawResource {
    pub uri: Option<String>,
    pub name: Option<String>,
    pub audiences: Option<Vec<String>>,
    pub required_scopes: Option<Vec<String>>,
    pub scopes_supported: Option<Vec<String>>,
    pub exchange_audience: Option<String>,
    pub tools: Option<Vec<RawTool>>,
    pub clients: Option<Vec<RawToolClient>>,
    /// `none` (default) or `public-tools`.
    pub anonymous: Option<String>,
    /// `[resources.rate_limit]`: budgets per caller (on by default).
    pub rate_limit: Option<RawRateLimit>,
    /// `[resources.addresses]`: who may reach it at all.
    pub addresses: Option<RawAddresses>,
    /// `[resources.allow]`: who may use it, by group, email domain and subject.
    pub allow: Option<super::identity::RawAllow>,
}

/// `[resources.rate_limit]`: what identifies a caller, a budget per credential kind,
/// per-tool budgets.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawRateLimit {
    #[serde(default, deserialize_with = "lenient_bool")]
    pub enabled: Option<bool>,
    pub key: Option<Vec<String>>,
    pub window: Option<String>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub broker_token: Option<u64>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub upstream_token: Option<u64>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub api_key: Option<u64>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub anonymous: Option<u64>,
    pub tools: Option<Vec<RawToolBudget>>,
}

/// `[[resources.rate_limit.tools]]`: a budget of its own for a tool name or pattern.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawToolBudget {
    pub name: Option<String>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub budget: Option<u64>,
}

/// `[[resources.tools]]`: a tool name or pattern, the scopes it needs, or public.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawTool {
    pub name: Option<String>,
    pub scopes: Option<Vec<String>>,
    #[serde(default, deserialize_with = "lenient_bool")]
    pub public: Option<bool>,
}

/// `[[resources.clients]]`: a client limited to some tools.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawToolClient {
    pub client_id: Option<String>,
    pub tools: Option<Vec<String>>,
}

/// `[log]`: output format and filter.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawLog {
    pub format: Option<String>,
    pub level: Option<String>,
}

/// A number written as a TOML integer or, as environment overrides are, as a string.
fn lenient_u64<'de, D: Deserializer<'de>>(de: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum NumOrText {
        Num(u64),
        Text(String),
    }
    match NumOrText::deserialize(de)? {
        NumOrText::Num(n) => Ok(Some(n)),
        NumOrText::Text(text) => text
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| serde::de::Error::custom(format!("`{text}` is not a whole number"))),
    }
}

/// A boolean written as a TOML boolean or as the string `true`/`false`.
fn lenient_bool<'de, D: Deserializer<'de>>(de: D) -> Result<Option<bool>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum BoolOrText {
        Bool(bool),
        Text(String),
    }
    match BoolOrText::deserialize(de)? {
        BoolOrText::Bool(b) => Ok(Some(b)),
        BoolOrText::Text(text) => match text.trim() {
            "true" => Ok(Some(true)),
            "false" => Ok(Some(false)),
            _ => Err(serde::de::Error::custom(format!(
                "`{text}` is not true or false"
            ))),
        },
    }
}
