//! Prometheus metrics: one registry per broker (not the global default, so several
//! brokers in one test process stay apart), exposed as text at `/metrics`.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};

use super::audit::{Audit, AuditEvent};
use super::build_info;
use super::cache_metrics::{self, CacheCounters, CacheName};

/// Latency buckets in seconds: fine below 10 ms, where verification and cache hits
/// live, coarse above.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The broker's metrics. Cheap to clone: every field is a shared handle.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    auth_failures: IntCounterVec,
    discovery_refreshes: IntCounterVec,
    registrations: IntCounterVec,
    clients_removed: prometheus::IntCounter,
    logins: IntCounterVec,
    tokens: IntCounterVec,
    login_state_expired: IntCounterVec,
    invalidations: IntCounterVec,
    tool_denials: IntCounterVec,
    exchange_coalesced: IntCounterVec,
    exchange_lock_failures: prometheus::IntCounter,
    refresh_undos: IntCounterVec,
    redemption_undos: IntCounterVec,
    code_put_backs: IntCounterVec,
    rate_limited: IntCounterVec,
    address_refused: IntCounterVec,
    caches: IntCounterVec,
    upstream_latency: HistogramVec,
    audit: std::sync::Arc<Audit>,
}

impl Metrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        Self::with_audit_subject_key(None)
    }

    /// Metrics whose audit trail pseudonymises subjects with `key` (`[audit]
    /// subject_key`; `None` writes subjects as they are).
    pub fn with_audit_subject_key(
        key: Option<&crate::config::Secret>,
    ) -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let audit = std::sync::Arc::new(Audit::new(&registry)?.with_subject_key(key));
        let requests = IntCounterVec::new(
            Opts::new("http_requests_total", "HTTP requests answered").namespace("token_broker"),
            &["method", "route", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "Time from request to response headers",
            )
            .namespace("token_broker")
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["method", "route"],
        )?;
        let auth_failures = IntCounterVec::new(
            Opts::new("auth_failures_total", "Refused credentials by reason")
                .namespace("token_broker"),
            &["reason"],
        )?;
        let discovery_refreshes = IntCounterVec::new(
            Opts::new(
                "upstream_discovery_refreshes_total",
                "Upstream discovery/JWKS refreshes by outcome (ok, stale: failed but the last good copy is served, failed)",
            )
            .namespace("token_broker"),
            &["outcome"],
        )?;
        let registrations = IntCounterVec::new(
            Opts::new("registrations_total", "Client registrations by outcome (created, reused, invalid, rate_limited, full, failed)")
                .namespace("token_broker"),
            &["outcome"],
        )?;
        let clients_removed = prometheus::IntCounter::with_opts(
            Opts::new(
                "clients_removed_total",
                "Unused or idle client registrations removed by clean-up",
            )
            .namespace("token_broker"),
        )?;
        let logins = IntCounterVec::new(
            Opts::new(
                "logins_total",
                "Login steps by outcome (refused, consent_shown, consent_remembered, consent_remembered_other_user, approved, denied, csrf_refused, upstream_error, completed, failed)",
            )
            .namespace("token_broker"),
            &["outcome"],
        )?;
        let tokens = IntCounterVec::new(
            Opts::new(
                "token_requests_total",
                "Token endpoint requests by grant type and outcome (issued or the OAuth error code)",
            )
            .namespace("token_broker"),
            &["grant_type", "outcome"],
        )?;
        let login_state_expired = IntCounterVec::new(
            Opts::new(
                "login_state_expired_total",
                "Login sessions and codes dropped by the periodic clean-up",
            )
            .namespace("token_broker"),
            &["kind"],
        )?;
        let invalidations = IntCounterVec::new(
            Opts::new(
                "invalidations_total",
                "Cache invalidations applied, by what they covered (grant, subject, client, all) and where they came from (local or peer)",
            )
            .namespace("token_broker"),
            &["kind", "origin"],
        )?;
        registry.register(Box::new(invalidations.clone()))?;
        let tool_denials = IntCounterVec::new(
            Opts::new(
                "tool_denials_total",
                "Tool calls refused, by the matched tool rule and why (insufficient_scope, access_denied)",
            )
            .namespace("token_broker"),
            &["rule", "reason"],
        )?;
        registry.register(Box::new(tool_denials.clone()))?;
        let exchange_coalesced = IntCounterVec::new(
            Opts::new(
                "exchange_coalesced_total",
                "Exchange misses answered by an identical miss's provider call, made in this process (local) or by another replica (replica)",
            )
            .namespace("token_broker"),
            &["where"],
        )?;
        registry.register(Box::new(exchange_coalesced.clone()))?;
        let exchange_lock_failures = prometheus::IntCounter::with_opts(
            Opts::new(
                "exchange_lock_failures_total",
                "Exchange misses that could not use the replicas' shared lock (store unavailable) and called the provider without it, or whose outcome could not be published",
            )
            .namespace("token_broker"),
        )?;
        registry.register(Box::new(exchange_lock_failures.clone()))?;
        let refresh_undos = IntCounterVec::new(
            Opts::new(
                "refresh_rotation_undos_total",
                "Refresh-token rotations whose answer Redis never sent, by what became of the undo: undone (the presented token put back), not_needed (the rotation had not run, or a retry or replay acted since) or given_up (Redis away past 10 minutes: the client's token counts as spent)",
            )
            .namespace("token_broker"),
            &["outcome"],
        )?;
        for outcome in ["undone", "not_needed", "given_up"] {
            refresh_undos.with_label_values(&[outcome]);
        }
        registry.register(Box::new(refresh_undos.clone()))?;
        let redemption_undos = IntCounterVec::new(
            Opts::new(
                "code_redemption_undos_total",
                "Authorization-code redemptions put back because their tokens were never handed out (Redis never answered the redemption, or the tokens could not be issued after it), by what became of it: undone (the code is unspent again), not_needed (the redemption had not run, or was put back already) or given_up (Redis away past 10 minutes: the client must log in again)",
            )
            .namespace("token_broker"),
            &["outcome"],
        )?;
        for outcome in ["undone", "not_needed", "given_up"] {
            redemption_undos.with_label_values(&[outcome]);
        }
        registry.register(Box::new(redemption_undos.clone()))?;
        let code_put_backs = IntCounterVec::new(
            Opts::new(
                "code_put_backs_total",
                "Redeemed authorization codes whose tokens never reached the client, put back so that the client may present them again, by reason: not_issued (issuing failed after the redemption: the client got a 5xx) or not_delivered (the request went away first: its connection reset, the server stopping). On Redis, a put-back Redis did not answer is retried in the background (code_redemption_undos_total)",
            )
            .namespace("token_broker"),
            &["reason"],
        )?;
        for reason in ["not_issued", "not_delivered"] {
            code_put_backs.with_label_values(&[reason]);
        }
        registry.register(Box::new(code_put_backs.clone()))?;
        let rate_limited = IntCounterVec::new(
            Opts::new(
                "rate_limited_total",
                "Requests to protected resources refused by a rate limit: the resource (its configured URI), what keyed the caller (the configured key, or ip) and the budget spent (a credential kind, or tool:<pattern>)",
            )
            .namespace("token_broker"),
            &["resource", "key_kind", "rule"],
        )?;
        registry.register(Box::new(rate_limited.clone()))?;
        let address_refused = IntCounterVec::new(
            Opts::new(
                "address_refused_total",
                "Requests refused for their client address before anything else was read: the target (oauth, or a resource's configured URI) and the list that refused (deny, or allow: not on it)",
            )
            .namespace("token_broker"),
            &["target", "list"],
        )?;
        registry.register(Box::new(address_refused.clone()))?;
        let upstream_latency = HistogramVec::new(
            HistogramOpts::new(
                "upstream_request_duration_seconds",
                "Time from sending an upstream call to its response's head, by operation (discovery, jwks, token, exchange, revocation, registration, metadata_document, client_jwks, mcp_server) and outcome (ok, client_error, server_error, unreachable)",
            )
            .namespace("token_broker")
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["operation", "outcome"],
        )?;
        registry.register(Box::new(upstream_latency.clone()))?;
        registry.register(Box::new(logins.clone()))?;
        registry.register(Box::new(tokens.clone()))?;
        registry.register(Box::new(login_state_expired.clone()))?;
        registry.register(Box::new(registrations.clone()))?;
        registry.register(Box::new(clients_removed.clone()))?;
        registry.register(Box::new(auth_failures.clone()))?;
        registry.register(Box::new(discovery_refreshes.clone()))?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(build_info_gauge()?))?;
        let caches = cache_metrics::register(&registry)?;
        #[cfg(target_os = "linux")]
        registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        Ok(Self {
            registry,
            requests,
            latency,
            auth_failures,
            discovery_refreshes,
            registrations,
            clients_removed,
            logins,
            tokens,
            login_state_expired,
            invalidations,
            tool_denials,
            exchange_coalesced,
            exchange_lock_failures,
            refresh_undos,
            redemption_undos,
            code_put_backs,
            rate_limited,
            address_refused,
            caches,
            upstream_latency,
            audit,
        })
    }

    /// Records one answered request. `route` is the matched pattern (bounded
    /// cardinality), never the raw path.
    pub fn observe_request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        self.requests
            .with_label_values(&[method, route, &status.to_string()])
            .inc();
        self.latency
            .with_label_values(&[method, route])
            .observe(seconds);
    }

    /// Records one upstream call (`telemetry::upstream`, the one place that calls it).
    pub fn observe_upstream(&self, operation: &str, outcome: &str, seconds: f64) {
        self.upstream_latency
            .with_label_values(&[operation, outcome])
            .observe(seconds);
    }

    /// Counts a refused credential; `reason` is one of a fixed set.
    pub fn auth_failure(&self, reason: &str) {
        self.auth_failures.with_label_values(&[reason]).inc();
    }

    /// Counts an upstream discovery refresh: `ok`, `stale` or `failed`.
    pub fn discovery_refresh(&self, outcome: &str) {
        self.discovery_refreshes.with_label_values(&[outcome]).inc();
    }

    /// Counts a registration attempt by outcome.
    pub fn registration(&self, outcome: &str) {
        self.registrations.with_label_values(&[outcome]).inc();
    }

    /// Counts a login step by outcome.
    pub fn login(&self, outcome: &str) {
        self.logins.with_label_values(&[outcome]).inc();
    }

    /// Counts a token request by grant type and outcome.
    pub fn token(&self, grant_type: &str, outcome: &str) {
        self.tokens.with_label_values(&[grant_type, outcome]).inc();
    }

    /// Counts sessions (`kind = "session"`) or codes (`"code"`) dropped by clean-up.
    pub fn login_state_expired(&self, kind: &str, count: u64) {
        self.login_state_expired
            .with_label_values(&[kind])
            .inc_by(count);
    }

    /// Counts an applied invalidation.
    pub fn invalidation(&self, kind: &str, origin: &str) {
        self.invalidations.with_label_values(&[kind, origin]).inc();
    }

    /// Counts a refused tool call by its rule's pattern (bounded by configuration).
    pub fn tool_denial(&self, rule: &str, reason: &str) {
        self.tool_denials.with_label_values(&[rule, reason]).inc();
    }

    /// Counts a request refused for its client address. Both labels come from
    /// configuration (never the address), so their number is bounded.
    pub fn address_refused(&self, target: &str, list: &str) {
        self.address_refused
            .with_label_values(&[target, list])
            .inc();
    }

    /// Counts a request refused by a rate limit. Every label comes from configuration
    /// (never a subject, client id or address), so their number is bounded.
    pub fn rate_limited(&self, resource: &str, key_kind: &str, rule: &str) {
        self.rate_limited
            .with_label_values(&[resource, key_kind, rule])
            .inc();
    }

    /// Counts an exchange miss coalesced `local`ly or with another `replica`.
    pub fn exchange_coalesced(&self, place: &str) {
        self.exchange_coalesced.with_label_values(&[place]).inc();
    }

    /// Counts an exchange miss that went without the replicas' lock.
    pub fn exchange_lock_failure(&self) {
        self.exchange_lock_failures.inc();
    }

    /// Counts the end of one undo of a refresh-token rotation whose answer was lost:
    /// `undone`, `not_needed` or `given_up`.
    pub fn refresh_undo(&self, outcome: &'static str) {
        self.refresh_undos.with_label_values(&[outcome]).inc();
    }

    /// Counts the end of one put-back of a code redemption whose tokens were never
    /// handed out: `undone`, `not_needed` or `given_up`.
    pub fn redemption_undo(&self, outcome: &'static str) {
        self.redemption_undos.with_label_values(&[outcome]).inc();
    }

    /// Counts a redeemed code put back (tried, done or not) because its tokens never
    /// reached the client: `not_issued` or `not_delivered`.
    pub fn code_put_back(&self, reason: &'static str) {
        self.code_put_backs.with_label_values(&[reason]).inc();
    }

    /// The hit and miss counters of `cache`, resolved now: the cache keeps them, so a
    /// lookup counts without a label lookup.
    pub fn cache(&self, cache: CacheName) -> CacheCounters {
        cache_metrics::counters(&self.caches, cache)
    }

    /// Counts clients removed by clean-up.
    pub fn clients_removed(&self, count: u64) {
        self.clients_removed.inc_by(count);
    }

    /// Writes and counts one audit event (see [`super::audit`]).
    pub fn audit(&self, event: AuditEvent<'_>) {
        self.audit.emit(event);
    }

    /// The registry, for later modules that register their own collectors.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> Result<String, prometheus::Error> {
        let mut buffer = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut buffer)?;
        String::from_utf8(buffer).map_err(|e| prometheus::Error::Msg(e.to_string()))
    }
}

/// `token_broker_build_info{version,commit,profile} 1`: the build as labels, the usual
/// way to join a version onto other series.
fn build_info_gauge() -> Result<IntGauge, prometheus::Error> {
    let gauge = IntGauge::with_opts(
        Opts::new(
            "build_info",
            "The running build: crate version, git commit (`unknown` when built outside a checkout) and build profile; always 1",
        )
        .namespace("token_broker")
        .const_label("version", build_info::VERSION)
        .const_label("commit", build_info::COMMIT)
        .const_label("profile", build_info::PROFILE),
    )?;
    gauge.set(1);
    Ok(gauge)
}
