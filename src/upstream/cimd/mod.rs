//! Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document; MCP
//! authorization 2025-11-25, "Client ID Metadata Documents"). A `client_id` that is an
//! https URL with a path names a JSON document describing a public client; the broker
//! fetches it and treats it as that client's registration.
//!
//! Any caller can make the broker fetch any URL this way, so the fetch is an SSRF
//! surface (draft §8.6): only public addresses, checked by the client's own resolver
//! (the addresses checked are the addresses connected to, so DNS rebinding between
//! check and connect is impossible), no proxy, no redirects, bounded time and size.
//! Documents are cached per their HTTP caching headers within the policy's bounds, and
//! freshness is judged by the broker's [`Clock`].

mod address;
mod document;
#[cfg(fuzzing)]
pub mod fuzzing;
mod response;
#[cfg(test)]
mod tests;

use address::*;
use document::*;
use response::*;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use moka::future::Cache;
use moka::ops::compute::Op;
use reqwest::StatusCode;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{ACCEPT, AGE, CACHE_CONTROL, CONTENT_TYPE, HeaderMap};
use serde_json::{Map, Value};
use url::{Host, Url};

use crate::clock::Clock;
use crate::domain::client_metadata::RedirectPolicy;
use crate::telemetry::upstream::{Operation, UpstreamCalls};

/// Memory bound of the document cache, in bytes of document bodies.
const CACHE_BYTES: u64 = 8 * 1024 * 1024;
/// The largest client key set read (ten 4096-bit RSA keys fit).
const JWKS_MAX_BYTES: usize = 64 * 1024;

/// How far the broker goes to fetch a document, and how long it keeps one.
#[derive(Debug, Clone)]
pub struct CimdPolicy {
    /// Fetch from loopback addresses. Tests and local development only: in production
    /// it lets anyone make the broker call services on its own host (draft §8.6).
    pub allow_loopback: bool,
    /// Fetch from private networks (10/8, 172.16/12, 192.168/16, fc00::/7), for
    /// clients that publish their documents on an internal network.
    pub allow_private: bool,
    /// Fetch over plain http, from a loopback IP literal only and only together with
    /// `allow_loopback`: for tests against a plain-http server on 127.0.0.1.
    pub allow_http: bool,
    /// The whole fetch, from resolving the host to the last byte of the body.
    pub timeout: Duration,
    /// The largest document read; larger ones are refused while streaming (the draft,
    /// §8.7, recommends reading at most 5 KB).
    pub max_bytes: usize,
    /// Shortest reuse of a document, also for `no-store`/`no-cache`: never fetching per
    /// request keeps the fetch side channel (draft §9.1) and the load bounded.
    pub min_ttl: Duration,
    /// Longest reuse, whatever `max-age` says: documents change (draft §8.4).
    pub max_ttl: Duration,
    /// Reuse when the response has neither `Cache-Control: max-age` nor `Expires`.
    pub default_ttl: Duration,
    /// The redirect-URI rules registered clients get (`[registration]`
    /// `allow_private_use_schemes`, `redirect_uri_allow_list`); a document's
    /// `redirect_uris` must pass them too.
    pub redirects: RedirectPolicy,
}

impl Default for CimdPolicy {
    fn default() -> Self {
        Self {
            allow_loopback: false,
            allow_private: false,
            allow_http: false,
            timeout: Duration::from_secs(5),
            max_bytes: 16 * 1024,
            min_ttl: Duration::from_secs(60),
            max_ttl: Duration::from_secs(24 * 3600),
            default_ttl: Duration::from_secs(3600),
            // The `[registration]` defaults.
            redirects: RedirectPolicy {
                allow_private_use_schemes: true,
                allowed_patterns: Vec::new(),
            },
        }
    }
}

impl CimdPolicy {
    fn problems(&self) -> Vec<&'static str> {
        let mut problems = Vec::new();
        if self.timeout.is_zero() {
            problems.push("timeout must be positive");
        }
        if self.max_bytes == 0 {
            problems.push("max_bytes must be positive");
        }
        if self.min_ttl < Duration::from_secs(1) {
            problems.push("min_ttl must be at least 1s");
        }
        if !(self.min_ttl <= self.default_ttl && self.default_ttl <= self.max_ttl) {
            problems.push("the TTLs must satisfy min_ttl <= default_ttl <= max_ttl");
        }
        problems
    }
}

/// A fetched and validated document: a registered public client until `fresh_until`.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientDocument {
    /// The URL, exactly as the client sent it and as the document states it.
    pub client_id: String,
    /// The whole document (RFC 7591 client metadata), for fields read elsewhere.
    pub document: Value,
    /// Exact redirect URIs (draft §4.2); at least one.
    pub redirect_uris: Vec<String>,
    /// The document's `grant_types` the broker offers it: authorization_code, and
    /// refresh_token when listed.
    pub grant_types: Vec<String>,
    /// The client's self-chosen, unverified name.
    pub client_name: Option<String>,
    /// Broker clock, Unix seconds.
    pub fetched_at: u64,
    /// Reused until this instant (broker clock, Unix seconds), then fetched again.
    pub fresh_until: u64,
}

