//! The operator's view of a caller's budgets on a resource, and their reset
//! (`/admin/rate-limits`): the operator names the resource and what the caller is
//! known by — subject, client id, API key name, client IP — and the key is made as the
//! limiter makes it (`caller_key`; on Redis hashed the same way), so the view shows
//! exactly the counters the caller spends. A reset forgets them: on Redis for every
//! replica at once, on memory and sqlite in this process.

use std::net::IpAddr;
use std::sync::Arc;

use super::{COUNTER, NoIp, Who, caller_key, now_ms, rule_key};
use crate::clock::Clock;
use crate::config::{KeyPart, Policy, ResourceConfig};
use crate::domain::rate_limit::left;
use crate::store::RateLimits;
use crate::telemetry::audit::{AdminTarget, AuditEvent};
use crate::telemetry::metrics::Metrics;

/// How an API key's principal names its client (`tokens::api_keys`).
const API_KEY_PREFIX: &str = "api-key:";

/// The budgets of every protected resource, for the operator.
pub struct Budgets {
    resources: Arc<[ResourceConfig]>,
    counters: Arc<dyn RateLimits>,
    clock: Clock,
    metrics: Metrics,
}

/// Whose budgets: the resource by its configured URI, and what the caller is known
/// by. Give every part of the resource's key the caller has; only the IP alone names
/// the anonymous budget (and that of a verified caller none of whose parts is known).
#[derive(Debug, Clone, Copy, Default)]
pub struct BudgetQuery<'a> {
    pub resource: &'a str,
    pub subject: Option<&'a str>,
    pub client: Option<&'a str>,
    /// The API key's configured `name`.
    pub api_key: Option<&'a str>,
    pub ip: Option<&'a str>,
}

/// What a caller has left of each budget that applies to it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BudgetReport {
    pub resource: String,
    /// Whether the resource counts at all (`enabled = false`: no budgets).
    pub enabled: bool,
    /// What keyed the caller (the configured key, or `ip`), as the metric names it.
    pub key_kind: String,
    pub budgets: Vec<RuleBudget>,
}

/// One budget: the rule as `RateLimit-Policy` names it, its quota per window, and
/// what the caller has left of it now.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RuleBudget {
    pub rule: String,
    pub limit: u32,
    pub window_secs: u64,
    pub remaining: u64,
    /// Seconds until the whole quota is back (0: it is).
    pub reset_after_secs: u64,
}

/// Why a budget cannot be shown or reset.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BudgetError {
    /// No configured resource has this URI (404).
    #[error("no resource `{0}` is configured")]
    UnknownResource(String),
    /// The query names no caller, or a part the resource's key does not use, or lacks
    /// one it does (400).
    #[error("{0}")]
    BadKey(String),
    /// The counters cannot be reached (503).
    #[error("the rate-limit counters are unavailable")]
    Unavailable,
}

impl Budgets {
    pub fn new(
        resources: Arc<[ResourceConfig]>,
        counters: Arc<dyn RateLimits>,
        clock: Clock,
        metrics: Metrics,
    ) -> Self {
        Self {
            resources,
            counters,
            clock,
            metrics,
        }
    }

    /// What the caller has left of every budget that applies to it; changes nothing.
    pub async fn show(&self, query: BudgetQuery<'_>) -> Result<BudgetReport, BudgetError> {
        let (resource, key, key_kind, rules) = self.rules(query)?;
        let now = now_ms(&self.clock);
        let mut budgets = Vec::with_capacity(rules.len());
        for policy in rules {
            let state = self
                .counters
                .peek(COUNTER, &rule_key(policy, &key))
                .await
                .map_err(|error| {
                    tracing::warn!(%error, "rate-limit counters unavailable: budget not read");
                    BudgetError::Unavailable
                })?;
            let left = left(state.unwrap_or(now).max(now), now, policy.rate);
            budgets.push(RuleBudget {
                rule: policy.name.to_string(),
                limit: policy.quota,
                window_secs: policy.window_secs,
                remaining: left.remaining,
                reset_after_secs: left.reset_secs,
            });
        }
        Ok(report(resource, key_kind, budgets))
    }

