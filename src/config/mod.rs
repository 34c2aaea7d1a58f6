//! Configuration: one TOML file, every key overridable from the environment, loaded in
//! two steps. `raw` holds the file as written (serde, unknown keys refused); `sections`
//! checks it and builds the typed [`Config`]. Loading reports every problem it finds
//! at once, each naming its key, so an operator fixes a file in one pass; nothing is
//! bound or started before it succeeds.

mod admin;
mod env;
mod exchange;
mod forward_auth;
mod gateway;
mod introspection;
mod issuer;
mod login;
mod raw;
mod secret;
mod sections;
mod store;

use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde::de::DeserializeOwned;
use toml::Table;

/// Re-exported for the many callers that compare a presented secret; the rule lives in
/// `domain::constant_time`.
pub use crate::domain::constant_time::constant_time_eq;
pub use admin::{AdminConfig, ScopeCacheConfig};
pub use env::{Environment, PREFIX as ENV_PREFIX};
pub use exchange::{AudienceConfig, CallerConfig, ExchangeConfig, Strategy};
pub use forward_auth::ForwardAuthConfig;
pub use gateway::GatewayConfig;
pub use introspection::IntrospectionConfig;
pub use issuer::Issuer;
pub use login::{ConsentConfig, RefreshConfig, SessionsConfig, TokenMode, TokensConfig};
pub use secret::Secret;
pub use store::{
    DEFAULT_DATABASE, EncryptionConfig, KEY_FILE_SUFFIX, STORE_KEY_ENV, StoreBackend, StoreConfig,
    StoreKey, where_state_lives,
};

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
    /// `[forward_auth]`: the headers `/auth/verify` reads the original request from.
    pub forward_auth: ForwardAuthConfig,
    /// `[introspection]`: the resource servers that may introspect any token.
    pub introspection: IntrospectionConfig,
    pub scope_cache: ScopeCacheConfig,
    /// `[store]`: where clients, grants and refresh tokens live.
    pub store: StoreConfig,
    /// `[[gateway]]`: MCP servers the broker fronts itself, in configuration order.
    pub gateways: Vec<GatewayConfig>,
    pub log: LogConfig,
}

/// `[server]`
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// `listen`: the socket address to bind (default `127.0.0.1:8080`; port 0 picks one).
    pub listen: SocketAddr,
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
}

