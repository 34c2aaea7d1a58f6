//! Step two of loading: each raw section checked and turned into its typed form.
//! Every check pushes a [`Problem`] naming its key and goes on, so one pass reports
//! everything; a section is returned only when all of its keys are valid.

use std::net::SocketAddr;
use std::time::Duration;

use tracing_subscriber::EnvFilter;

use url::Url;

use super::raw::{
    RawApiKey, RawLog, RawRegistration, RawResource, RawServer, RawTool, RawToolClient,
    RawUpstream, RawVerify,
};
use super::{
    ApiKeyConfig, Environment, Issuer, LogConfig, LogFormat, Problem, RegistrationConfig,
    RegistrationMode, ResourceConfig, Secret, ServerConfig, UpstreamConfig, VerifyConfig,
};
use crate::domain::resource::same_resource;
use crate::domain::scope::Scopes;
use crate::domain::tool_policy::{Anonymous, ToolPattern, ToolPolicy, ToolRule};

const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
const DEFAULT_MAX_BODY_BYTES: u64 = 64 * 1024;
const MAX_BODY_BYTES_RANGE: std::ops::RangeInclusive<u64> = 1024..=16 * 1024 * 1024;
const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);

/// Collects problems for one section; `finish` tells whether the section is usable.
pub(super) struct Checker<'a> {
    section: &'static str,
    problems: &'a mut Vec<Problem>,
    before: usize,
}

impl<'a> Checker<'a> {
    pub(super) fn new(section: &'static str, problems: &'a mut Vec<Problem>) -> Self {
        let before = problems.len();
        Self {
            section,
            problems,
            before,
        }
    }

    pub(super) fn report(&mut self, key: &str, message: impl Into<String>) {
        self.problems
            .push(Problem::new(format!("{}.{key}", self.section), message));
    }

    /// A required key: reports it when missing.
    fn required<T>(&mut self, key: &str, value: Option<T>) -> Option<T> {
        if value.is_none() {
            self.report(key, "missing (required)");
        }
        value
    }

    /// Runs `parse` on a value and reports its error under `key`.
    pub(super) fn parse<T, U>(
        &mut self,
        key: &str,
        value: Option<T>,
        parse: impl FnOnce(T) -> Result<U, String>,
    ) -> Option<U> {
        match parse(value?) {
            Ok(parsed) => Some(parsed),
            Err(message) => {
                self.report(key, message);
                None
            }
        }
    }

    pub(super) fn ok(&self) -> bool {
        self.problems.len() == self.before
    }
}

pub fn server(raw: RawServer, problems: &mut Vec<Problem>) -> Option<ServerConfig> {
    let mut c = Checker::new("server", problems);
    let listen = c.parse(
        "listen",
        Some(raw.listen.unwrap_or_else(|| DEFAULT_LISTEN.to_owned())),
        |text| {
            text.parse::<SocketAddr>()
                .map_err(|_| format!("`{text}` is not a socket address such as 127.0.0.1:8080"))
        },
    );
    let public_url = c.required("public_url", raw.public_url);
    let public_url = c.parse("public_url", public_url, |t| Issuer::parse(&t));
    let max_body_bytes = c.parse(
        "max_body_bytes",
        Some(raw.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY_BYTES)),
        |n| {
            if MAX_BODY_BYTES_RANGE.contains(&n) {
                usize::try_from(n).map_err(|_| "too large for this machine".to_owned())
            } else {
                Err(format!(
                    "{n} is out of range ({}..={})",
                    MAX_BODY_BYTES_RANGE.start(),
                    MAX_BODY_BYTES_RANGE.end()
                ))
            }
        },
    );
    let shutdown_timeout = match raw.shutdown_timeout {
        None => Some(DEFAULT_SHUTDOWN_TIMEOUT),
        some => c.parse("shutdown_timeout", some, |t| duration(&t)),
    };
    let workers = match raw.workers {
        None => Some(std::thread::available_parallelism().map_or(1, usize::from)),
        some => c.parse("workers", some, |n| match usize::try_from(n) {
            Ok(n @ 1..=256) => Ok(n),
            _ => Err(format!("{n} is out of range (1..=256)")),
        }),
    };
    let trusted_proxies = c.parse(
        "trusted_proxies",
        Some(raw.trusted_proxies.unwrap_or_default()),
        |list| {
            list.iter()
                .map(|cidr| {
                    cidr.parse::<ipnet::IpNet>()
                        .or_else(|_| cidr.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                        .map_err(|_| {
                            format!("`{cidr}` is not an IP address or CIDR such as 10.0.0.0/8")
                        })
                })
                .collect()
        },
    );
    if !c.ok() {
        return None;
    }
    Some(ServerConfig {
        listen: listen?,
        public_url: public_url?,
        max_body_bytes: max_body_bytes?,
        shutdown_timeout: shutdown_timeout?,
        workers: workers?,
        trusted_proxies: trusted_proxies?,
    })
}

