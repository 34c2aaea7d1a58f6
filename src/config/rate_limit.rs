//! `[resources.rate_limit]`: how often a caller may reach a protected resource through
//! forward-auth, the gateway or the broker's own protected routes. A budget per kind of
//! credential, per window, keyed by what the operator picks (subject, client, API key,
//! client IP, or a combination), and optional budgets of their own for expensive tools.
//! On by default with budgets no normal client reaches; `enabled = false` turns it off.

use std::sync::Arc;
use std::time::Duration;

use super::Problem;
use super::raw::RawRateLimit;
use crate::domain::rate_limit::Rate;
use crate::domain::tool_policy::ToolPattern;

/// The default window: budgets are "per minute".
const DEFAULT_WINDOW: Duration = Duration::from_secs(60);
/// Default budgets per window: an interactive MCP client makes a handful of calls a
/// minute, an agent in a loop some dozens; these are far above both and stop only a
/// runaway or a leaked credential.
const DEFAULT_BROKER_TOKEN: u64 = 1200;
const DEFAULT_UPSTREAM_TOKEN: u64 = 1200;
const DEFAULT_API_KEY: u64 = 3000;
/// Requests without a verified caller (no token, or one refused), per client IP.
const DEFAULT_ANONYMOUS: u64 = 300;
/// The largest budget per window (GCRA's interval must stay at least a millisecond).
const MAX_BUDGET: u64 = 1_000_000;

/// `[resources.rate_limit]` of one resource.
#[derive(Debug, Clone)]
pub struct RateLimitConfig {
    /// `enabled` (default true): false lets every request through uncounted.
    pub enabled: bool,
    /// `key` (default `["subject", "client"]`): what identifies a verified caller.
    pub key: CallerKey,
    /// `broker_token`: budget per window for tokens the broker issued.
    pub broker_token: Policy,
    /// `upstream_token`: for the provider's tokens (JWTs and introspected ones).
    pub upstream_token: Policy,
    /// `api_key`: for `[[api_keys]]`.
    pub api_key: Policy,
    /// `anonymous`: for requests without a verified caller, always per client IP.
    pub anonymous: Policy,
    /// `[[resources.rate_limit.tools]]`: budgets of their own for some tools, spent
    /// by their `tools/call`s on top of the caller's budget.
    pub tools: Vec<ToolBudget>,
}

/// One part of a caller's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyPart {
    /// The verified `sub` (an API key's configured subject).
    Subject,
    /// The verified client id (`client_id` / `azp`).
    Client,
    /// The API key's name (for other credentials: absent).
    ApiKey,
    /// The client IP (the peer, or from `X-Forwarded-For` behind `server.trusted_proxies`).
    Ip,
}

/// What identifies a verified caller: the listed parts, those a credential lacks
/// skipped, the client IP when none is left.
#[derive(Debug, Clone)]
pub struct CallerKey {
    pub parts: Vec<KeyPart>,
    /// The parts joined with `+` (`subject+client`): the metric's `key_kind`.
    pub label: Arc<str>,
}

/// A budget: `quota` requests per `window_secs`, all of it usable at once (GCRA with a
/// burst of the whole quota), named as the `RateLimit-Policy` header names it. What
/// every request would otherwise format again is made here once: the name's part of a
/// counter key and the header fields.
#[derive(Debug, Clone)]
pub struct Policy {
    pub name: Arc<str>,
    pub quota: u32,
    pub window_secs: u64,
    pub rate: Rate,
    /// `r<len>:<name>|`: the rule's part of a counter key, after the caller's.
    pub key_part: Arc<str>,
    /// The name as an RFC 8941 sf-string (`"tool:notes_*"`), as `RateLimit` starts.
    pub quoted: Arc<str>,
    /// The `RateLimit-Policy` field value: `"name";q=quota;w=window`.
    pub header: Arc<str>,
}

/// A tool budget: every `tools/call` of a tool the pattern matches spends one.
#[derive(Debug, Clone)]
pub struct ToolBudget {
    pub pattern: ToolPattern,
    pub policy: Policy,
}

impl RateLimitConfig {
    /// The budget for a verified credential of `kind`.
    pub fn for_kind(&self, kind: crate::domain::rate_limit::CredentialBudget) -> &Policy {
        use crate::domain::rate_limit::CredentialBudget as K;
        match kind {
            K::BrokerToken => &self.broker_token,
            K::UpstreamToken => &self.upstream_token,
            K::ApiKey => &self.api_key,
            K::Anonymous => &self.anonymous,
        }
    }
}

