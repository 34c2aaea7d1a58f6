//! Configuration: one TOML file, every key overridable from the environment, loaded in
//! two steps. `raw` holds the file as written (serde, unknown keys refused); `load`
//! hands each section to its module (`sections` for the core ones and the checker
//! they all share) and builds the typed [`Config`]. Loading reports every problem it finds
//! at once, each naming its key, so an operator fixes a file in one pass; nothing is
//! bound or started before it succeeds.

mod addresses;
mod admin;
mod api_keys;
mod clients;
mod enterprise;
mod env;
mod exchange;
mod forward_auth;
mod gateway;
mod identity;
mod introspection;
mod issuer;
mod load;
mod login;
mod rate_limit;
mod raw;
mod registration;
mod resources;
mod secret;
mod sections;
mod store;
mod telemetry;
mod upstream_key;

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

/// Re-exported for the many callers that compare a presented secret; the rule lives in
/// `domain::constant_time`.
pub use crate::domain::constant_time::constant_time_eq;
pub use admin::{AdminConfig, AuditConfig, ScopeCacheConfig};
pub use api_keys::ApiKeyConfig;
pub use clients::{ClientCredential, ConfiguredClient};
pub use enterprise::{EnterpriseConfig, SubjectClaim, TrustedIssuer};
pub use env::{Environment, PREFIX as ENV_PREFIX};
pub use exchange::{AudienceConfig, CallerConfig, ExchangeConfig, Strategy};
pub use forward_auth::ForwardAuthConfig;
pub use gateway::GatewayConfig;
pub use identity::IdentityHeaders;
pub use introspection::IntrospectionConfig;
pub use issuer::Issuer;
pub use load::{load_file, load_str};
pub use login::{ConsentConfig, RefreshConfig, SessionsConfig, TokenMode, TokensConfig};
pub use rate_limit::{CallerKey, KeyPart, Policy, RateLimitConfig, ToolBudget};
pub use registration::{RegistrationConfig, RegistrationMode};
pub use resources::{ResourceConfig, allow_rule};
pub use secret::Secret;
pub use store::{
    ClientIdentity, DEFAULT_DATABASE, EncryptionConfig, KEY_FILE_SUFFIX, RedisTls, RedisUrl,
    STORE_KEY_ENV, StoreBackend, StoreConfig, StoreKey, where_state_lives,
};
pub use telemetry::{OtlpConfig, OtlpProtocol, TelemetryConfig};
pub use upstream_key::{UpstreamClientAuth, UpstreamClientKey};

/// The validated configuration. Built only by [`load_file`] or [`load_str`].
#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerConfig,
    pub upstream: UpstreamConfig,
    pub verify: VerifyConfig,
    /// `[[resources]]`: the protected resources, in configuration order.
    pub resources: Vec<ResourceConfig>,
    /// `[[api_keys]]`: static API keys, by hash.
    pub api_keys: Vec<ApiKeyConfig>,
    pub registration: RegistrationConfig,
    pub sessions: SessionsConfig,
    pub consent: ConsentConfig,
    pub tokens: TokensConfig,
    pub refresh: RefreshConfig,
    pub exchange: ExchangeConfig,
    pub admin: AdminConfig,
    /// `[audit]`: how the audit trail writes subjects.
    pub audit: AuditConfig,
    /// `[forward_auth]`: the headers `/auth/verify` reads the original request from.
    pub forward_auth: ForwardAuthConfig,
    /// `[introspection]`: the resource servers that may introspect any token.
    pub introspection: IntrospectionConfig,
    pub scope_cache: ScopeCacheConfig,
    /// `[store]`: where clients, grants and refresh tokens live.
    pub store: StoreConfig,
    /// `[[gateway]]`: MCP servers the broker fronts itself, in configuration order.
    pub gateways: Vec<GatewayConfig>,
    /// `[enterprise]`: the identity providers whose ID-JAGs the token endpoint honours.
    pub enterprise: EnterpriseConfig,
    /// `[[clients]]`: pre-configured confidential clients (machine clients), in
    /// configuration order.
    pub clients: Vec<ConfiguredClient>,
    pub log: LogConfig,
    /// `[telemetry]`: OpenTelemetry traces (off unless `[telemetry.otlp]` is set).
    pub telemetry: TelemetryConfig,
}