    /// Gives the caller every budget that applies to it back whole; idempotent. The
    /// answer is the view afterwards. Recorded in the audit trail as an `admin_action`
    /// by `caller` (the operator's address).
    pub async fn reset(
        &self,
        query: BudgetQuery<'_>,
        caller: Option<IpAddr>,
    ) -> Result<BudgetReport, BudgetError> {
        let (_, key, key_kind, rules) = self.rules(query)?;
        for policy in &rules {
            self.counters
                .reset(COUNTER, &rule_key(policy, &key))
                .await
                .map_err(|error| {
                    tracing::warn!(%error, "rate-limit counters unavailable: budget not reset");
                    BudgetError::Unavailable
                })?;
        }
        tracing::info!(
            resource = query.resource,
            key_kind,
            rules = rules.len(),
            "rate-limit budgets reset by the operator"
        );
        let caller = caller.map(|ip| ip.to_string()).unwrap_or_default();
        self.metrics.audit(AuditEvent::AdminAction {
            caller: &caller,
            action: "reset_rate_limits",
            target: AdminTarget::Budget {
                resource: query.resource,
                key_kind,
            },
            count: rules.len() as u64,
        });
        self.show(query).await
    }

    /// The resource, the caller's key, its kind, and the budgets that key spends.
    fn rules<'s>(
        &'s self,
        query: BudgetQuery<'_>,
    ) -> Result<(&'s ResourceConfig, String, &'s str, Vec<&'s Policy>), BudgetError> {
        let resource = self
            .resources
            .iter()
            .find(|r| r.uri == query.resource)
            .ok_or_else(|| BudgetError::UnknownResource(query.resource.to_owned()))?;
        let config = &resource.rate_limit;
        let ip = match query.ip.map(str::parse::<IpAddr>) {
            None => None,
            Some(Ok(ip)) => Some(ip.to_canonical()),
            Some(Err(_)) => {
                return Err(BudgetError::BadKey("`ip` is not an IP address".to_owned()));
            }
        };
        let named = [
            (KeyPart::Subject, "subject", query.subject.is_some()),
            (KeyPart::Client, "client", query.client.is_some()),
            (KeyPart::ApiKey, "api_key", query.api_key.is_some()),
        ];
        for (part, name, given) in named {
            if given && !config.key.parts.contains(&part) {
                return Err(BudgetError::BadKey(format!(
                    "this resource keys callers by {}; `{name}` is not part of it",
                    config.key.label
                )));
            }
        }
        let only_ip = named.iter().all(|(_, _, given)| !given);
        if !only_ip && ip.is_some() && !config.key.parts.contains(&KeyPart::Ip) {
            return Err(BudgetError::BadKey(format!(
                "this resource keys callers by {}; `ip` is not part of it (alone it names the anonymous budget)",
                config.key.label
            )));
        }
        if only_ip && ip.is_none() {
            return Err(BudgetError::BadKey(format!(
                "name the caller: this resource keys callers by {} (or ip for the anonymous budget)",
                config.key.label
            )));
        }
        // An API key's principal carries `api-key:<name>`; the operator names the key.
        let api_key = query.api_key.map(|name| {
            let name = name.strip_prefix(API_KEY_PREFIX).unwrap_or(name);
            format!("{API_KEY_PREFIX}{name}")
        });
        let who = Who {
            subject: query.subject,
            client: query.client,
            api_key: api_key.as_deref(),
        };
        let mut key = String::with_capacity(96);
        let key_kind = caller_key(&mut key, resource, Some(who), || ip).map_err(|NoIp| {
            BudgetError::BadKey(format!(
                "this resource keys callers by {}: give `ip` too",
                config.key.label
            ))
        })?;
        let mut rules: Vec<&Policy> = Vec::new();
        if config.enabled {
            if query.api_key.is_none() {
                rules.extend([&config.broker_token, &config.upstream_token]);
            }
            rules.push(&config.api_key);
            if only_ip {
                rules.push(&config.anonymous);
            }
            rules.extend(config.tools.iter().map(|tool| &tool.policy));
        }
        Ok((resource, key, key_kind, rules))
    }
}

fn report(resource: &ResourceConfig, key_kind: &str, budgets: Vec<RuleBudget>) -> BudgetReport {
    BudgetReport {
        resource: resource.uri.clone(),
        enabled: resource.rate_limit.enabled,
        key_kind: key_kind.to_owned(),
        budgets,
    }
}