/// The defaults: on, per minute, keyed by subject and client.
impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            key: default_key(),
            broker_token: Policy::new("broker_token", DEFAULT_BROKER_TOKEN, DEFAULT_WINDOW),
            upstream_token: Policy::new("upstream_token", DEFAULT_UPSTREAM_TOKEN, DEFAULT_WINDOW),
            api_key: Policy::new("api_key", DEFAULT_API_KEY, DEFAULT_WINDOW),
            anonymous: Policy::new("anonymous", DEFAULT_ANONYMOUS, DEFAULT_WINDOW),
            tools: Vec::new(),
        }
    }
}

impl Policy {
    fn new(name: &str, quota: u64, window: Duration) -> Self {
        let quota = u32::try_from(quota).unwrap_or(u32::MAX);
        let window_ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX);
        let quoted = sf_string(name);
        Self {
            name: Arc::from(name),
            quota,
            window_secs: window.as_secs(),
            rate: Rate {
                count: quota,
                period_ms: window_ms,
                burst: quota,
            },
            key_part: Arc::from(format!("r{}:{name}|", name.len())),
            header: Arc::from(format!("{quoted};q={quota};w={}", window.as_secs())),
            quoted: Arc::from(quoted),
        }
    }
}

/// An RFC 8941 sf-string: quoted, `"` and `\` escaped (policy names are printable
/// ASCII by configuration: credential kinds and tool patterns; anything else is `?`).
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

/// Checks `[resources.rate_limit]` of the resource whose keys `key` names.
pub(super) fn rate_limit(
    raw: Option<RawRateLimit>,
    key: &dyn Fn(&str) -> String,
    problems: &mut Vec<Problem>,
) -> Option<RateLimitConfig> {
    let before = problems.len();
    let raw = raw.unwrap_or_default();
    let at = |field: &str| key(&format!("rate_limit.{field}"));
    let window = match raw.window.as_deref().map(humantime::parse_duration) {
        None => DEFAULT_WINDOW,
        Some(Ok(w)) if w.as_secs() >= 1 && w.subsec_nanos() == 0 && w.as_secs() <= 86_400 => w,
        Some(_) => {
            problems.push(Problem::new(
                at("window"),
                "must be whole seconds from 1s to 24h, such as \"1m\"",
            ));
            DEFAULT_WINDOW
        }
    };
    let mut budget = |field: &str, value: Option<u64>, default: u64| {
        let quota = value.unwrap_or(default);
        if !(1..=MAX_BUDGET).contains(&quota) {
            problems.push(Problem::new(
                at(field),
                format!("{quota} is out of range (1..={MAX_BUDGET} per window)"),
            ));
        }
        Policy::new(field, quota, window)
    };
    let broker_token = budget("broker_token", raw.broker_token, DEFAULT_BROKER_TOKEN);
    let upstream_token = budget("upstream_token", raw.upstream_token, DEFAULT_UPSTREAM_TOKEN);
    let api_key = budget("api_key", raw.api_key, DEFAULT_API_KEY);
    let anonymous = budget("anonymous", raw.anonymous, DEFAULT_ANONYMOUS);
    let caller_key = caller_key(raw.key, &at("key"), problems);
    let mut tools: Vec<ToolBudget> = Vec::new();
    for (i, tool) in raw.tools.unwrap_or_default().into_iter().enumerate() {
        let at = |field: &str| at(&format!("tools[{i}].{field}"));
        let pattern = match tool.name.as_deref().map(ToolPattern::parse) {
            Some(Ok(pattern)) => pattern,
            Some(Err(e)) => {
                problems.push(Problem::new(at("name"), e));
                continue;
            }
            None => {
                problems.push(Problem::new(at("name"), "missing (required)"));
                continue;
            }
        };
        if tools.iter().any(|t| t.pattern == pattern) {
            problems.push(Problem::new(
                at("name"),
                format!("`{}` has a budget already", pattern.as_str()),
            ));
            continue;
        }
        let Some(quota) = tool.budget else {
            problems.push(Problem::new(at("budget"), "missing (required)"));
            continue;
        };
        if !(1..=MAX_BUDGET).contains(&quota) {
            problems.push(Problem::new(
                at("budget"),
                format!("{quota} is out of range (1..={MAX_BUDGET} per window)"),
            ));
            continue;
        }
        let name = format!("tool:{}", pattern.as_str());
        tools.push(ToolBudget {
            policy: Policy::new(&name, quota, window),
            pattern,
        });
    }
    (problems.len() == before).then(|| RateLimitConfig {
        enabled: raw.enabled.unwrap_or(true),
        key: caller_key.unwrap_or_else(default_key),
        broker_token,
        upstream_token,
        api_key,
        anonymous,
        tools,
    })
}

