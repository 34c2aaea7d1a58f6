//! `[registration]`: how clients register (RFC 7591) — locally or proxied to the
//! provider — the per-IP rate, proxy mode's retries, clean-up of unused clients, and
//! Client ID Metadata Documents.

use std::time::Duration;

use super::Problem;
use super::raw::RawRegistration;
use super::sections::{Checker, optional_duration};

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

pub fn registration(
    raw: RawRegistration,
    problems: &mut Vec<Problem>,
) -> Option<RegistrationConfig> {
    let mut c = Checker::new("registration", problems);
    let mode = c.parse(
        "mode",
        Some(raw.mode.unwrap_or_else(|| "local".to_owned())),
        |m| match m.as_str() {
            "local" => Ok(RegistrationMode::Local),
            "proxy" => Ok(RegistrationMode::Proxy),
            other => Err(format!("`{other}` is not one of local, proxy")),
        },
    );
    let count = c.parse(
        "rate_limit_per_minute",
        Some(raw.rate_limit_per_minute.unwrap_or(10)),
        |n| match u32::try_from(n) {
            Ok(n @ 1..=100_000) => Ok(n),
            _ => Err(format!("{n} is out of range (1..=100000)")),
        },
    );
    let burst = c.parse(
        "rate_limit_burst",
        Some(raw.rate_limit_burst.unwrap_or(10)),
        |n| match u32::try_from(n) {
            Ok(n @ 1..=100_000) => Ok(n),
            _ => Err(format!("{n} is out of range (1..=100000)")),
        },
    );
    let dedupe_window = optional_duration(
        &mut c,
        "dedupe_window",
        raw.dedupe_window,
        Duration::from_secs(600),
    );
    let unused_ttl = optional_duration(
        &mut c,
        "unused_ttl",
        raw.unused_ttl,
        Duration::from_secs(86_400),
    );
    let idle_ttl = optional_duration(
        &mut c,
        "idle_ttl",
        raw.idle_ttl,
        Duration::from_secs(90 * 86_400),
    );
    let sweep_interval = optional_duration(
        &mut c,
        "sweep_interval",
        raw.sweep_interval,
        Duration::from_secs(600),
    );
    let max_clients = c.parse(
        "max_clients",
        Some(raw.max_clients.unwrap_or(100_000)),
        |n| {
            if n == 0 {
                Err("must be at least 1".to_owned())
            } else {
                Ok(n)
            }
        },
    );
    let defaults = crate::domain::backoff::BackoffPolicy::default();
    let retry_base = optional_duration(&mut c, "retry_base", raw.retry_base, defaults.base);
    let retry_cap = optional_duration(&mut c, "retry_cap", raw.retry_cap, defaults.cap);
    let retry_deadline = optional_duration(
        &mut c,
        "retry_deadline",
        raw.retry_deadline,
        defaults.deadline,
    );
    let max_retry_after = optional_duration(
        &mut c,
        "max_retry_after",
        raw.max_retry_after,
        defaults.max_retry_after,
    );
    let attempts = raw
        .retry_attempts
        .unwrap_or(u64::from(defaults.max_attempts));
    let retry_attempts = c.parse("retry_attempts", Some(attempts), |n| {
        match u32::try_from(n) {
            Ok(n @ 1..=20) => Ok(n),
            _ => Err(format!("{n} is out of range (1..=20)")),
        }
    });
    if !c.ok() {
        return None;
    }
    Some(RegistrationConfig {
        mode: mode?,
        rate_limit: crate::domain::rate_limit::Rate {
            count: count?,
            period_ms: 60_000,
            burst: burst?,
        },
        allow_private_use_schemes: raw.allow_private_use_schemes.unwrap_or(true),
        redirect_uri_allow_list: raw.redirect_uri_allow_list.unwrap_or_default(),
        dedupe_window: dedupe_window?,
        unused_ttl: unused_ttl?,
        idle_ttl: idle_ttl?,
        sweep_interval: sweep_interval?,
        max_clients: max_clients?,
        backoff: crate::domain::backoff::BackoffPolicy {
            base: retry_base?,
            cap: retry_cap?,
            max_attempts: retry_attempts?,
            deadline: retry_deadline?,
            max_retry_after: max_retry_after?,
        },
        metadata_documents: raw.metadata_documents.unwrap_or(true),
        metadata_documents_allow_private: raw.metadata_documents_allow_private.unwrap_or(false),
        metadata_documents_allow_loopback: raw.metadata_documents_allow_loopback.unwrap_or(false),
    })
}
