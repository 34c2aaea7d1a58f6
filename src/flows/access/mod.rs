//! Access to a protected resource, whichever door the request came through:
//! forward-auth (`/auth/verify`), the gateway, and the routes the broker serves itself.
//! Find the resource for the routed path, verify the bearer token (from the header
//! only), spend the caller's rate-limit budget (`flows::limits`: after verification,
//! which the key needs, before any authorization; without a verified caller the
//! resource's anonymous budget by client IP), enforce the resource's required scopes,
//! then the tool rules for the MCP call behind the request (public tools without a
//! token where the resource opted in, per-tool scopes with a step-up, allow-lists). A refusal is a [`Denial`] the HTTP
//! adapters render the way MCP clients expect (RFC 6750 §3 + RFC 9728 §5.1).
//!
//! The forward-auth hot path (a cached token) allocates nothing here beyond what the
//! verifier hands back and the rate-limit key: refusals build their challenges,
//! passes do not.

mod denial;
mod mcp;
mod tools;

use std::borrow::Cow;
use std::sync::Arc;

pub use denial::{Challenge, Denial, Refusal, metadata_url};
pub use mcp::{Forwarded, Header, McpCall, Method, TransportHeaders};

use crate::config::ResourceConfig;
use crate::domain::resource::{UnknownHost, path_covers, select};
use crate::domain::scope::Scopes;
use crate::domain::tool_policy::ToolPattern;
use crate::flows::addresses::Addresses;
use crate::flows::limits::{Budget, Limits, Origin};
use crate::telemetry::audit::AuditEvent;
use crate::telemetry::metrics::Metrics;
use crate::tokens::verify::token_digest;
use crate::tokens::{Principal, Rejection, Verifier};

/// The access flow: the protected resources, their address lists, the verifier, the
/// rate limits, the metrics.
pub struct Access {
    resources: Arc<[ResourceConfig]>,
    addresses: Arc<Addresses>,
    verifier: Verifier,
    limits: Limits,
    metrics: Metrics,
}

/// A request to a protected resource, as the adapters read it.
#[derive(Debug, Clone, Copy)]
pub struct Request<'r> {
    /// The path as sent, escapes not yet decoded.
    pub path: &'r str,
    pub query: Option<&'r str>,
    /// The bearer token ([`bearer`]); `Err(Rejection::Missing)` without `Authorization`.
    pub token: Result<&'r str, Rejection>,
    /// Where it came from, for a rate limit keyed by client IP.
    pub origin: Origin<'r>,
}

/// A request whose token passed the resource check.
pub struct Checked<'a> {
    pub resource: &'a ResourceConfig,
    pub principal: Arc<Principal>,
    /// The bearer token's `token_digest`: an exchange after the check keys its cache
    /// by it rather than hashing the token again.
    pub digest: [u8; 32],
    /// The caller's budget after this request (`None`: the resource has no limits).
    pub budget: Option<Budget>,
}