fn default_key() -> CallerKey {
    CallerKey {
        parts: vec![KeyPart::Subject, KeyPart::Client],
        label: Arc::from("subject+client"),
    }
}

fn caller_key(
    raw: Option<Vec<String>>,
    at: &str,
    problems: &mut Vec<Problem>,
) -> Option<CallerKey> {
    let raw = raw?;
    let mut parts = Vec::new();
    for name in &raw {
        let part = match name.as_str() {
            "subject" => KeyPart::Subject,
            "client" => KeyPart::Client,
            "api_key" => KeyPart::ApiKey,
            "ip" => KeyPart::Ip,
            other => {
                problems.push(Problem::new(
                    at,
                    format!("`{other}` is not one of subject, client, api_key, ip"),
                ));
                return None;
            }
        };
        if parts.contains(&part) {
            problems.push(Problem::new(at, format!("`{name}` is listed twice")));
            return None;
        }
        parts.push(part);
    }
    if parts.is_empty() {
        problems.push(Problem::new(
            at,
            "must list at least one of subject, client, api_key, ip",
        ));
        return None;
    }
    Some(CallerKey {
        label: Arc::from(raw.join("+")),
        parts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::raw::RawToolBudget;

    fn check(raw: RawRateLimit) -> Result<RateLimitConfig, Vec<String>> {
        let mut problems = Vec::new();
        let key = |field: &str| format!("resources[0].{field}");
        rate_limit(Some(raw), &key, &mut problems)
            .ok_or_else(|| problems.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn defaults_are_on_per_minute_keyed_by_subject_and_client() {
        let config = check(RawRateLimit::default()).unwrap();
        assert!(config.enabled);
        assert_eq!(&*config.key.label, "subject+client");
        assert_eq!(config.broker_token.quota, 1200);
        assert_eq!(config.broker_token.window_secs, 60);
        assert_eq!(config.anonymous.rate.burst, 300);
        assert!(config.tools.is_empty());
    }

    #[test]
    fn every_bad_value_is_named() {
        let problems = check(RawRateLimit {
            key: Some(vec!["subject".into(), "token".into()]),
            window: Some("1.5s".into()),
            api_key: Some(0),
            tools: Some(vec![
                RawToolBudget {
                    name: Some("notes write".into()),
                    budget: Some(5),
                },
                RawToolBudget {
                    name: Some("notes_*".into()),
                    budget: None,
                },
            ]),
            ..Default::default()
        })
        .unwrap_err();
        let joined = problems.join("\n");
        for needle in [
            "resources[0].rate_limit.window",
            "resources[0].rate_limit.api_key: 0 is out of range",
            "resources[0].rate_limit.key: `token` is not one of",
            "resources[0].rate_limit.tools[0].name",
            "resources[0].rate_limit.tools[1].budget: missing",
        ] {
            assert!(joined.contains(needle), "{needle} in:\n{joined}");
        }
    }

    #[test]
    fn a_tool_budget_is_named_after_its_pattern() {
        let config = check(RawRateLimit {
            key: Some(vec!["api_key".into(), "ip".into()]),
            window: Some("10s".into()),
            tools: Some(vec![RawToolBudget {
                name: Some("notes_*".into()),
                budget: Some(3),
            }]),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(&*config.key.label, "api_key+ip");
        assert_eq!(&*config.tools[0].policy.name, "tool:notes_*");
        assert_eq!(config.tools[0].policy.rate.interval(), 3333);
    }

    #[test]
    fn a_policys_header_fields_follow_the_drafts_syntax() {
        let policy = Policy::new("tool:notes_*", 10, Duration::from_secs(60));
        assert_eq!(&*policy.header, "\"tool:notes_*\";q=10;w=60");
        assert_eq!(&*policy.quoted, "\"tool:notes_*\"");
        assert_eq!(&*policy.key_part, "r12:tool:notes_*|");
        assert_eq!(sf_string("a\"b\\c\u{e9}"), "\"a\\\"b\\\\c?\"");
    }
}
