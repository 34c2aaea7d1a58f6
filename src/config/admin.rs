//! `[admin]` and `[scope_cache]`: the operator's API (off unless a token is set) and
//! how long the effective scopes of a grant are trusted before the store is read again.

use std::time::Duration;

use serde::Deserialize;

use super::sections::{Checker, optional_duration};
use super::{Environment, Problem, Secret};

/// `[admin]` as written.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    pub token: Option<String>,
}

/// `[audit]` as written.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawAudit {
    pub pseudonymize_subjects: Option<bool>,
    pub subject_key: Option<String>,
}

/// `[scope_cache]` as written.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawScopeCache {
    pub ttl: Option<String>,
    pub capacity: Option<u64>,
}

/// `[admin]`
#[derive(Debug, Clone, Default)]
pub struct AdminConfig {
    /// `token`: the bearer token of `/admin/*` (inline, `env:` or `file:`; at least 32
    /// bytes). Without it the admin API is off (404).
    pub token: Option<Secret>,
}

/// `[audit]`: the audit trail (events of target `audit`).
#[derive(Debug, Clone, Default)]
pub struct AuditConfig {
    /// `pseudonymize_subjects` with `subject_key`: when set, audit events carry
    /// `base64url(HMAC-SHA256(key, subject))` instead of the subject, the same on every
    /// replica that shares the key. `None`: subjects are written as they are.
    pub subject_key: Option<Secret>,
}

/// `[scope_cache]`
#[derive(Debug, Clone)]
pub struct ScopeCacheConfig {
    /// `ttl`: how long a grant's effective scopes are used before the store is read
    /// again (default 5 min; at most 1 h). Invalidation (revoke, refresh-token reuse,
    /// `POST /admin/invalidate`) takes effect at once regardless.
    pub ttl: Duration,
    /// `capacity`: grants remembered (default 100 000).
    pub capacity: u64,
}

impl Default for ScopeCacheConfig {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(300),
            capacity: 100_000,
        }
    }
}

/// A secret a guess must not find (the admin token, the audit key): 32 bytes at least.
fn long_secret(spec: &str, env: &Environment) -> Result<Secret, String> {
    let secret = Secret::resolve(spec, env)?;
    if secret.expose().len() < 32 {
        return Err("must be at least 32 bytes (e.g. `openssl rand -hex 32`)".to_owned());
    }
    Ok(secret)
}

pub fn admin(raw: RawAdmin, env: &Environment, problems: &mut Vec<Problem>) -> Option<AdminConfig> {
    let mut c = Checker::new("admin", problems);
    let token = match raw.token {
        None => Some(None),
        some => c
            .parse("token", some, |spec| long_secret(&spec, env))
            .map(Some),
    };
    if !c.ok() {
        return None;
    }
    Some(AdminConfig { token: token? })
}

pub fn audit(raw: RawAudit, env: &Environment, problems: &mut Vec<Problem>) -> Option<AuditConfig> {
    let mut c = Checker::new("audit", problems);
    let key = match (raw.pseudonymize_subjects.unwrap_or(false), raw.subject_key) {
        (false, None) => Some(None),
        (false, Some(_)) => {
            c.report(
                "subject_key",
                "is only used with pseudonymize_subjects = true".to_owned(),
            );
            None
        }
        (true, None) => {
            c.report(
                "subject_key",
                "is required with pseudonymize_subjects = true (e.g. `env:AUDIT_KEY` holding `openssl rand -hex 32`)".to_owned(),
            );
            None
        }
        (true, some) => c
            .parse("subject_key", some, |spec| long_secret(&spec, env))
            .map(Some),
    };
    if !c.ok() {
        return None;
    }
    Some(AuditConfig { subject_key: key? })
}

pub fn scope_cache(raw: RawScopeCache, problems: &mut Vec<Problem>) -> Option<ScopeCacheConfig> {
    let defaults = ScopeCacheConfig::default();
    let mut c = Checker::new("scope_cache", problems);
    let ttl = optional_duration(&mut c, "ttl", raw.ttl, defaults.ttl);
    if ttl.is_some_and(|t| t > Duration::from_secs(3600)) {
        c.report(
            "ttl",
            "must be at most 1h: scope changes made elsewhere wait this long",
        );
    }
    let capacity = c.parse(
        "capacity",
        Some(raw.capacity.unwrap_or(defaults.capacity)),
        |n| {
            if n == 0 {
                Err("must be at least 1".to_owned())
            } else {
                Ok(n)
            }
        },
    );
    if !c.ok() {
        return None;
    }
    Some(ScopeCacheConfig {
        ttl: ttl?,
        capacity: capacity?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_admin_token_is_refused() {
        let mut problems = Vec::new();
        let raw = RawAdmin {
            token: Some("short".to_owned()),
        };
        assert!(admin(raw, &Environment::default(), &mut problems).is_none());
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].to_string().contains("admin.token"),
            "{problems:?}"
        );
    }

    #[test]
    fn the_scope_cache_ttl_is_bounded() {
        let mut problems = Vec::new();
        let raw = RawScopeCache {
            ttl: Some("2h".to_owned()),
            capacity: None,
        };
        assert!(scope_cache(raw, &mut problems).is_none());
        assert!(
            problems[0].to_string().contains("scope_cache.ttl"),
            "{problems:?}"
        );
        let ok = scope_cache(RawScopeCache::default(), &mut Vec::new()).unwrap();
        assert_eq!(ok.ttl, Duration::from_secs(300));
    }
}