pub fn upstream(
    raw: RawUpstream,
    env: &Environment,
    problems: &mut Vec<Problem>,
) -> Option<UpstreamConfig> {
    let mut c = Checker::new("upstream", problems);
    let allow_http = raw.allow_insecure_http.unwrap_or(false);
    let issuer = c.required("issuer", raw.issuer);
    let issuer = c.parse("issuer", issuer, |t| Issuer::parse_upstream(&t, allow_http));
    let client_id = c.required("client_id", raw.client_id);
    let client_id = c.parse("client_id", client_id, |id| {
        if id.trim().is_empty() {
            Err("must not be empty".to_owned())
        } else {
            Ok(id)
        }
    });
    let client_secret = c.required("client_secret", raw.client_secret);
    let client_secret = c.parse("client_secret", client_secret, |spec| {
        Secret::resolve(&spec, env)
    });
    let timeout = optional_duration(&mut c, "timeout", raw.timeout, Duration::from_secs(10));
    let discovery_ttl = optional_duration(
        &mut c,
        "discovery_ttl",
        raw.discovery_ttl,
        Duration::from_secs(300),
    );
    let discovery_grace = optional_duration(
        &mut c,
        "discovery_grace",
        raw.discovery_grace,
        Duration::from_secs(3600),
    );
    let jwks_refetch_interval = optional_duration(
        &mut c,
        "jwks_refetch_interval",
        raw.jwks_refetch_interval,
        Duration::from_secs(60),
    );
    let profile = c.parse(
        "profile",
        Some(raw.profile.unwrap_or_else(|| "generic".to_owned())),
        |p| crate::domain::upstream_request::Profile::parse(&p),
    );
    if !c.ok() {
        return None;
    }
    Some(UpstreamConfig {
        profile: profile?,
        issuer: issuer?,
        client_id: client_id?,
        client_secret: client_secret?,
        timeout: timeout?,
        discovery_ttl: discovery_ttl?,
        discovery_grace: discovery_grace?,
        jwks_refetch_interval: jwks_refetch_interval?,
    })
}

pub fn verify(raw: RawVerify, problems: &mut Vec<Problem>) -> Option<VerifyConfig> {
    let mut c = Checker::new("verify", problems);
    let leeway = match raw.leeway {
        None => Some(Duration::from_secs(30)),
        some => c.parse("leeway", some, |t| {
            let d = duration(&t)?;
            if d > Duration::from_secs(300) {
                Err(format!(
                    "`{t}` is more than 5m: a long leeway keeps expired tokens alive"
                ))
            } else {
                Ok(d)
            }
        }),
    };
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
    let introspection_cache_ttl = optional_duration(
        &mut c,
        "introspection_cache_ttl",
        raw.introspection_cache_ttl,
        Duration::from_secs(60),
    );
    if !c.ok() {
        return None;
    }
    Some(VerifyConfig {
        leeway: leeway?,
        cache_capacity: cache_capacity?,
        introspection: raw.introspection.unwrap_or(true),
        introspection_cache_ttl: introspection_cache_ttl?,
    })
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

pub fn api_keys(raw: Vec<RawApiKey>, problems: &mut Vec<Problem>) -> Option<Vec<ApiKeyConfig>> {
    let before = problems.len();
    let mut out: Vec<ApiKeyConfig> = Vec::new();
    for (index, entry) in raw.into_iter().enumerate() {
        let key = |field: &str| format!("api_keys[{index}].{field}");
        let mut report =
            |field: &str, message: String| problems.push(Problem::new(key(field), message));
        let name = entry.name.unwrap_or_else(|| format!("key-{index}"));
        if out.iter().any(|k| k.name == name) {
            report("name", format!("`{name}` is used twice"));
        }
        let hash = match entry.hash.as_deref().map(parse_key_hash) {
            Some(Ok(hash)) => Some(hash),
            Some(Err(e)) => {
                report("hash", e);
                None
            }
            None => {
                report(
                    "hash",
                    "missing (required; `token-broker hash-key` prints one)".to_owned(),
                );
                None
            }
        };
        let subject = entry.subject.filter(|s| !s.trim().is_empty());
        if subject.is_none() {
            report("subject", "missing (required)".to_owned());
        }
        let scopes = match Scopes::parse(&entry.scopes.unwrap_or_default().join(" ")) {
            Ok(scopes) => Some(scopes),
            Err(e) => {
                report("scopes", e);
                None
            }
        };
        let expires_at = match entry.expires_at.as_deref().map(humantime::parse_rfc3339) {
            None => Some(None),
            Some(Ok(time)) => Some(Some(
                time.duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs()),
            )),
            Some(Err(_)) => {
                report(
                    "expires_at",
                    "must be an RFC 3339 UTC time such as 2027-01-31T00:00:00Z".to_owned(),
                );
                None
            }
        };
        let tools = match entry.tools {
            None => Some(None),
            Some(list) => match patterns(&list) {
                Ok(list) => Some(Some(list.into())),
                Err(e) => {
                    report("tools", e);
                    None
                }
            },
        };
        if let (Some(hash), Some(subject), Some(scopes), Some(expires_at), Some(tools)) =
            (hash, subject, scopes, expires_at, tools)
        {
            out.push(ApiKeyConfig {
                name,
                hash,
                subject,
                scopes,
                expires_at,
                active: entry.active.unwrap_or(true),
                resources: entry.resources,
                tools,
            });
        }
    }
    (problems.len() == before).then_some(out)
}