/// Why a `client_id` URL yields no client. Descriptions never repeat what the remote
/// server sent or library errors, so they can be shown on an error page; causes are
/// logged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CimdError {
    /// Not a Client Identifier URL (draft §3): https, a path other than `/`, no
    /// userinfo, no fragment, no dot segments.
    #[error("the client_id is not a client metadata document URL")]
    NotAUrl,
    /// The URL is one the broker will not fetch: a non-public address, plain http, or
    /// a redirect (draft §5, §8.6).
    #[error("the client metadata document URL is refused: {0}")]
    Refused(String),
    /// No usable answer: unreachable, timed out, or a status other than 200 (draft §5).
    #[error("the client metadata document could not be fetched: {0}")]
    Fetch(String),
    /// The answer is not an acceptable document (draft §4, §4.1).
    #[error("the client metadata document is invalid: {0}")]
    Invalid(String),
}

/// Whether `client_id` is a Client Identifier URL (draft §3), so must be resolved by
/// fetching rather than looked up among registered clients.
pub fn is_cimd_client_id(client_id: &str) -> bool {
    parse_client_id(client_id).is_some_and(|url| url.scheme() == "https")
}

/// The draft §3 shape, for https or http (the caller decides whether http is allowed).
fn parse_client_id(client_id: &str) -> Option<Url> {
    // `Url::parse` strips whitespace, reads `\` as `/`, resolves dot segments and
    // accepts `https:///host`: the raw string is checked first, because the identifier
    // is compared as a string (§3) and what is fetched must be what was checked.
    if !client_id.bytes().all(|b| b.is_ascii_graphic()) || client_id.contains(['#', '\\']) {
        return None;
    }
    let rest = client_id
        .strip_prefix("https://")
        .or_else(|| client_id.strip_prefix("http://"))?;
    let (authority, path_and_query) = rest.split_at(rest.find(['/', '?'])?);
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let path = path_and_query
        .split_once('?')
        .map_or(path_and_query, |(path, _)| path);
    if path.split('/').any(is_dot_segment) {
        return None;
    }
    let url = Url::parse(client_id).ok()?;
    // Odd host spellings (`0x7f.1`, `[0::1]`) are normalised by the parser; refusing
    // them keeps the host shown to users the host connected to.
    let host = match authority.strip_prefix('[') {
        Some(_) => authority.split_inclusive(']').next().unwrap_or(authority),
        None => authority
            .rsplit_once(':')
            .map_or(authority, |(host, _)| host),
    };
    let same_host = url.host_str() == Some(host.to_ascii_lowercase().as_str());
    (same_host && url.username().is_empty() && url.password().is_none() && url.path() != "/")
        .then_some(url)
}

fn is_dot_segment(segment: &str) -> bool {
    let decoded = segment.to_ascii_lowercase().replace("%2e", ".");
    decoded == "." || decoded == ".."
}

/// A cached document and its weight for the memory bound.
#[derive(Clone)]
struct Cached {
    document: Arc<ClientDocument>,
    weight: u32,
}

/// Fetches, validates and caches Client ID Metadata Documents. Cloning shares the
/// client and the cache.
#[derive(Clone)]
pub struct CimdFetcher {
    policy: CimdPolicy,
    rules: AddressRules,
    client: reqwest::Client,
    /// Keyed by the `client_id` string as sent (§3 compares strings). Moka only bounds
    /// memory; freshness is decided by `clock`.
    cache: Cache<String, Cached>,
    clock: Clock,
    calls: UpstreamCalls,
}

impl CimdFetcher {
    pub fn new(policy: CimdPolicy, clock: Clock) -> Result<Self, String> {
        let problems = policy.problems();
        if !problems.is_empty() {
            return Err(format!(
                "invalid client metadata document policy: {}",
                problems.join("; ")
            ));
        }
        let rules = AddressRules {
            allow_loopback: policy.allow_loopback,
            allow_private: policy.allow_private,
        };
        let client = reqwest::Client::builder()
            .user_agent(concat!("token-broker/", env!("CARGO_PKG_VERSION")))
            // The draft (§5) forbids following redirects; each hop would need the
            // same checks.
            .redirect(reqwest::redirect::Policy::none())
            // A proxy would resolve the host itself, past the address checks.
            .no_proxy()
            .https_only(!policy.allow_http)
            .dns_resolver(GuardedResolver { rules })
            .connect_timeout(policy.timeout)
            .timeout(policy.timeout)
            .build()
            .map_err(|e| format!("cannot build the client metadata HTTP client: {e}"))?;
        let cache = Cache::builder()
            .max_capacity(CACHE_BYTES)
            .weigher(|_: &String, cached: &Cached| cached.weight)
            .time_to_live(policy.max_ttl)
            .build();
        Ok(Self {
            policy,
            rules,
            client,
            cache,
            clock,
            calls: UpstreamCalls::default(),
        })
    }