/// `[registration]`
#[derive(Debug, Clone)]
pub struct RegistrationConfig {
    /// `mode`: `local` (the broker issues client ids; default).
    pub mode: RegistrationMode,
    /// `rate_limit_per_minute` / `rate_limit_burst`: registrations per client IP
    /// (default 10 a minute, bursts of 10).
    pub rate_limit: crate::domain::rate_limit::Rate,
    /// `allow_private_use_schemes`: accept `cursor://…`-style redirect URIs (default true).
    pub allow_private_use_schemes: bool,
    /// `redirect_uri_allow_list`: patterns every redirect URI must match (default: any).
    pub redirect_uri_allow_list: Vec<String>,
    /// `dedupe_window`: identical public registrations within it share one client
    /// (default 10 min).
    pub dedupe_window: Duration,
    /// `unused_ttl`: a client that never completes a login is removed after this (default 24 h).
    pub unused_ttl: Duration,
    /// `idle_ttl`: a client unused this long is removed (default 90 days).
    pub idle_ttl: Duration,
    /// `sweep_interval`: how often clean-up runs (default 10 min).
    pub sweep_interval: Duration,
    /// `max_clients`: registrations beyond this are refused with 503 (default 100 000).
    pub max_clients: u64,
    /// Proxy mode's retries on 429/503: `retry_base` (200 ms), `retry_cap` (10 s),
    /// `retry_attempts` (5), `retry_deadline` (30 s), `max_retry_after` (30 s).
    pub backoff: crate::domain::backoff::BackoffPolicy,
    /// `metadata_documents`: accept Client ID Metadata Documents — an https URL as
    /// `client_id`, fetched instead of registered (default true; MCP 2025-11-25).
    pub metadata_documents: bool,
    /// `metadata_documents_allow_private`: fetch documents from private networks
    /// (default false).
    pub metadata_documents_allow_private: bool,
    /// `metadata_documents_allow_loopback`: fetch documents from loopback, over plain
    /// http too — development and tests only (default false).
    pub metadata_documents_allow_loopback: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistrationMode {
    /// The broker issues client ids and secrets itself.
    Local,
    /// Each registration is forwarded to the provider's `registration_endpoint`.
    Proxy,
}

/// `[upstream]`
#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    /// `issuer`: the OpenID provider's issuer, exactly as its discovery document says
    /// (https; `allow_insecure_http = true` permits http for a private network).
    pub issuer: Issuer,
    /// `client_id`: the broker's own client at the provider.
    pub client_id: String,
    /// `client_secret`: that client's secret (inline, `env:NAME` or `file:PATH`).
    pub client_secret: Secret,
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

/// One `[[api_keys]]` entry. The key itself is never configured, only its hash.
#[derive(Debug, Clone)]
pub struct ApiKeyConfig {
    /// `name`: a label for logs and metrics.
    pub name: String,
    /// `hash`: `sha256:<64 hex>` as printed by `token-broker hash-key`.
    pub hash: [u8; 32],
    /// `subject`: the principal the key acts as.
    pub subject: String,
    /// `scopes`: what the key may do.
    pub scopes: crate::domain::scope::Scopes,
    /// `expires_at`: RFC 3339 time after which the key is refused.
    pub expires_at: Option<u64>,
    /// `active`: false disables the key without removing it (default true).
    pub active: bool,
    /// `resources`: resource URIs it is valid for (default: all).
    pub resources: Option<Vec<String>>,
    /// `tools`: the only tools it may call (names or `prefix*`; default: any).
    pub tools: Option<std::sync::Arc<[crate::domain::tool_policy::ToolPattern]>>,
}

/// One `[[resources]]` entry: a protected resource such as an MCP server (RFC 9728).
#[derive(Debug, Clone)]
pub struct ResourceConfig {
    /// `uri`: the resource identifier clients send as `resource` (RFC 8707).
    pub uri: String,
    /// `name`: a human-readable name for its metadata.
    pub name: Option<String>,
    /// `audiences`: `aud` values accepted for it (default: the URI itself).
    pub audiences: Vec<String>,
    /// `required_scopes`: scopes every request must carry.
    pub required_scopes: crate::domain::scope::Scopes,
    /// `scopes_supported`: advertised in its metadata (default: the required scopes).
    pub scopes_supported: Vec<String>,
    /// The URI's path without a trailing slash (`""` for the root): requests under it
    /// belong to this resource.
    pub path: String,
    /// `exchange_audience`: forward-auth for this resource also exchanges the
    /// caller's token for one for this `[[exchange.audiences]]` entry and hands it to
    /// the proxy (`Authorization`, `X-Auth-Access-Token`).
    pub exchange_audience: Option<String>,
    /// `[[resources.tools]]` and `[[resources.clients]]`: per-tool scopes, public tools
    /// and per-client tool allow-lists.
    pub tools: crate::domain::tool_policy::ToolPolicy,
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

/// Reads and validates the file at `path`, applying `TOKEN_BROKER__…` overrides from `env`.
/// Relative paths in it (`store.path`, `store.key_file`, `tokens.key_file`) are taken
/// from the file's directory, where the default store lives too.
pub fn load_file(path: &Path, env: &Environment) -> Result<Config, ConfigError> {
    let read_error = |source| ConfigError::Read {
        path: path.display().to_string(),
        source,
    };
    let text = std::fs::read_to_string(path).map_err(read_error)?;
    let absolute = std::path::absolute(path).map_err(read_error)?;
    let dir = absolute.parent().unwrap_or(Path::new("/"));
    load_text(&text, env, Some(dir))
}

/// Validates configuration text, applying `TOKEN_BROKER__…` overrides from `env`. With
/// no file there is no directory to keep state in: the default store is `memory`,
/// and relative paths are taken from the working directory.
pub fn load_str(text: &str, env: &Environment) -> Result<Config, ConfigError> {
    load_text(text, env, None)
}

fn load_text(text: &str, env: &Environment, dir: Option<&Path>) -> Result<Config, ConfigError> {
    let mut root: Table = toml::from_str(text).map_err(|e| ConfigError::Syntax(e.to_string()))?;
    let mut problems = Vec::new();
    env.apply_overrides(&mut root, &mut problems);

    let server = take_section::<raw::RawServer>(&mut root, "server", &mut problems)
        .and_then(|raw| sections::server(raw, &mut problems));
    let upstream = take_section::<raw::RawUpstream>(&mut root, "upstream", &mut problems)
        .and_then(|raw| sections::upstream(raw, env, &mut problems));
    let verify = take_section::<raw::RawVerify>(&mut root, "verify", &mut problems)
        .and_then(|raw| sections::verify(raw, &mut problems));
    let resources = take_list::<raw::RawResource>(&mut root, "resources", &mut problems)
        .and_then(|raw| sections::resources(raw, &mut problems));
    let api_keys = take_list::<raw::RawApiKey>(&mut root, "api_keys", &mut problems)
        .and_then(|raw| sections::api_keys(raw, &mut problems));
    let registration =
        take_section::<raw::RawRegistration>(&mut root, "registration", &mut problems)
            .and_then(|raw| sections::registration(raw, &mut problems));
    let sessions = take_section::<raw::RawSessions>(&mut root, "sessions", &mut problems)
        .and_then(|raw| login::sessions(raw, &mut problems));
    let consent = take_section::<raw::RawConsent>(&mut root, "consent", &mut problems)
        .and_then(|raw| login::consent(raw, env, &mut problems));
    let tokens = take_section::<raw::RawTokens>(&mut root, "tokens", &mut problems)
        .and_then(|raw| login::tokens(raw, dir, &mut problems));
    let refresh = take_section::<raw::RawRefresh>(&mut root, "refresh", &mut problems)
        .and_then(|raw| login::refresh(raw, &mut problems));
    let exchange = take_section::<exchange::RawExchange>(&mut root, "exchange", &mut problems)
        .and_then(|raw| exchange::exchange(raw, env, &mut problems));
    let admin = take_section::<admin::RawAdmin>(&mut root, "admin", &mut problems)
        .and_then(|raw| admin::admin(raw, env, &mut problems));
    let forward_auth =
        take_section::<forward_auth::RawForwardAuth>(&mut root, "forward_auth", &mut problems)
            .and_then(|raw| forward_auth::forward_auth(raw, &mut problems));
    let introspection =
        take_section::<introspection::RawIntrospection>(&mut root, "introspection", &mut problems)
            .and_then(|raw| introspection::introspection(raw, &mut problems));
    let scope_cache = take_section::<admin::RawScopeCache>(&mut root, "scope_cache", &mut problems)
        .and_then(|raw| admin::scope_cache(raw, &mut problems));
    let store = take_section::<store::RawStore>(&mut root, "store", &mut problems)
        .and_then(|raw| store::store(raw, env, dir, &mut problems));
    let log = take_section::<raw::RawLog>(&mut root, "log", &mut problems)
        .and_then(|raw| sections::log(raw, &mut problems));
    let gateways = take_list::<gateway::RawGateway>(&mut root, "gateway", &mut problems)
        .and_then(|raw| gateway::gateways(raw, resources.as_deref(), &mut problems));
    for unknown in root.keys() {
        problems.push(Problem::new(
            unknown.clone(),
            "unknown section (expected server, upstream, verify, resources, api_keys, registration, sessions, consent, tokens, refresh, exchange, admin, forward_auth, introspection, scope_cache, store, log, gateway)",
        ));
    }
    if let (Some(resources), Some(exchange)) = (&resources, &exchange) {
        for (index, resource) in resources.iter().enumerate() {
            if let Some(audience) = &resource.exchange_audience
                && exchange.audience(audience).is_none()
            {
                problems.push(Problem::new(
                    format!("resources[{index}].exchange_audience"),
                    format!("`{audience}` is not an [[exchange.audiences]] entry"),
                ));
            }
        }
    }
    let login = (sessions, consent, tokens, refresh, exchange);
    let operator = (admin, forward_auth, scope_cache, introspection);
    match (
        server,
        upstream,
        verify,
        resources,
        api_keys,
        registration,
        login,
        operator,
        store,
        log,
    ) {
        (
            Some(server),
            Some(upstream),
            Some(verify),
            Some(resources),
            Some(api_keys),
            Some(registration),
            (Some(sessions), Some(consent), Some(tokens), Some(refresh), Some(exchange)),
            (Some(admin), Some(forward_auth), Some(scope_cache), Some(introspection)),
            Some(store),
            Some(log),
        ) if problems.is_empty() => Ok(Config {
            server,
            upstream,
            verify,
            resources,
            api_keys,
            registration,
            sessions,
            consent,
            tokens,
            refresh,
            exchange,
            admin,
            forward_auth,
            introspection,
            scope_cache,
            store,
            log,
            // `None` only with a problem reported, which this arm excludes.
            gateways: gateways.unwrap_or_default(),
        }),
        _ => Err(ConfigError::Invalid(problems)),
    }
}

/// Removes section `name` from `root` and deserializes it (an absent section is
/// empty). A section that fails to deserialize is reported and yields `None`, so its
/// checks are skipped rather than reporting its keys as missing; the other sections
/// are still checked.
fn take_section<T: DeserializeOwned + Default>(
    root: &mut Table,
    name: &str,
    problems: &mut Vec<Problem>,
) -> Option<T> {
    let Some(value) = root.remove(name) else {
        return Some(T::default());
    };
    match serde_path_to_error::deserialize(value) {
        Ok(section) => Some(section),
        Err(error) => {
            let path = error.path().to_string();
            let key = if path == "." {
                name.to_owned()
            } else {
                format!("{name}.{path}")
            };
            problems.push(Problem::new(key, error.inner().to_string()));
            None
        }
    }
}

/// Like [`take_section`] for an array of tables (`[[resources]]`).
fn take_list<T: DeserializeOwned>(
    root: &mut Table,
    name: &str,
    problems: &mut Vec<Problem>,
) -> Option<Vec<T>> {
    let Some(value) = root.remove(name) else {
        return Some(Vec::new());
    };
    match serde_path_to_error::deserialize(value) {
        Ok(list) => Some(list),
        Err(error) => {
            problems.push(Problem::new(
                format!("{name}{}", display_index_path(&error.path().to_string())),
                error.inner().to_string(),
            ));
            None
        }
    }
}

/// serde's path `[0].uri` → `[0].uri`; `.` (the list itself) → empty.
fn display_index_path(path: &str) -> String {
    if path == "." {
        String::new()
    } else {
        path.to_owned()
    }
}

#[cfg(test)]
mod tests;