/// Tool names or patterns, each checked.
fn patterns(list: &[String]) -> Result<Vec<ToolPattern>, String> {
    list.iter().map(|t| ToolPattern::parse(t)).collect()
}

/// Asks the authorization server for refresh tokens: no resource's requirement, so MCP
/// 2026-07-28 ("Refresh Tokens") keeps it out of a resource's challenges and
/// `scopes_supported`. Refused rather than dropped: a resource requiring it could not
/// name what it requires, and a listed scope the broker silently left out would
/// surprise. The broker's own metadata (RFC 8414) lists it, which is where clients look.
const OFFLINE_ACCESS: &str = "offline_access";

fn offline_access_problem(key: String) -> Problem {
    Problem::new(
        key,
        "`offline_access` is not a resource's scope (it asks for refresh tokens, which the broker's authorization server metadata offers): remove it",
    )
}

/// `[[resources.tools]]` and `[[resources.clients]]` of one resource.
fn tool_policy(
    tools: Option<Vec<RawTool>>,
    clients: Option<Vec<RawToolClient>>,
    key: &dyn Fn(&str) -> String,
    problems: &mut Vec<Problem>,
) -> Option<ToolPolicy> {
    let before = problems.len();
    let mut policy = ToolPolicy::default();
    for (i, tool) in tools.unwrap_or_default().into_iter().enumerate() {
        let at = |field: &str| key(&format!("tools[{i}].{field}"));
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
        if policy.rules.iter().any(|r| r.pattern == pattern) {
            problems.push(Problem::new(
                at("name"),
                format!("`{}` has a rule already", pattern.as_str()),
            ));
            continue;
        }
        let scopes = match Scopes::parse(&tool.scopes.unwrap_or_default().join(" ")) {
            Ok(scopes) => scopes,
            Err(e) => {
                problems.push(Problem::new(at("scopes"), e));
                continue;
            }
        };
        if scopes.contains(OFFLINE_ACCESS) {
            problems.push(offline_access_problem(at("scopes")));
            continue;
        }
        let public = tool.public.unwrap_or(false);
        if public && !scopes.is_empty() {
            problems.push(Problem::new(
                at("public"),
                "a public tool needs no scope of its own, so it cannot name scopes",
            ));
            continue;
        }
        policy.rules.push(ToolRule {
            pattern,
            scopes,
            public,
        });
    }
    for (i, client) in clients.unwrap_or_default().into_iter().enumerate() {
        let at = |field: &str| key(&format!("clients[{i}].{field}"));
        let Some(client_id) = client.client_id.filter(|c| !c.trim().is_empty()) else {
            problems.push(Problem::new(at("client_id"), "missing (required)"));
            continue;
        };
        match patterns(&client.tools.unwrap_or_default()) {
            Ok(list) if !list.is_empty() => policy.clients.push((client_id, list)),
            Ok(_) => problems.push(Problem::new(
                at("tools"),
                "must list at least one tool (a client with none should not be registered)",
            )),
            Err(e) => problems.push(Problem::new(at("tools"), e)),
        }
    }
    (problems.len() == before).then_some(policy)
}

/// `sha256:` followed by 64 hex digits.
fn parse_key_hash(text: &str) -> Result<[u8; 32], String> {
    let hex = text
        .strip_prefix("sha256:")
        .ok_or_else(|| "must start with `sha256:` (use `token-broker hash-key`)".to_owned())?;
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("must be sha256: followed by 64 hex digits".to_owned());
    }
    let mut hash = [0u8; 32];
    for (i, byte) in hash.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16)
            .map_err(|_| "must be sha256: followed by 64 hex digits".to_owned())?;
    }
    Ok(hash)
}