    /// Fetches recorded in `calls`' metrics, traced when it propagates.
    pub fn with_calls(mut self, calls: UpstreamCalls) -> Self {
        self.calls = calls;
        self
    }

    /// The client described at `client_id`, from the cache while fresh. Concurrent
    /// calls for one URL share one request; failures are not cached (draft §5.2).
    pub async fn fetch(&self, client_id: &str) -> Result<Arc<ClientDocument>, CimdError> {
        let url = self.target(client_id)?;
        let now = self.clock.unix();
        if let Some(cached) = self.cache.get(client_id).await {
            if now < cached.document.fresh_until {
                return Ok(cached.document);
            }
            // Removed only while still stale: a concurrent caller may have just put a
            // fresh copy, which must not be thrown away.
            self.cache
                .entry_by_ref(client_id)
                .and_compute_with(|entry| {
                    let stale = entry.is_some_and(|e| e.value().document.fresh_until <= now);
                    std::future::ready(if stale { Op::Remove } else { Op::Nop })
                })
                .await;
        }
        let cached = self
            .cache
            .try_get_with_by_ref(client_id, self.download(client_id, url))
            .await
            .map_err(|error: Arc<CimdError>| CimdError::clone(&error))?;
        Ok(cached.document)
    }

    /// A client's JWK Set at `uri` (RFC 7591 `jwks_uri`), fetched under the same rules
    /// as a metadata document — public addresses only, no redirects, bounded time and
    /// size — since whoever registers a client chooses the URL. Not cached here: the
    /// caller keeps the keys (`tokens::client_assertion`).
    pub async fn fetch_jwks(&self, uri: &str) -> Result<Value, CimdError> {
        let url = self.target(uri)?;
        let request = self
            .client
            .get(url)
            .header(ACCEPT, "application/json, application/jwk-set+json");
        let response = self
            .calls
            .send(Operation::ClientJwks, request)
            .await
            .map_err(|e| request_error(uri, &e))?;
        let status = response.status();
        if status != StatusCode::OK {
            return Err(CimdError::Fetch(format!(
                "the server answered HTTP {} instead of 200",
                status.as_u16()
            )));
        }
        if !is_json(response.headers()) {
            return Err(CimdError::Invalid(
                "the response's Content-Type is not JSON".to_owned(),
            ));
        }
        let body = read_limited(uri, response, JWKS_MAX_BYTES).await?;
        serde_json::from_slice(&body)
            .map_err(|_| CimdError::Invalid("the key set is not JSON".to_owned()))
    }

    /// The URL to request, after the checks that need no network.
    fn target(&self, client_id: &str) -> Result<Url, CimdError> {
        let url = parse_client_id(client_id).ok_or(CimdError::NotAUrl)?;
        // The resolver never sees IP literals, so they are checked here.
        let literal = match url.host() {
            Some(Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            _ => None,
        };
        if url.scheme() != "https" {
            let loopback = literal.is_some_and(|ip| classify(ip) == Loopback);
            if !(self.policy.allow_http && self.policy.allow_loopback && loopback) {
                return Err(CimdError::Refused("only https URLs are fetched".to_owned()));
            }
        }
        if let Some(ip) = literal {
            self.rules.check(ip).map_err(|kind| {
                tracing::info!(client_id, kind, "client metadata document URL refused");
                CimdError::Refused(format!("the host is a {kind} address"))
            })?;
        }
        Ok(url)
    }

    async fn download(&self, client_id: &str, url: Url) -> Result<Cached, CimdError> {
        let request = self.client.get(url).header(ACCEPT, "application/json");
        let response = self
            .calls
            .send(Operation::MetadataDocument, request)
            .await
            .map_err(|e| request_error(client_id, &e))?;
        let status = response.status();
        if status.is_redirection() {
            return Err(CimdError::Refused(
                "the URL answered with a redirect, and redirects are not followed".to_owned(),
            ));
        }
        if status != StatusCode::OK {
            return Err(CimdError::Fetch(format!(
                "the server answered HTTP {} instead of 200",
                status.as_u16()
            )));
        }
        if !is_json(response.headers()) {
            return Err(CimdError::Invalid(
                "the response's Content-Type is not JSON".to_owned(),
            ));
        }
        let lifetime = freshness(response.headers(), &self.policy, self.clock.now());
        let body = read_limited(client_id, response, self.policy.max_bytes).await?;
        let fields = validate(client_id, &body, &self.policy.redirects)?;
        let fetched_at = self.clock.unix();
        let document = ClientDocument {
            client_id: client_id.to_owned(),
            document: Value::Object(fields.document),
            redirect_uris: fields.redirect_uris,
            grant_types: fields.grant_types,
            client_name: fields.client_name,
            fetched_at,
            fresh_until: fetched_at.saturating_add(lifetime.as_secs()),
        };
        Ok(Cached {
            document: Arc::new(document),
            weight: u32::try_from(body.len() + client_id.len()).unwrap_or(u32::MAX),
        })
    }
}
