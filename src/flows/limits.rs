//! Rate limits on the protected resources (`[resources.rate_limit]`), as the access
//! flow applies them: a budget per kind of credential, keyed by what the resource
//! configures, and budgets of their own for some tools. GCRA (`domain::rate_limit`)
//! over the store's counters: this process's memory (memory and sqlite backends), or
//! Redis, where every replica spends one budget. A key is the resource, the budget and
//! the verified caller's subject / client / API key name / client IP — never a token;
//! Redis holds only its SHA-256.
//!
//! The key needs the verified caller (a key read from an unverified token would let
//! anyone spend someone else's budget, or dodge their own with made-up claims), so a
//! verified caller is counted right after its token is verified and before every
//! authorization decision (scopes, tool rules); a request without a verified caller
//! (no token, or a refused one) spends the resource's `anonymous` budget by client IP.
//! Requests the broker cannot judge (400) spend nothing.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use ipnet::IpNet;

use crate::clock::Clock;
use crate::config::{KeyPart, Policy, ResourceConfig};
use crate::domain::client_ip::client_ip;
use crate::domain::rate_limit::{CredentialBudget, left, retry_after_secs};
use crate::domain::tool_policy::ToolPattern;
use crate::store::{RateDecision, RateLimits};
use crate::telemetry::metrics::Metrics;
use crate::tokens::{CredentialKind, Principal};

/// The one counter name every resource budget lives under (keys tell them apart).
const COUNTER: &str = "access";

/// The rate limits of every protected resource, over shared counters.
pub struct Limits {
    counters: Arc<dyn RateLimits>,
    clock: Clock,
    metrics: Metrics,
    trusted_proxies: Arc<[IpNet]>,
}

/// Where a request came from: the socket peer and, believed only from a trusted
/// proxy, `X-Forwarded-For`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Origin<'r> {
    pub peer: Option<IpAddr>,
    pub forwarded_for: Option<&'r str>,
}

/// A budget as a response reports it (draft-ietf-httpapi-ratelimit-headers): the
/// policy (`RateLimit-Policy: "name";q=…;w=…`) and what is left of it
/// (`RateLimit: "name";r=…;t=…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Budget {
    pub policy: Arc<str>,
    pub quota: u32,
    pub window_secs: u64,
    pub remaining: u64,
    /// Seconds until the whole quota is back.
    pub reset_secs: u64,
}

/// Why a request was not counted in.
#[derive(Debug)]
pub enum Limited {
    /// Over a budget (reported with nothing left): retry after this many seconds.
    Over {
        budget: Budget,
        retry_after_secs: u64,
    },
    /// The counters cannot be reached (Redis down): nothing is known, so nothing is
    /// admitted, rather than every request or none without a word (503).
    Unavailable,
}

/// Who spends: the verified caller, or nobody (anonymous, by IP).
pub type Caller<'p> = Option<&'p Principal>;

impl Limits {
    pub fn new(
        counters: Arc<dyn RateLimits>,
        clock: Clock,
        metrics: Metrics,
        trusted_proxies: Arc<[IpNet]>,
    ) -> Self {
        Self {
            counters,
            clock,
            metrics,
            trusted_proxies,
        }
    }

    /// Spends one request of `caller`'s budget on `resource`, and one of each tool
    /// budget per call `uses` counts for its pattern. `Ok` carries the tightest budget
    /// spent (the one with least left, for the `RateLimit` headers); `None` when the
    /// resource has its limits off.
    pub async fn admit(
        &self,
        resource: &ResourceConfig,
        origin: Origin<'_>,
        caller: Caller<'_>,
        uses: impl Fn(&ToolPattern) -> u32,
    ) -> Result<Option<Budget>, Limited> {
        let config = &resource.rate_limit;
        if !config.enabled {
            return Ok(None);
        }
        let kind = caller.map_or(CredentialBudget::Anonymous, |p| budget_of(p.kind));
        let ip = || {
            let peer = origin.peer.unwrap_or(IpAddr::from([0, 0, 0, 0]));
            client_ip(peer, origin.forwarded_for, &self.trusted_proxies)
        };
        let mut key = String::with_capacity(96);
        let key_kind = caller_key(&mut key, resource, caller, ip);
        let mut tightest = self
            .spend(resource, config.for_kind(kind), &key, key_kind)
            .await?;
        for tool in &config.tools {
            for _ in 0..uses(&tool.pattern) {
                let spent = self.spend(resource, &tool.policy, &key, key_kind).await?;
                if spent.remaining < tightest.remaining {
                    tightest = spent;
                }
            }
        }
        Ok(Some(tightest))
    }