/// A request let through.
pub enum Allowed<'a> {
    /// Without a token, as the resource's anonymous rules allow; the anonymous
    /// budget after it.
    Anonymous(&'a ResourceConfig, Option<Budget>),
    Verified(Checked<'a>),
}

impl Access {
    pub fn new(
        resources: Arc<[ResourceConfig]>,
        addresses: Arc<Addresses>,
        verifier: Verifier,
        limits: Limits,
        metrics: Metrics,
    ) -> Self {
        Self {
            resources,
            addresses,
            verifier,
            limits,
            metrics,
        }
    }

    /// A forward-auth request the adapter could not read (no or several original-URI
    /// headers, a URI that is not one): 400, counted.
    pub fn unjudgeable(&self, reason: &'static str, description: &'static str) -> Denial {
        self.metrics.auth_failure(reason);
        Denial::unjudgeable(reason, description)
    }

    /// The routes the broker serves itself: the resource's required scopes.
    pub async fn resource(&self, request: Request<'_>) -> Result<Checked<'_>, Denial> {
        let resource = self.locate(request)?;
        self.check_operation(request, resource, |r| r.required_scopes.clone(), |_| 0)
            .await
    }

    /// The resource's address list alone (`[resources.addresses]`), for an adapter
    /// that must judge the address before it reads anything else (the gateway, before
    /// the body); every other entry point here judges it first too.
    pub fn screen(&self, request: Request<'_>) -> Result<(), Denial> {
        self.locate(request).map(|_| ())
    }

    /// Forward-auth: the call the proxy's headers describe, for an original `method`.
    /// On a resource with `anonymous = "public-tools"`, public tools (and the handshake
    /// around them) need no token, and only as the POSTs that carry them, with headers
    /// the MCP server must check against the body (2026-07-28: older ones could name
    /// `health` over a body that calls anything). A GET or DELETE attaches to or ends
    /// someone's session: 405 rather than 401, so that it does not start a second
    /// login beside the one a POST starts.
    pub async fn forwarded(
        &self,
        request: Request<'_>,
        method: Method,
        forwarded: &Forwarded<'_>,
    ) -> Result<Allowed<'_>, Denial> {
        let located = self.locate(request)?;
        if method != Method::Other
            && let Some(resource) = tokenless(request, located)
        {
            match (method, forwarded) {
                (Method::Post, Forwarded::Described(call))
                    if tools::anonymous_allowed(resource, *call) =>
                {
                    let budget = self
                        .spend(resource, request, None, |p| mcp::uses(*forwarded, p))
                        .await?;
                    return Ok(Allowed::Anonymous(resource, budget));
                }
                (Method::Stream, _) if resource.tools.anonymous_open() => {
                    return Err(self.anonymous_stream());
                }
                _ => {}
            }
        }
        let checked = self
            .check_operation(
                request,
                located,
                |resource| mcp::needed(resource, forwarded),
                |pattern| mcp::uses(*forwarded, pattern),
            )
            .await?;
        tools::check_forwarded(
            &self.metrics,
            checked.resource,
            &checked.principal,
            forwarded,
        )?;
        Ok(Allowed::Verified(checked))
    }

    /// The gateway's POST: the messages of its JSON-RPC body. Without a token only if
    /// every one may pass anonymously (a batch as a whole); else each `tools/call`
    /// against the tool rules, a refusal naming what all of them need.
    pub async fn messages<'c>(
        &self,
        request: Request<'_>,
        calls: impl Iterator<Item = McpCall<'c>> + Clone,
    ) -> Result<Allowed<'_>, Denial> {
        let located = self.locate(request)?;
        if let Some(resource) = tokenless(request, located)
            && calls
                .clone()
                .all(|call| tools::anonymous_allowed(resource, call))
        {
            let uses = |p: &ToolPattern| mcp::uses_all(calls.clone(), p);
            let budget = self.spend(resource, request, None, uses).await?;
            return Ok(Allowed::Anonymous(resource, budget));
        }
        // A refusal names what every message needs, so one authorization does.
        let needs = |resource: &ResourceConfig| {
            calls.clone().fold(Scopes::default(), |all, call| {
                all.union(&mcp::needed(resource, &Forwarded::Described(call)))
            })
        };
        let uses = |p: &ToolPattern| mcp::uses_all(calls.clone(), p);
        let checked = self.check_operation(request, located, needs, uses).await?;
        tools::check_calls(&self.metrics, checked.resource, &checked.principal, calls)?;
        Ok(Allowed::Verified(checked))
    }

    /// The gateway's GET (the server's stream) or DELETE (the session's end): it
    /// belongs to whoever opened the session, which cannot be told without a token,
    /// so never anonymous; on a resource open to anonymous callers, 405 rather than a
    /// 401 that would start a login beside the one the client's next POST starts.
    pub async fn stream(&self, request: Request<'_>) -> Result<Checked<'_>, Denial> {
        let located = self.locate(request)?;
        if let Some(resource) = tokenless(request, located)
            && resource.tools.anonymous_open()
        {
            return Err(self.anonymous_stream());
        }
        self.check_operation(request, located, |r| r.required_scopes.clone(), |_| 0)
            .await
    }

    /// Whether `tools/list` may show a tool to `principal` (none: anonymous, public
    /// tools only) on `resource`, owning what it needs so a streamed answer can ask
    /// after the handler returned.
    pub fn viewer(
        &self,
        resource: &ResourceConfig,
        principal: Option<Arc<Principal>>,
    ) -> impl Fn(&str) -> bool + 'static {
        let resources = Arc::clone(&self.resources);
        let index = resources.iter().position(|r| std::ptr::eq(r, resource));
        move |tool| {
            // Not found cannot happen (the resource is the flow's own); hide all.
            let Some(resource) = index.and_then(|i| resources.get(i)) else {
                return false;
            };
            let caller = principal.as_deref().map(mcp::caller);
            resource
                .tools
                .visible(&resource.required_scopes, tool, caller)
        }
    }

    /// The resource a request to `host` and routed `path` belongs to
    /// (`domain::resource::select`: the host's resources first, the longest covering
    /// path of them; the path alone when the host names none, unless resources on
    /// several hosts share that path).
    pub fn resource_for(
        &self,
        host: Option<&str>,
        path: &str,
    ) -> Result<Option<&ResourceConfig>, UnknownHost> {
        select(
            &self.resources,
            |r| (&r.authority, r.path.as_str()),
            host,
            path,
            path_covers,
        )
    }

    /// The path as the proxy routes it (escapes decoded), or a 400 when proxies and
    /// servers could resolve it differently (dot segments, encoded slashes, `//`): never
    /// matched raw, so `/mcp/../mcp-admin` cannot be judged as `/mcp`.
    fn routed<'p>(&self, path: &'p str) -> Result<Cow<'p, str>, Denial> {
        crate::domain::resource::routed_path(path).map_err(|error| {
            tracing::info!(reason = "ambiguous_path", %error, path, "request refused");
            self.metrics.auth_failure("ambiguous_path");
            Denial::unjudgeable("ambiguous_path", error.description())
        })
    }

    /// The resource the request's routed path belongs to (if any), its address list
    /// judged first: a refused address gets 403 before its token or body is read, and
    /// spends no budget.
    fn locate(&self, request: Request<'_>) -> Result<Option<&ResourceConfig>, Denial> {
        let path = self.routed(request.path)?;
        let host = self.addresses.host(request.origin);
        let resource = self.resource_for(host, &path).map_err(|UnknownHost| {
            tracing::info!(reason = "unknown_host", host, path = %path, "request refused");
            self.metrics.auth_failure("unknown_host");
            Denial::unjudgeable("unknown_host", UNKNOWN_HOST)
        })?;
        if let Some(resource) = resource {
            self.addresses
                .check(&resource.addresses, &resource.uri, request.origin)
                .map_err(|_| Denial::address_refused())?;
        }
        Ok(resource)
    }

    fn anonymous_stream(&self) -> Denial {
        self.metrics.auth_failure("anonymous_stream");
        Denial::anonymous_stream()
    }

    /// The resource check for an operation that needs `needs(resource)`, a superset of
    /// the resource's required scopes (a tool's, say): the token must hold only the
    /// required ones here, but a refusal's `scope` names all of them, so that one
    /// authorization covers the operation (MCP 2026-07-28, "Scope Challenge Handling").
    async fn check_operation<'a>(
        &'a self,
        request: Request<'_>,
        resource: Option<&'a ResourceConfig>,
        needs: impl Fn(&ResourceConfig) -> Scopes,
        uses: impl Fn(&ToolPattern) -> u32,
    ) -> Result<Checked<'a>, Denial> {
        let Some(resource) = resource else {
            return Err(Denial::no_resource());
        };
        // Only a refusal asks: the request that passes allocates nothing for it.
        let needed = || resource.required_scopes.union(&needs(resource));
        let reject = |rejection: Rejection| {
            self.metrics.auth_failure(rejection.reason());
            tracing::info!(reason = rejection.reason(), resource = %resource.uri, "request refused");
            if rejection == Rejection::Unavailable {
                return Denial::unavailable(rejection.reason());
            }
            self.metrics.audit(AuditEvent::TokenRefused {
                resource: &resource.uri,
                reason: rejection.reason(),
            });
            Denial::unauthenticated(
                resource,
                rejection.reason(),
                rejection.error_code(),
                &needed(),
            )
        };
        let token_in_query = request.query.is_some_and(|q| {
            url::form_urlencoded::parse(q.as_bytes()).any(|(k, _)| k == "access_token")
        });
        let verified = match request.token {
            _ if token_in_query => Err(Rejection::TokenInQuery),
            Err(rejection) => Err(rejection),
            Ok(token) => {
                let digest = token_digest(token);
                self.verifier
                    .verify_digested(token, &digest, resource)
                    .await
                    .map(|principal| (principal, digest))
            }
        };
        let (principal, digest) = match verified {
            Ok(verified) => verified,
            Err(rejection) => {
                // No verified caller: the anonymous budget, by client IP, first.
                self.spend(resource, request, None, |_| 0).await?;
                return Err(reject(rejection));
            }
        };
        let budget = self
            .spend(resource, request, Some(&principal), uses)
            .await?;
        // Before the scopes: no step-up admits a user the rule refuses.
        self.admitted(resource, &principal)?;
        let missing = resource.required_scopes.missing_from(&principal.scopes);
        if !missing.is_empty() {
            self.metrics.auth_failure("insufficient_scope");
            self.metrics.audit(AuditEvent::TokenRefused {
                resource: &resource.uri,
                reason: "insufficient_scope",
            });
            tracing::info!(reason = "insufficient_scope", %missing, resource = %resource.uri, "request refused");
            // `scope` names everything needed, so a client that re-requests exactly it
            // keeps what it had; the description names what was missing of it.
            let needed = needed();
            let description = format!("missing scope: {}", needed.missing_from(&principal.scopes));
            return Err(Denial::insufficient_scope(resource, &needed, description));
        }
        Ok(Checked {
            resource,
            principal,
            digest,
            budget,
        })
    }

    /// The resource's allow rule (`[resources.allow]`) on the caller as the provider
    /// now describes them: a refusal is 403 `access_denied` — no token the client could
    /// ask for would pass, so no `scope` and no step-up (not `insufficient_scope`) —
    /// audited with the condition unmet.
    fn admitted(&self, resource: &ResourceConfig, principal: &Principal) -> Result<(), Denial> {
        let Some(rule) = &resource.allow else {
            return Ok(());
        };
        let Err(unmet) = rule.judge(&principal.subject, principal.identity.as_deref()) else {
            return Ok(());
        };
        self.metrics.auth_failure("allow_rule");
        tracing::info!(reason = "allow_rule", condition = unmet.condition(), resource = %resource.uri, "request refused");
        self.metrics.audit(AuditEvent::AccessDenied {
            client_id: principal.client_id.as_deref().unwrap_or(""),
            subject: &principal.subject,
            resource: &resource.uri,
            condition: unmet.condition(),
            stage: "request",
        });
        Err(Denial::access_denied(
            resource,
            unmet.description().to_owned(),
        ))
    }

    /// Spends `caller`'s budget on `resource` (`flows::limits`); a refusal is a 429 or,
    /// without the counters, a 503.
    async fn spend(
        &self,
        resource: &ResourceConfig,
        request: Request<'_>,
        caller: Option<&Principal>,
        uses: impl Fn(&ToolPattern) -> u32,
    ) -> Result<Option<Budget>, Denial> {
        self.limits
            .admit(resource, request.origin, caller, uses)
            .await
            .map_err(Denial::limited)
    }
}