pub fn resources(
    raw: Vec<RawResource>,
    problems: &mut Vec<Problem>,
) -> Option<Vec<ResourceConfig>> {
    let before = problems.len();
    let mut out: Vec<ResourceConfig> = Vec::new();
    for (index, entry) in raw.into_iter().enumerate() {
        let key = |field: &str| format!("resources[{index}].{field}");
        let Some(uri) = entry.uri else {
            problems.push(Problem::new(key("uri"), "missing (required)"));
            continue;
        };
        let path = match Url::parse(&uri) {
            Ok(url)
                if matches!(url.scheme(), "https" | "http")
                    && url.fragment().is_none()
                    && url.query().is_none() =>
            {
                url.path().trim_end_matches('/').to_owned()
            }
            _ => {
                problems.push(Problem::new(
                    key("uri"),
                    format!("`{uri}` must be an http(s) URL without query or fragment"),
                ));
                continue;
            }
        };
        if out.iter().any(|r| same_resource(&r.uri, &uri)) {
            problems.push(Problem::new(key("uri"), format!("`{uri}` is listed twice")));
            continue;
        }
        let required = entry.required_scopes.unwrap_or_default();
        let required_scopes = match Scopes::parse(&required.join(" ")) {
            Ok(scopes) if scopes.contains(OFFLINE_ACCESS) => {
                problems.push(offline_access_problem(key("required_scopes")));
                continue;
            }
            Ok(scopes) => scopes,
            Err(e) => {
                problems.push(Problem::new(key("required_scopes"), e));
                continue;
            }
        };
        let audiences = entry.audiences.unwrap_or_else(|| vec![uri.clone()]);
        if audiences.is_empty() || audiences.iter().any(|a| a.trim().is_empty()) {
            problems.push(Problem::new(
                key("audiences"),
                "must list at least one non-empty audience",
            ));
            continue;
        }
        let Some(mut tools) = tool_policy(entry.tools, entry.clients, &key, problems) else {
            continue;
        };
        match entry
            .anonymous
            .as_deref()
            .map_or(Ok(Anonymous::None), Anonymous::parse)
        {
            // Opting in with nothing public would only bring back the anonymous
            // handshake, and with it the second login.
            Ok(Anonymous::PublicTools) if !tools.has_public() => {
                problems.push(Problem::new(
                    key("anonymous"),
                    "`public-tools` needs at least one [[resources.tools]] entry with public = true",
                ));
                continue;
            }
            Ok(anonymous) => tools.anonymous = anonymous,
            Err(e) => {
                problems.push(Problem::new(key("anonymous"), e));
                continue;
            }
        }
        // Advertised: what the operator lists (default the required scopes), and every
        // scope a tool rule needs, so clients can ask for them up front.
        if let Some(listed) = &entry.scopes_supported
            && listed.iter().any(|s| s == OFFLINE_ACCESS)
        {
            problems.push(offline_access_problem(key("scopes_supported")));
            continue;
        }
        let mut scopes_supported = entry
            .scopes_supported
            .unwrap_or_else(|| required_scopes.iter().map(String::from).collect());
        for scope in tools.scopes().iter() {
            if !scopes_supported.iter().any(|s| s == scope) {
                scopes_supported.push(scope.to_owned());
            }
        }
        out.push(ResourceConfig {
            uri,
            name: entry.name,
            audiences,
            required_scopes,
            scopes_supported,
            path,
            exchange_audience: entry.exchange_audience,
            tools,
        });
    }
    (problems.len() == before).then_some(out)
}

pub(super) fn optional_duration(
    c: &mut Checker<'_>,
    key: &str,
    value: Option<String>,
    default: Duration,
) -> Option<Duration> {
    match value {
        None => Some(default),
        some => c.parse(key, some, |t| duration(&t)),
    }
}

pub fn log(raw: RawLog, problems: &mut Vec<Problem>) -> Option<LogConfig> {
    let mut c = Checker::new("log", problems);
    let format = c.parse(
        "format",
        Some(raw.format.unwrap_or_else(|| "json".to_owned())),
        |f| match f.as_str() {
            "json" => Ok(LogFormat::Json),
            "pretty" => Ok(LogFormat::Pretty),
            other => Err(format!("`{other}` is not one of json, pretty")),
        },
    );
    let level = c.parse(
        "level",
        Some(raw.level.unwrap_or_else(|| "info".to_owned())),
        |level| match EnvFilter::try_new(&level) {
            Ok(_) => Ok(level),
            Err(e) => Err(format!("`{level}` is not a valid log filter: {e}")),
        },
    );
    if !c.ok() {
        return None;
    }
    Some(LogConfig {
        format: format?,
        level: level?,
    })
}

/// A humantime duration such as `30s`, `5m` or `1h 30m`.
fn duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text)
        .map_err(|_| format!("`{text}` is not a duration such as 30s, 5m or 1h"))
}