    /// One event of `policy` for the caller whose key is `caller`.
    async fn spend(
        &self,
        resource: &ResourceConfig,
        policy: &Policy,
        caller: &str,
        key_kind: &str,
    ) -> Result<Budget, Limited> {
        let mut key = String::with_capacity(caller.len() + policy.name.len() + 8);
        part(&mut key, &policy.name);
        key.push_str(caller);
        let now_ms = self
            .clock
            .now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let budget = |remaining, reset_secs| Budget {
            policy: Arc::clone(&policy.name),
            quota: policy.quota,
            window_secs: policy.window_secs,
            remaining,
            reset_secs,
        };
        match self
            .counters
            .admit(COUNTER, &key, policy.rate, now_ms)
            .await
        {
            Ok(RateDecision::Admitted { state }) => {
                let left = left(state, now_ms, policy.rate);
                Ok(budget(left.remaining, left.reset_secs))
            }
            Ok(RateDecision::Refused { wait_ms }) => {
                let retry_after_secs = retry_after_secs(wait_ms);
                self.metrics
                    .rate_limited(&resource.uri, key_kind, &policy.name);
                tracing::info!(resource = %resource.uri, key_kind, rule = %policy.name, retry_after_secs, "request refused: rate limit");
                Err(Limited::Over {
                    budget: budget(0, retry_after_secs),
                    retry_after_secs,
                })
            }
            Err(error) => {
                tracing::warn!(%error, resource = %resource.uri, "rate-limit counters unavailable: request refused");
                Err(Limited::Unavailable)
            }
        }
    }
}

/// The budget a verified credential spends.
fn budget_of(kind: CredentialKind) -> CredentialBudget {
    match kind {
        CredentialKind::BrokerJwt => CredentialBudget::BrokerToken,
        CredentialKind::UpstreamJwt | CredentialKind::Introspected => {
            CredentialBudget::UpstreamToken
        }
        CredentialKind::ApiKey => CredentialBudget::ApiKey,
    }
}

/// Writes the caller's key for `resource` into `key` and answers its `key_kind`: the
/// configured parts the credential has (an anonymous caller has none), or the client
/// IP when none is left. Each part is length-prefixed, so no subject or client id can
/// be made to read as another combination.
fn caller_key<'c>(
    key: &mut String,
    resource: &'c ResourceConfig,
    caller: Caller<'_>,
    ip: impl Fn() -> IpAddr,
) -> &'c str {
    part(key, &resource.uri);
    let config = &resource.rate_limit.key;
    let mut any = false;
    if let Some(principal) = caller {
        for kind in &config.parts {
            let value = match kind {
                KeyPart::Subject => Some(principal.subject.as_str()),
                KeyPart::Client => principal.client_id.as_deref(),
                KeyPart::ApiKey => principal
                    .client_id
                    .as_deref()
                    .filter(|_| principal.kind == CredentialKind::ApiKey),
                KeyPart::Ip => {
                    let _ = write!(key, "i{}|", ip());
                    any = true;
                    continue;
                }
            };
            if let Some(value) = value {
                key.push(match kind {
                    KeyPart::Subject => 's',
                    KeyPart::Client => 'c',
                    _ => 'k',
                });
                part(key, value);
                any = true;
            }
        }
    }
    if any {
        return config.label.as_ref();
    }
    let _ = write!(key, "i{}|", ip());
    "ip"
}

/// `len:value|`
fn part(key: &mut String, value: &str) {
    let _ = write!(key, "{}:{value}|", value.len());
}

impl Budget {
    /// The `RateLimit-Policy` field value: `"name";q=quota;w=window`.
    pub fn policy_header(&self) -> String {
        format!(
            "{};q={};w={}",
            sf_string(&self.policy),
            self.quota,
            self.window_secs
        )
    }

    /// The `RateLimit` field value: `"name";r=remaining;t=reset`.
    pub fn header(&self) -> String {
        format!(
            "{};r={};t={}",
            sf_string(&self.policy),
            self.remaining,
            self.reset_secs
        )
    }
}

/// An RFC 8941 sf-string: quoted, `"` and `\` escaped (policy names are printable
/// ASCII by configuration: credential kinds and tool patterns).
fn sf_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            _ => out.push('?'),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_follow_the_drafts_syntax() {
        let budget = Budget {
            policy: Arc::from("tool:notes_*"),
            quota: 10,
            window_secs: 60,
            remaining: 3,
            reset_secs: 42,
        };
        assert_eq!(budget.policy_header(), "\"tool:notes_*\";q=10;w=60");
        assert_eq!(budget.header(), "\"tool:notes_*\";r=3;t=42");
        assert_eq!(sf_string("a\"b\\c\u{e9}"), "\"a\\\"b\\\\c?\"");
    }

    #[test]
    fn keys_separate_parts_so_none_reads_as_another() {
        let resource = crate::config::ResourceConfig {
            uri: "https://mcp.example/mcp".into(),
            name: None,
            audiences: vec![],
            required_scopes: Default::default(),
            scopes_supported: vec![],
            path: "/mcp".into(),
            exchange_audience: None,
            tools: Default::default(),
            rate_limit: Default::default(),
        };
        let who = |subject: &str, client: &str| Principal {
            subject: subject.into(),
            client_id: Some(client.into()),
            kind: CredentialKind::BrokerJwt,
            scopes: Default::default(),
            expires_at: None,
            grant_id: None,
            tools: None,
        };
        let ip = || IpAddr::from([192, 0, 2, 1]);
        let (mut a, mut b, mut anonymous) = (String::new(), String::new(), String::new());
        let kind = caller_key(&mut a, &resource, Some(&who("a|b", "c")), ip);
        caller_key(&mut b, &resource, Some(&who("a", "b|c")), ip);
        assert_eq!(kind, "subject+client");
        assert_ne!(a, b);
        assert_eq!(caller_key(&mut anonymous, &resource, None, ip), "ip");
        assert!(anonymous.ends_with("i192.0.2.1|"), "{anonymous}");
    }
}
