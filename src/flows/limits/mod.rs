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

mod admin;

use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::UNIX_EPOCH;

pub use admin::{BudgetError, BudgetQuery, BudgetReport, Budgets, RuleBudget};

use crate::clock::Clock;
use crate::config::{KeyPart, Policy, ResourceConfig};
use crate::domain::rate_limit::{CredentialBudget, left, retry_after_secs};
use crate::domain::tool_policy::ToolPattern;
use crate::flows::addresses::Addresses;
pub use crate::flows::addresses::Origin;
use crate::store::{RateDecision, RateLimits};
use crate::telemetry::audit::AuditEvent;
use crate::telemetry::metrics::Metrics;
use crate::tokens::{CredentialKind, Principal};

/// The one counter name every resource budget lives under (keys tell them apart).
const COUNTER: &str = "access";

/// The rate limits of every protected resource, over shared counters.
pub struct Limits {
    counters: Arc<dyn RateLimits>,
    clock: Clock,
    metrics: Metrics,
    addresses: Arc<Addresses>,
}

/// A budget as a response reports it (draft-ietf-httpapi-ratelimit-headers): the
/// policy (`RateLimit-Policy: "name";q=…;w=…`) and what is left of it
/// (`RateLimit: "name";r=…;t=…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Budget {
    /// The policy's name as an sf-string (`Policy::quoted`).
    pub quoted: Arc<str>,
    /// The `RateLimit-Policy` value (`Policy::header`).
    pub policy_header: Arc<str>,
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
    /// Limits over `counters`; `addresses` works out a request's client IP.
    pub fn new(
        counters: Arc<dyn RateLimits>,
        clock: Clock,
        metrics: Metrics,
        addresses: Arc<Addresses>,
    ) -> Self {
        Self {
            counters,
            clock,
            metrics,
            addresses,
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
        let ip = || Some(self.addresses.client_ip(origin));
        // One buffer for every counter this request spends: the caller's key, then
        // each rule's part in turn (`Policy::key_part`, made at start-up).
        let mut key = String::with_capacity(128);
        let who = caller.map(Who::of);
        // A verified caller's IP is always at hand, so a key can always be made.
        let Ok(key_kind) = caller_key(&mut key, resource, who, ip) else {
            return Err(Limited::Unavailable);
        };
        let spending = Spending {
            resource,
            key_kind,
            caller_len: key.len(),
            now_ms: now_ms(&self.clock),
        };
        let mut tightest = self
            .spend(&spending, config.for_kind(kind), &mut key)
            .await?;
        for tool in &config.tools {
            for _ in 0..uses(&tool.pattern) {
                let spent = self.spend(&spending, &tool.policy, &mut key).await?;
                if spent.remaining < tightest.remaining {
                    tightest = spent;
                }
            }
        }
        Ok(Some(tightest))
    }

    /// One event of `policy` for the caller whose key `key` starts with.
    async fn spend(
        &self,
        spending: &Spending<'_>,
        policy: &Policy,
        key: &mut String,
    ) -> Result<Budget, Limited> {
        let Spending {
            resource,
            key_kind,
            caller_len,
            now_ms,
        } = *spending;
        key.truncate(caller_len);
        key.push_str(&policy.key_part);
        let budget = |remaining, reset_secs| Budget {
            quoted: Arc::clone(&policy.quoted),
            policy_header: Arc::clone(&policy.header),
            quota: policy.quota,
            window_secs: policy.window_secs,
            remaining,
            reset_secs,
        };
        match self.counters.admit(COUNTER, key, policy.rate, now_ms).await {
            Ok(RateDecision::Admitted { state }) => {
                let left = left(state, now_ms, policy.rate);
                Ok(budget(left.remaining, left.reset_secs))
            }
            Ok(RateDecision::Refused { wait_ms }) => {
                let retry_after_secs = retry_after_secs(wait_ms);
                self.metrics
                    .rate_limited(&resource.uri, key_kind, &policy.name);
                self.metrics.audit(AuditEvent::RateLimited {
                    resource: &resource.uri,
                    key_kind,
                    rule: &policy.name,
                });
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

/// What every counter of one request shares: the resource, how the caller was keyed,
/// where the caller's part of the key ends, and the time.
#[derive(Clone, Copy)]
struct Spending<'r> {
    resource: &'r ResourceConfig,
    key_kind: &'r str,
    caller_len: usize,
    now_ms: u64,
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

/// What identifies a caller, as far as a key can use it: a verified principal's
/// subject, client id and API key name (an operator's query names the same).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Who<'a> {
    pub subject: Option<&'a str>,
    pub client: Option<&'a str>,
    pub api_key: Option<&'a str>,
}

impl<'a> Who<'a> {
    fn of(principal: &'a Principal) -> Self {
        Self {
            subject: Some(principal.subject.as_str()),
            client: principal.client_id.as_deref(),
            api_key: principal
                .client_id
                .as_deref()
                .filter(|_| principal.kind == CredentialKind::ApiKey),
        }
    }
}

/// A key part the resource needs and the caller's description lacks: the client IP
/// (only an operator's query can lack it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NoIp;

/// Writes the caller's key for `resource` into `key` and answers its `key_kind`: the
/// configured parts the caller has (an anonymous caller, `None`, has none), or the
/// client IP when none is left. Each part is length-prefixed, so no subject or client
/// id can be made to read as another combination. The limiter and the operator's
/// budget view both key through here, so they name the same counters.
pub(crate) fn caller_key<'c>(
    key: &mut String,
    resource: &'c ResourceConfig,
    caller: Option<Who<'_>>,
    ip: impl Fn() -> Option<IpAddr>,
) -> Result<&'c str, NoIp> {
    part(key, &resource.uri);
    let config = &resource.rate_limit.key;
    let mut any = false;
    if let Some(who) = caller {
        for kind in &config.parts {
            let (tag, value) = match kind {
                KeyPart::Subject => ('s', who.subject),
                KeyPart::Client => ('c', who.client),
                KeyPart::ApiKey => ('k', who.api_key),
                KeyPart::Ip => {
                    let _ = write!(key, "i{}|", ip().ok_or(NoIp)?);
                    any = true;
                    continue;
                }
            };
            if let Some(value) = value {
                key.push(tag);
                part(key, value);
                any = true;
            }
        }
    }
    if any {
        return Ok(config.label.as_ref());
    }
    let _ = write!(key, "i{}|", ip().ok_or(NoIp)?);
    Ok("ip")
}

/// The broker's clock in milliseconds since the epoch, as the counters take it.
fn now_ms(clock: &Clock) -> u64 {
    clock
        .now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The counter of `policy` for the caller whose key is `caller` (as `spend` makes it).
fn rule_key(policy: &Policy, caller: &str) -> String {
    let mut key = String::with_capacity(caller.len() + policy.key_part.len());
    key.push_str(caller);
    key.push_str(&policy.key_part);
    key
}

/// `len:value|`
fn part(key: &mut String, value: &str) {
    push_decimal(key, value.len() as u64);
    key.push(':');
    key.push_str(value);
    key.push('|');
}

/// `n` in decimal, without the formatting machinery (this runs on every request).
fn push_decimal(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.push_str(std::str::from_utf8(&digits[at..]).unwrap_or("0"));
}

impl Budget {
    /// The `RateLimit-Policy` field value: `"name";q=quota;w=window`.
    pub fn policy_header(&self) -> &str {
        &self.policy_header
    }

    /// The `RateLimit` field value: `"name";r=remaining;t=reset`.
    pub fn header(&self) -> String {
        let mut out = String::with_capacity(self.quoted.len() + 28);
        out.push_str(&self.quoted);
        out.push_str(";r=");
        push_decimal(&mut out, self.remaining);
        out.push_str(";t=");
        push_decimal(&mut out, self.reset_secs);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_follow_the_drafts_syntax() {
        let budget = Budget {
            quoted: Arc::from("\"tool:notes_*\""),
            policy_header: Arc::from("\"tool:notes_*\";q=10;w=60"),
            quota: 10,
            window_secs: 60,
            remaining: 3,
            reset_secs: 42,
        };
        assert_eq!(budget.policy_header(), "\"tool:notes_*\";q=10;w=60");
        assert_eq!(budget.header(), "\"tool:notes_*\";r=3;t=42");
        let mut decimal = String::new();
        for n in [0, 7, 10, 1_234_567, u64::MAX] {
            decimal.clear();
            push_decimal(&mut decimal, n);
            assert_eq!(decimal, n.to_string());
        }
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
            authority: Default::default(),
            exchange_audience: None,
            tools: Default::default(),
            rate_limit: Default::default(),
            addresses: Default::default(),
            allow: None,
        };
        let who = |subject: &str, client: &str| Principal {
            subject: subject.into(),
            client_id: Some(client.into()),
            kind: CredentialKind::BrokerJwt,
            scopes: Default::default(),
            expires_at: None,
            grant_id: None,
            tools: None,
            identity: None,
        };
        let ip = || Some(IpAddr::from([192, 0, 2, 1]));
        let (mut a, mut b, mut anonymous) = (String::new(), String::new(), String::new());
        let (alice, bob) = (who("a|b", "c"), who("a", "b|c"));
        let kind = caller_key(&mut a, &resource, Some(Who::of(&alice)), ip);
        caller_key(&mut b, &resource, Some(Who::of(&bob)), ip).unwrap();
        assert_eq!(kind, Ok("subject+client"));
        assert_ne!(a, b);
        assert_eq!(caller_key(&mut anonymous, &resource, None, ip), Ok("ip"));
        assert!(anonymous.ends_with("i192.0.2.1|"), "{anonymous}");
    }
}