/// `[server]`
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// `listen`: the socket address to bind (default `127.0.0.1:8080`; port 0 picks one).
    pub listen: SocketAddr,
    /// `management_listen`: a second socket address for `/metrics`, `/readyz`,
    /// `/healthz` and `/admin/*`, which then leave the public port (default none: one
    /// port serves everything).
    pub management_listen: Option<SocketAddr>,
    /// `public_url`: the broker's issuer identifier (RFC 8414 §2), used character for
    /// character in metadata, `iss` claims and `iss` parameters.
    pub public_url: Issuer,
    /// `max_body_bytes`: the largest request body accepted (default 64 KiB).
    pub max_body_bytes: usize,
    /// `shutdown_timeout`: how long in-flight requests may run after SIGTERM (default 30 s).
    pub shutdown_timeout: Duration,
    /// `workers`: HTTP worker threads (default: one per CPU).
    pub workers: usize,
    /// `trusted_proxies`: CIDRs of reverse proxies whose `X-Forwarded-For` is believed
    /// (default none: the socket peer is the client).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// `[server.oauth_addresses]`: `deny` / `allow` CIDR lists for the OAuth endpoints
    /// (`/oauth/*`: authorize, consent, callback, token, register, revoke, introspect),
    /// judged on the client IP before anything else is read; deny wins (default open).
    pub oauth_addresses: crate::domain::address_list::AddressList,
}

/// `[upstream]`
#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    /// `issuer`: the OpenID provider's issuer, exactly as its discovery document says
    /// (https; `allow_insecure_http = true` permits http for a private network).
    pub issuer: Issuer,
    /// `client_id`: the broker's own client at the provider.
    pub client_id: String,
    /// `client_secret`: that client's secret (inline, `env:NAME` or `file:PATH`);
    /// empty, and never sent, with `client_auth = "private_key_jwt"`.
    pub client_secret: Secret,
    /// `client_auth`: `client_secret_basic` (default) or `private_key_jwt`.
    pub client_auth: UpstreamClientAuth,
    /// `client_key` (a secret reference to a PEM private key), `client_key_id` and
    /// `client_key_alg`: the key for `private_key_jwt`.
    pub client_key: Option<UpstreamClientKey>,
    /// `timeout`: the bound on one upstream HTTP call (default 10 s).
    pub timeout: Duration,
    /// `discovery_ttl`: how long discovery and JWKS are used before a refresh (default 5 min).
    pub discovery_ttl: Duration,
    /// `discovery_grace`: how long past the TTL the last good copy is still served
    /// while the provider is unreachable (default 1 h); after that verification of
    /// upstream tokens fails closed and `/readyz` fails.
    pub discovery_grace: Duration,
    /// `jwks_refetch_interval`: the least time between JWKS refetches caused by an
    /// unknown `kid` (default 1 min), so forged `kid`s cannot hammer the provider.
    pub jwks_refetch_interval: Duration,
    /// `profile`: how the provider hears which API a login is for: `generic` (RFC
    /// 8707 `resource`; default), `keycloak` (`audience`), `entra` (`<api>/.default`
    /// scope) or `none`.
    pub profile: crate::domain::upstream_request::Profile,
    /// `[upstream.claims]`: which claims of the ID token (and of provider access
    /// tokens) hold the email, username and groups.
    pub claims: crate::domain::identity::ClaimNames,
}

/// `[verify]`
#[derive(Debug, Clone)]
pub struct VerifyConfig {
    /// `leeway`: clock skew tolerated on `exp`, `nbf` and `iat` (default 30 s, at most 5 min).
    pub leeway: Duration,
    /// `cache_capacity`: verified tokens remembered (default 100 000).
    pub cache_capacity: u64,
    /// `introspection`: verify opaque (non-JWT) upstream tokens by RFC 7662
    /// introspection at the provider (default true; needs its introspection endpoint).
    pub introspection: bool,
    /// `introspection_cache_ttl`: how long an introspection answer is reused, never
    /// past the token's `exp` (default 60 s).
    pub introspection_cache_ttl: Duration,
}

/// `[log]`
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// `format`: `json` (one object a line, for collectors) or `pretty` (for people).
    pub format: LogFormat,
    /// `level`: a tracing filter directive such as `info` or `token_broker=debug,info`.
    pub level: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
}

/// One thing wrong with the configuration: the dotted key and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub message: String,
}

impl Problem {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read at all.
    #[error("cannot read configuration file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    /// The file is not TOML; the message carries line and column.
    #[error("configuration file is not valid TOML: {0}")]
    Syntax(String),
    /// The file parsed but some keys are missing, unknown or invalid.
    #[error("{}", list_problems(.0))]
    Invalid(Vec<Problem>),
}

impl ConfigError {
    /// The individual problems (one for a read or syntax error).
    pub fn problems(&self) -> Vec<String> {
        match self {
            Self::Invalid(problems) => problems.iter().map(ToString::to_string).collect(),
            other => vec![other.to_string()],
        }
    }
}

fn list_problems(problems: &[Problem]) -> String {
    let mut out = format!("configuration has {} problem(s):", problems.len());
    for problem in problems {
        out.push_str("\n  ");
        out.push_str(&problem.to_string());
    }
    out
}

#[cfg(test)]
mod management_tests;
#[cfg(test)]
mod tests;
