//! The typed sections of the login path: `[sessions]`, `[consent]`, `[tokens]` and
//! `[refresh]`, checked from their raw forms like every other section.

use std::path::PathBuf;
use std::time::Duration;

use super::raw::{RawConsent, RawRefresh, RawSessions, RawTokens};
use super::sections::{Checker, optional_duration};
use super::{Environment, Problem, Secret};

/// `[sessions]`
#[derive(Debug, Clone)]
pub struct SessionsConfig {
    /// `ttl`: how long a login may wait for consent and the provider (default 10 min).
    pub ttl: Duration,
    /// `code_ttl`: the life of the one-time code the client redeems (default 60 s).
    pub code_ttl: Duration,
    /// `max_sessions`: logins in progress at once; beyond it new logins get 503 (default 100 000).
    pub max_sessions: usize,
    /// `max_codes`: unredeemed codes at once (default 100 000).
    pub max_codes: usize,
    /// `run_interval`: how often expired sessions and codes are dropped (default 30 s).
    pub run_interval: Duration,
}

/// `[consent]`
#[derive(Debug, Clone)]
pub struct ConsentConfig {
    /// `remember_for`: how long a browser's approval of a client and scope set is
    /// remembered (signed cookie; default 30 days; `0s` never remembers).
    pub remember_for: Duration,
    /// `cookie_key`: the key signing that cookie (inline, `env:` or `file:`; at least
    /// 32 bytes). Default: one random key kept in a sqlite or Redis store (created
    /// once, sealed; shared by replicas, kept across restarts); with the memory store,
    /// random per process.
    pub cookie_key: Option<Secret>,
}