/// Why a request whose path resources on several hosts share, and whose host names
/// none of them, is refused (400).
const UNKNOWN_HOST: &str = "the request's host names none of the resources that share its path";

/// The resource of a request without `Authorization`, if one covers its path.
fn tokenless<'a>(
    request: Request<'_>,
    resource: Option<&'a ResourceConfig>,
) -> Option<&'a ResourceConfig> {
    resource.filter(|_| matches!(request.token, Err(Rejection::Missing)))
}

/// The bearer token from an `Authorization` value (scheme case-insensitive, RFC 6750
/// §2.1); `None` when the request had none.
pub fn bearer(authorization: Option<&[u8]>) -> Result<&str, Rejection> {
    let value = authorization.ok_or(Rejection::Missing)?;
    let space = value
        .iter()
        .position(|b| *b == b' ')
        .ok_or(Rejection::WrongScheme)?;
    if !value[..space].eq_ignore_ascii_case(b"bearer") {
        return Err(Rejection::WrongScheme);
    }
    // Visible ASCII only (RFC 6750's b64token, loosened for providers whose opaque
    // tokens use other punctuation); checked as bytes, cheaper than `to_str`.
    let token = value[space + 1..].trim_ascii();
    if token.is_empty() || !visible_ascii(token) {
        return Err(Rejection::Malformed);
    }
    std::str::from_utf8(token).map_err(|_| Rejection::Malformed)
}

/// Every byte is visible ASCII (0x21..=0x7e). Folded without an early exit, so the
/// compiler checks many bytes per instruction: a kilobyte token is read on every
/// request.
fn visible_ascii(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .fold(true, |ok, b| ok & (b.wrapping_sub(0x21) < 0x5e))
}

#[cfg(test)]
mod tests;
