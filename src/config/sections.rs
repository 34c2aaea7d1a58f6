//! Step two of loading: each raw section checked and turned into its typed form —
//! here the [`Checker`] every section module uses, and the core sections (`[server]`,
//! `[upstream]`, `[verify]`, `[log]`); the others have a module each. Every check
//! pushes a [`Problem`] naming its key and goes on, so one pass reports everything;
//! a section is returned only when all of its keys are valid.

use std::net::SocketAddr;
use std::time::Duration;

use tracing_subscriber::EnvFilter;

use super::raw::{RawLog, RawServer, RawUpstream, RawVerify};
use super::{
    Environment, Issuer, LogConfig, LogFormat, Problem, Secret, ServerConfig, UpstreamConfig,
    VerifyConfig,
};

const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
const DEFAULT_MAX_BODY_BYTES: u64 = 64 * 1024;
const MAX_BODY_BYTES_RANGE: std::ops::RangeInclusive<u64> = 1024..=16 * 1024 * 1024;
const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);

/// Collects problems for one section; `finish` tells whether the section is usable.
pub(super) struct Checker<'a> {
    section: String,
    problems: &'a mut Vec<Problem>,
    before: usize,
}

impl<'a> Checker<'a> {
    pub(super) fn new(section: impl Into<String>, problems: &'a mut Vec<Problem>) -> Self {
        let before = problems.len();
        Self {
            section: section.into(),
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
    let management_listen = match raw.management_listen {
        None => Some(None),
        some => c
            .parse("management_listen", some, |text| {
                let addr = text.parse::<SocketAddr>().map_err(|_| {
                    format!("`{text}` is not a socket address such as 127.0.0.1:9090")
                })?;
                match listen {
                    Some(listen) if overlaps(listen, addr) => Err(format!(
                        "`{text}` is the port `listen` ({listen}) binds: the management port must be a port of its own"
                    )),
                    _ => Ok(addr),
                }
            })
            .map(Some),
    };
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
    let oauth_addresses =
        super::addresses::addresses(raw.oauth_addresses, "server.oauth_addresses", c.problems);
    if !c.ok() {
        return None;
    }
    Some(ServerConfig {
        listen: listen?,
        management_listen: management_listen?,
        public_url: public_url?,
        max_body_bytes: max_body_bytes?,
        shutdown_timeout: shutdown_timeout?,
        workers: workers?,
        trusted_proxies: trusted_proxies?,
        oauth_addresses: oauth_addresses?,
    })
}

/// Whether binding `b` would collide with `a`: the same non-zero port on the same
/// address, or on any address of the family when either is a wildcard (`0.0.0.0`,
/// `::`). Port 0 asks the system for a free port, so it never collides.
fn overlaps(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() != 0
        && a.port() == b.port()
        && (a.ip() == b.ip()
            || (a.is_ipv4() == b.is_ipv4() && (a.ip().is_unspecified() || b.ip().is_unspecified())))
}

pub fn upstream(
    raw: RawUpstream,
    env: &Environment,
    problems: &mut Vec<Problem>,
) -> Option<UpstreamConfig> {
    let claims = super::identity::claims(raw.claims, problems);
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
    let client_auth = c.parse(
        "client_auth",
        Some(
            raw.client_auth
                .unwrap_or_else(|| "client_secret_basic".to_owned()),
        ),
        |t| super::UpstreamClientAuth::parse(&t),
    );
    let (client_secret, client_key) = match client_auth {
        Some(super::UpstreamClientAuth::PrivateKeyJwt) => {
            if raw.client_secret.is_some() {
                c.report(
                    "client_secret",
                    "not used with client_auth = \"private_key_jwt\": remove it",
                );
            }
            let key = c.required("client_key", raw.client_key);
            let (alg, kid) = (raw.client_key_alg, raw.client_key_id);
            let key = c.parse("client_key", key, |spec| {
                let pem = Secret::resolve(&spec, env)?;
                super::UpstreamClientKey::parse(&pem, alg.as_deref(), kid)
            });
            (key.is_some().then(|| Secret::new("")), key.map(Some))
        }
        _ => {
            if raw.client_key.is_some() {
                c.report("client_key", "only with client_auth = \"private_key_jwt\"");
            }
            let secret = c.required("client_secret", raw.client_secret);
            let secret = c.parse("client_secret", secret, |spec| Secret::resolve(&spec, env));
            (secret, Some(None))
        }
    };
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
        client_auth: client_auth?,
        client_key: client_key?,
        timeout: timeout?,
        discovery_ttl: discovery_ttl?,
        discovery_grace: discovery_grace?,
        jwks_refetch_interval: jwks_refetch_interval?,
        claims: claims?,
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