/// `[tokens]`
#[derive(Debug, Clone)]
pub struct TokensConfig {
    /// `mode`: `issue` (default: the broker signs its own short-lived JWT access
    /// tokens) or `passthrough` (the provider's access tokens as it returned them).
    pub mode: TokenMode,
    /// `access_token_ttl`: life of an issued access token (default 15 min, 1 min..24 h).
    pub access_token_ttl: Duration,
    /// `algorithm`: `RS256` (default), `ES256` or `EdDSA` for newly generated keys.
    pub algorithm: String,
    /// `key_file`: where the signing keys live with the `memory` store (created with
    /// a new key on first start when absent; relative to the configuration file's
    /// directory). A sqlite or Redis store keeps the keys itself, sealed, and imports
    /// this file's keys once when it has none (the file can then be removed).
    /// Default: none — with the `memory` store, keys are generated in memory at start
    /// and tokens do not survive a restart.
    pub key_file: Option<PathBuf>,
    /// `key_grace`: how long a retired key stays in `/jwks.json` (default 24 h; at
    /// least `access_token_ttl`).
    pub key_grace: Duration,
    /// `identity_claims`: issued access tokens carry the user's `email`,
    /// `preferred_username` and `groups` as the grant holds them (default false).
    pub identity_claims: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenMode {
    Issue,
    Passthrough,
}

/// `[refresh]`
#[derive(Debug, Clone)]
pub struct RefreshConfig {
    /// `ttl`: life of a refresh token; each rotation starts a new one (default 30 days).
    pub ttl: Duration,
    /// `reuse_grace`: a rotated refresh token presented again within this time gets a
    /// fresh pair (the client lost the response) instead of revoking the grant
    /// (default 10 s, at most 5 min).
    pub reuse_grace: Duration,
    /// `max_upstream_staleness`: how long past the provider's last word on a grant's
    /// session (its access token's expiry, or when a token without expiry was
    /// obtained) the broker still refreshes the grant when it cannot refresh at the
    /// provider — no provider refresh token, or the provider failing. Bounds how long
    /// a user disabled at the provider keeps access (default 1 h).
    pub max_upstream_staleness: Duration,
}

pub fn sessions(raw: RawSessions, problems: &mut Vec<Problem>) -> Option<SessionsConfig> {
    let mut c = Checker::new("sessions", problems);
    let ttl = optional_duration(&mut c, "ttl", raw.ttl, Duration::from_secs(600));
    let code_ttl = optional_duration(&mut c, "code_ttl", raw.code_ttl, Duration::from_secs(60));
    let run_interval = optional_duration(
        &mut c,
        "run_interval",
        raw.run_interval,
        Duration::from_secs(30),
    );
    let max_sessions = count(&mut c, "max_sessions", raw.max_sessions);
    let max_codes = count(&mut c, "max_codes", raw.max_codes);
    if let Some(ttl) = code_ttl
        && !(Duration::from_secs(5)..=Duration::from_secs(600)).contains(&ttl)
    {
        c.report("code_ttl", "must be between 5s and 10m (RFC 6749 §4.1.2)");
    }
    if ttl.is_some_and(|t| t < Duration::from_secs(30)) {
        c.report("ttl", "must be at least 30s: people need time to log in");
    }
    if run_interval.is_some_and(|t| t < Duration::from_secs(1)) {
        c.report("run_interval", "must be at least 1s");
    }
    if !c.ok() {
        return None;
    }
    Some(SessionsConfig {
        ttl: ttl?,
        code_ttl: code_ttl?,
        max_sessions: max_sessions?,
        max_codes: max_codes?,
        run_interval: run_interval?,
    })
}

fn count(c: &mut Checker<'_>, key: &str, value: Option<u64>) -> Option<usize> {
    c.parse(
        key,
        Some(value.unwrap_or(100_000)),
        |n| match usize::try_from(n) {
            Ok(n @ 1..=10_000_000) => Ok(n),
            _ => Err(format!("{n} is out of range (1..=10000000)")),
        },
    )
}

pub fn consent(
    raw: RawConsent,
    env: &Environment,
    problems: &mut Vec<Problem>,
) -> Option<ConsentConfig> {
    let mut c = Checker::new("consent", problems);
    let remember_for = optional_duration(
        &mut c,
        "remember_for",
        raw.remember_for,
        Duration::from_secs(30 * 86_400),
    );
    let cookie_key = match raw.cookie_key {
        None => Some(None),
        some => c
            .parse("cookie_key", some, |spec| {
                let secret = Secret::resolve(&spec, env)?;
                if secret.expose().len() < 32 {
                    Err("must be at least 32 bytes".to_owned())
                } else {
                    Ok(secret)
                }
            })
            .map(Some),
    };
    if !c.ok() {
        return None;
    }
    Some(ConsentConfig {
        remember_for: remember_for?,
        cookie_key: cookie_key?,
    })
}

pub fn tokens(
    raw: RawTokens,
    dir: Option<&std::path::Path>,
    problems: &mut Vec<Problem>,
) -> Option<TokensConfig> {
    let mut c = Checker::new("tokens", problems);
    let mode = c.parse(
        "mode",
        Some(raw.mode.unwrap_or_else(|| "issue".to_owned())),
        |m| match m.as_str() {
            "issue" => Ok(TokenMode::Issue),
            "passthrough" => Ok(TokenMode::Passthrough),
            other => Err(format!("`{other}` is not one of issue, passthrough")),
        },
    );
    let access_token_ttl = optional_duration(
        &mut c,
        "access_token_ttl",
        raw.access_token_ttl,
        Duration::from_secs(900),
    );
    if access_token_ttl
        .is_some_and(|t| !(Duration::from_secs(60)..=Duration::from_secs(86_400)).contains(&t))
    {
        c.report("access_token_ttl", "must be between 1m and 24h");
    }
    let algorithm = c.parse(
        "algorithm",
        Some(raw.algorithm.unwrap_or_else(|| "RS256".to_owned())),
        |a| match a.as_str() {
            "RS256" | "ES256" | "EdDSA" => Ok(a),
            other => Err(format!("`{other}` is not one of RS256, ES256, EdDSA")),
        },
    );
    let key_file = c.parse("key_file", raw.key_file, |path| {
        if path.trim().is_empty() {
            Err("must not be empty".to_owned())
        } else {
            Ok(Some(super::store::resolve_path(dir, &path)))
        }
    });
    let key_grace = optional_duration(
        &mut c,
        "key_grace",
        raw.key_grace,
        Duration::from_secs(86_400),
    );
    if let (Some(grace), Some(ttl)) = (key_grace, access_token_ttl)
        && grace < ttl
    {
        c.report(
            "key_grace",
            "must be at least access_token_ttl, or tokens signed just before a rotation stop verifying",
        );
    }
    if !c.ok() {
        return None;
    }
    Some(TokensConfig {
        mode: mode?,
        access_token_ttl: access_token_ttl?,
        algorithm: algorithm?,
        key_file: key_file.unwrap_or(None),
        key_grace: key_grace?,
        identity_claims: raw.identity_claims.unwrap_or(false),
    })
}

pub fn refresh(raw: RawRefresh, problems: &mut Vec<Problem>) -> Option<RefreshConfig> {
    let mut c = Checker::new("refresh", problems);
    let ttl = optional_duration(&mut c, "ttl", raw.ttl, Duration::from_secs(30 * 86_400));
    let reuse_grace = optional_duration(
        &mut c,
        "reuse_grace",
        raw.reuse_grace,
        Duration::from_secs(10),
    );
    if reuse_grace.is_some_and(|g| g > Duration::from_secs(300)) {
        c.report(
            "reuse_grace",
            "must be at most 5m: a long grace lets a stolen refresh token race its owner",
        );
    }
    if ttl.is_some_and(|t| t < Duration::from_secs(60)) {
        c.report("ttl", "must be at least 1m");
    }
    let max_upstream_staleness = optional_duration(
        &mut c,
        "max_upstream_staleness",
        raw.max_upstream_staleness,
        Duration::from_secs(3_600),
    );
    if !c.ok() {
        return None;
    }
    Some(RefreshConfig {
        ttl: ttl?,
        reuse_grace: reuse_grace?,
        max_upstream_staleness: max_upstream_staleness?,
    })
}
