//! `[exchange]`, `[[exchange.audiences]]` and `[[exchange.clients]]`: which callers may
//! exchange a client's token (RFC 8693) for which downstream audiences, with which
//! scopes, and how the provider is asked.

use std::time::Duration;

use serde::Deserialize;

use super::sections::{Checker, optional_duration};
use super::{Environment, Problem, Secret};
use crate::domain::digest::sha256;
use crate::domain::scope::Scopes;

/// `[exchange]` as written.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawExchange {
    pub cache_capacity: Option<u64>,
    pub skew: Option<String>,
    pub audiences: Option<Vec<RawAudience>>,
    pub clients: Option<Vec<RawCaller>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawAudience {
    pub audience: Option<String>,
    pub strategy: Option<String>,
    pub scopes: Option<Vec<String>>,
    pub upstream_audience: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawCaller {
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub audiences: Option<Vec<String>>,
}

/// How the provider is asked for a downstream token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// RFC 8693 token exchange (Keycloak ≥ 26.2 standard exchange, oidc-provider).
    Rfc8693,
    /// Entra ID's JWT-bearer on-behalf-of grant.
    EntraObo,
    /// A refresh-token grant on the grant's upstream refresh token, for providers
    /// without any exchange.
    Refresh,
}

impl Strategy {
    /// As written in the configuration.
    pub fn name(self) -> &'static str {
        match self {
            Self::Rfc8693 => "rfc8693",
            Self::EntraObo => "entra-obo",
            Self::Refresh => "refresh",
        }
    }
}

/// One downstream audience.
#[derive(Debug, Clone)]
pub struct AudienceConfig {
    /// `audience`: what callers ask for (`audience` or `resource`).
    pub audience: String,
    pub strategy: Strategy,
    /// `scopes`: the most a token for it may carry.
    pub scopes: Scopes,
    /// `upstream_audience`: its name at the provider (default: `audience`).
    pub upstream_audience: String,
}

/// A caller allowed to exchange (usually an MCP server), authenticated by its secret.
#[derive(Clone)]
pub struct CallerConfig {
    pub client_id: String,
    pub client_secret: Secret,
    /// `audiences`: what it may exchange for.
    pub audiences: Vec<String>,
    /// The secret's SHA-256, computed once: a presented secret's is compared with it.
    secret_digest: [u8; 32],
}

impl std::fmt::Debug for CallerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallerConfig")
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret)
            .field("audiences", &self.audiences)
            .field("secret_digest", &crate::redact::Redacted)
            .finish()
    }
}

impl CallerConfig {
    /// Whether `presented` names this caller with its secret (token exchange and
    /// introspection both accept these callers). Digests are compared, in constant
    /// time: equal lengths, so the comparison leaks nothing about the secret's length.
    pub fn accepts(&self, presented: &crate::domain::client_auth::Presented) -> bool {
        let Some(secret) = presented.secret() else {
            return false;
        };
        let (a, b) = (sha256(secret.as_bytes()), &self.secret_digest);
        presented.client_id() == self.client_id
            && crate::domain::constant_time::constant_time_eq(&a, b)
    }
}

/// `[exchange]`
#[derive(Debug, Clone, Default)]
pub struct ExchangeConfig {
    /// `cache_capacity`: exchanged tokens remembered (default 100 000).
    pub cache_capacity: u64,
    /// `skew`: a cached token is dropped this long before it expires, and a token
    /// with less left is not cached (default 30 s).
    pub skew: Duration,
    pub audiences: Vec<AudienceConfig>,
    pub clients: Vec<CallerConfig>,
}

impl ExchangeConfig {
    pub fn audience(&self, name: &str) -> Option<&AudienceConfig> {
        self.audiences.iter().find(|a| a.audience == name)
    }

    pub fn caller(&self, client_id: &str) -> Option<&CallerConfig> {
        self.clients.iter().find(|c| c.client_id == client_id)
    }
}

pub fn exchange(
    raw: RawExchange,
    env: &Environment,
    problems: &mut Vec<Problem>,
) -> Option<ExchangeConfig> {
    let before = problems.len();
    let mut c = Checker::new("exchange", problems);
    let skew = optional_duration(&mut c, "skew", raw.skew, Duration::from_secs(30));
    let cache_capacity = c.parse(
        "cache_capacity",
        Some(raw.cache_capacity.unwrap_or(100_000)),
        |n| {
            if n == 0 {
                Err("must be at least 1".to_owned())
            } else {
                Ok(n)
            }
        },
    );
    let mut audiences: Vec<AudienceConfig> = Vec::new();
    for (i, entry) in raw.audiences.unwrap_or_default().into_iter().enumerate() {
        let key = |field: &str| format!("exchange.audiences[{i}].{field}");
        let Some(audience) = entry.audience.filter(|a| !a.trim().is_empty()) else {
            problems.push(Problem::new(key("audience"), "missing (required)"));
            continue;
        };
        if audiences.iter().any(|a| a.audience == audience) {
            problems.push(Problem::new(
                key("audience"),
                format!("`{audience}` is listed twice"),
            ));
            continue;
        }
        let strategy = match entry.strategy.as_deref().unwrap_or("rfc8693") {
            "rfc8693" => Strategy::Rfc8693,
            "entra-obo" => Strategy::EntraObo,
            "refresh" => Strategy::Refresh,
            other => {
                problems.push(Problem::new(
                    key("strategy"),
                    format!("`{other}` is not one of rfc8693, entra-obo, refresh"),
                ));
                continue;
            }
        };
        let scopes = match Scopes::parse(&entry.scopes.unwrap_or_default().join(" ")) {
            Ok(scopes) => scopes,
            Err(e) => {
                problems.push(Problem::new(key("scopes"), e));
                continue;
            }
        };
        audiences.push(AudienceConfig {
            upstream_audience: entry.upstream_audience.unwrap_or_else(|| audience.clone()),
            audience,
            strategy,
            scopes,
        });
    }
    let mut clients: Vec<CallerConfig> = Vec::new();
    for (i, entry) in raw.clients.unwrap_or_default().into_iter().enumerate() {
        let key = |field: &str| format!("exchange.clients[{i}].{field}");
        let Some(client_id) = entry.client_id.filter(|a| !a.trim().is_empty()) else {
            problems.push(Problem::new(key("client_id"), "missing (required)"));
            continue;
        };
        let secret = match entry
            .client_secret
            .as_deref()
            .map(|s| Secret::resolve(s, env))
        {
            Some(Ok(secret)) if secret.expose().len() >= 16 => secret,
            Some(Ok(_)) => {
                problems.push(Problem::new(
                    key("client_secret"),
                    "must be at least 16 bytes",
                ));
                continue;
            }
            Some(Err(e)) => {
                problems.push(Problem::new(key("client_secret"), e));
                continue;
            }
            None => {
                problems.push(Problem::new(key("client_secret"), "missing (required)"));
                continue;
            }
        };
        let allowed = entry.audiences.unwrap_or_default();
        if let Some(unknown) = allowed
            .iter()
            .find(|a| !audiences.iter().any(|x| &x.audience == *a))
        {
            problems.push(Problem::new(
                key("audiences"),
                format!("`{unknown}` is not an [[exchange.audiences]] entry"),
            ));
            continue;
        }
        clients.push(CallerConfig {
            client_id,
            secret_digest: sha256(secret.expose().as_bytes()),
            client_secret: secret,
            audiences: allowed,
        });
    }
    if problems.len() != before {
        return None;
    }
    Some(ExchangeConfig {
        cache_capacity: cache_capacity?,
        skew: skew?,
        audiences,
        clients,
    })
}
