//! The composition root: every part of the broker built from the configuration, in
//! the order they depend on each other — metrics, discovery, the store and the keys,
//! the verifier, the actors, then the flows over them.

use std::sync::Arc;

use crate::actors::discovery::{Discovery, DiscoveryHandle, Timing};
use crate::actors::registration::{
    Registration, RegistrationHandle, Upstream as RegistrationUpstream,
};
use crate::actors::scopes::{Invalidator, Listen, ScopeCache};
use crate::actors::sessions::{SessionLimits, Sessions, SessionsHandle};
use crate::clock::Clock;
use crate::config::Config;
use crate::flows::login::{Login, LoginSettings};
use crate::flows::readiness::Readiness;
use crate::http::login_cookies::LoginCookies;
use crate::http::metadata::ServerMetadata;
use crate::http::resource_metadata::ResourceDocuments;
use crate::store::Store;
use crate::telemetry::cache_metrics::CacheName;
use crate::telemetry::metrics::Metrics;
use crate::telemetry::propagation::Propagation;
use crate::telemetry::upstream::UpstreamCalls;
use crate::tokens::Verifier;
use crate::tokens::api_keys::ApiKeys;
use crate::tokens::introspect::Introspector;
use crate::tokens::signing::{SigningKeys, reload_periodically};
use crate::tokens::verify::{BrokerTrust, VerifierParts};
use crate::upstream::http::UpstreamHttp;
use crate::upstream::token::ClientCredentials;

use super::StartError;

/// Everything the composition root built: the flows each handler receives as its own
/// `web::Data`, and the handles behind them. No handler receives this struct; `serve`,
/// the demo and the tests hold it to reach the parts (a sweep to run, a cache to
/// clear, the clock's store). It holds no logic.
pub struct Broker {
    pub config: Arc<Config>,
    pub clock: Clock,
    pub metrics: Metrics,
    pub readiness: Arc<Readiness>,
    pub metadata: Arc<ServerMetadata>,
    /// Protected-resource metadata (RFC 9728), rendered once.
    pub resource_documents: Arc<ResourceDocuments>,
    pub discovery: DiscoveryHandle,
    pub verifier: Verifier,
    pub store: Arc<dyn Store>,
    pub registration: RegistrationHandle,
    /// Dynamic client registration (`POST /oauth/register`).
    pub registrar: Arc<crate::flows::registration::Registrar>,
    /// Login sessions and one-time codes.
    pub sessions: SessionsHandle,
    /// The login's cookies (browser binding, remembered approvals).
    pub cookies: Arc<LoginCookies>,
    /// The broker's signing keys (`/jwks.json`, issued access tokens).
    pub signing: Arc<SigningKeys>,
    /// What each grant may still do (consulted on every broker-token verification).
    pub grants: ScopeCache,
    /// The one HTTP client for the provider.
    pub upstream_http: UpstreamHttp,
    /// Every upstream call's span, trace context and latency histogram (the gateway's
    /// too); its `Propagation` says whether the broker traces at all.
    pub upstream_calls: UpstreamCalls,
    /// Token exchange (RFC 8693): the cache and the exchange actor's handle.
    pub exchanger: crate::actors::exchange::Exchanger,
    /// Token exchange (RFC 8693): the flow.
    pub exchange: Arc<crate::flows::exchange::Exchange>,
    /// The client registry: registered clients and metadata documents.
    pub clients: Arc<crate::flows::clients::Clients>,
    /// The grant lifecycle (token, revoke, introspect, admin).
    pub grant_flow: Arc<crate::flows::grants::Grants>,
    /// Access to the protected resources (forward-auth, the gateway, the broker's own
    /// protected routes).
    pub access: Arc<crate::flows::access::Access>,
    /// The login (authorize, consent, callback).
    pub login: Arc<Login>,
    /// The operator's API (`/admin/…`): listings, revocations, client deletion.
    pub admin: Arc<crate::flows::admin::Admin>,
    /// Client addresses and the OAuth endpoints' address list.
    pub addresses: Arc<crate::flows::addresses::Addresses>,
    /// The operator's view and reset of rate-limit budgets.
    pub budgets: Arc<crate::flows::limits::Budgets>,
}

/// Builds every part from the configuration: the store, the keys, the verifier, the
/// actors (started, so this must run inside an actix `System`) and the flows over them.
pub fn build(config: Arc<Config>, clock: Clock) -> Result<Arc<Broker>, StartError> {
    let metrics = Metrics::with_audit_subject_key(config.audit.subject_key.as_ref())?;
    let upstream_calls = UpstreamCalls::new(
        metrics.clone(),
        Propagation::new(config.telemetry.otlp.is_some()),
    );
    let http = UpstreamHttp::new(config.upstream.timeout)
        .map_err(StartError::Upstream)?
        .with_calls(upstream_calls.clone());
    let upstream_http = http.clone();
    // What can fail comes before the first actor starts: an actor left behind by a
    // failed start panics as the runtime goes away, burying the reason.
    let opened = crate::store::open_shared(&config.store, Some(&metrics))?;
    let store: Arc<dyn Store> = opened.store;
    let signing = Arc::new(SigningKeys::for_config(
        &config,
        store.clone(),
        clock.unix(),
    )?);
    let discovery = Discovery::start(
        http.clone(),
        config.upstream.issuer.clone(),
        Timing::from_config(&config.upstream),
        clock.clone(),
        metrics.clone(),
    );
    let issuer = config.upstream.issuer.as_str().to_owned();
    actix_web::rt::spawn(reload_periodically(signing.clone(), clock.clone()));
    let grants = ScopeCache::new(store.clone(), clock.clone(), &config.scope_cache)
        .counting(metrics.cache(CacheName::GrantStanding));
    let introspector = config.verify.introspection.then(|| {
        Introspector::new(
            http,
            discovery.clone(),
            ClientCredentials::of(&config.upstream),
            issuer.clone(),
            config.verify.introspection_cache_ttl,
            config.verify.cache_capacity,
            clock.clone(),
        )
        .counting(metrics.cache(CacheName::Introspection))
    });
    let verifier = Verifier::new(
        discovery.clone(),
        VerifierParts {
            issuer,
            leeway: config.verify.leeway,
            capacity: config.verify.cache_capacity,
            clock: clock.clone(),
            api_keys: ApiKeys::new(config.api_keys.clone()),
            introspector,
            claims: config.upstream.claims.clone(),
            broker: Some(BrokerTrust {
                issuer: config.server.public_url.as_str().to_owned(),
                keys: signing.clone(),
                grants: grants.clone(),
                passthrough: (config.tokens.mode == crate::config::TokenMode::Passthrough)
                    .then(|| store.clone()),
            }),
        },
    )
    .counting(metrics.cache(CacheName::VerifiedToken));
    let registration = Registration::start(
        config.registration.clone(),
        store.clone(),
        clock.clone(),
        metrics.clone(),
        RegistrationUpstream {
            http: upstream_http.clone(),
            discovery: discovery.clone(),
            callback: config.server.public_url.endpoint("/oauth/callback"),
            profile: config.upstream.profile,
            audiences: config
                .resources
                .iter()
                .flat_map(|r| r.audiences.iter().cloned())
                .collect(),
        },
        opened.recent_clients.clone(),
    );
    let sessions = Sessions::new(
        SessionLimits {
            session_ttl: config.sessions.ttl,
            code_ttl: config.sessions.code_ttl,
            max_sessions: config.sessions.max_sessions,
            max_codes: config.sessions.max_codes,
            sweep_interval: config.sessions.run_interval,
        },
        clock.clone(),
    )
    .with_login_state(opened.login_state.clone())
    .with_metrics(metrics.clone())
    .with_grant_sweep(store.clone(), config.refresh.ttl);
    // Metadata documents and registered clients' `jwks_uri` are fetched under the
    // same SSRF rules.
    let loopback = config.registration.metadata_documents_allow_loopback;
    let guarded = crate::upstream::cimd::CimdFetcher::new(
        crate::upstream::cimd::CimdPolicy {
            allow_loopback: loopback,
            allow_private: config.registration.metadata_documents_allow_private,
            allow_http: loopback,
            redirects: crate::domain::client_metadata::RedirectPolicy {
                allow_private_use_schemes: config.registration.allow_private_use_schemes,
                allowed_patterns: config.registration.redirect_uri_allow_list.clone(),
            },
            ..Default::default()
        },
        clock.clone(),
    )
    .map_err(StartError::Upstream)?
    .with_calls(upstream_calls.clone());
    let metadata_documents = config
        .registration
        .metadata_documents
        .then(|| guarded.clone());
    // The exchange actor: exchange misses (one provider call per key, on a shared
    // store across replicas too) and grants' provider refreshes (one per grant).
    let mut exchanges = crate::actors::exchange::Exchanges::new(
        upstream_http.clone(),
        discovery.clone(),
        clock.clone(),
        config.exchange.cache_capacity,
        config.exchange.skew,
    )
    .with_metrics(metrics.clone());
    let mut refreshes = crate::actors::exchange::Refreshes::new(store.clone(), clock.clone())
        .with_max_staleness(config.refresh.max_upstream_staleness);
    if let Some(lock) = opened.exchange_lock.clone() {
        exchanges = exchanges.with_replicas(lock, config.upstream.timeout);
    }
    if let Some(lock) = opened.refresh_lock.clone() {
        refreshes = refreshes.with_lock(lock, config.upstream.timeout);
    }
    let (exchanger, upstream_refresh) =
        crate::actors::exchange::ExchangeActor::start(exchanges, refreshes);
    let mut invalidator = Invalidator::new(
        grants.clone(),
        verifier.clone(),
        exchanger.clone(),
        metrics.clone(),
    );
    // Replicas on a shared store tell each other of every invalidation.
    if let Some(peers) = &opened.peers {
        invalidator = invalidator.with_peers(Arc::new(peers.clone()));
    }
    let invalidator = actix::Actor::start(invalidator);
    if let Some(peers) = &opened.peers {
        invalidator.do_send(Listen(peers.subscribe()));
    }
    let sessions = SessionsHandle::spawn(sessions);
    // `[[clients]]` and registered clients; `private_key_jwt` keys cached like the
    // provider's.
    let clients = Arc::new(crate::flows::clients::Clients::new(
        crate::flows::clients::ClientsParts {
            store: store.clone(),
            documents: metadata_documents,
            configured: config.clients.clone(),
            assertions: Arc::new(crate::tokens::client_assertion::ClientAssertions::new(
                guarded,
                upstream_http.clone(),
                clock.clone(),
                config.upstream.discovery_ttl,
                config.upstream.jwks_refetch_interval,
            )),
            issuer: config.server.public_url.as_str().to_owned(),
            clock: clock.clone(),
            leeway: config.verify.leeway,
        },
    ));
    // `[[enterprise.issuers]]`: whose ID-JAGs the token endpoint honours; the upstream
    // provider's entry reads discovery's keys.
    let assertions = Arc::new(crate::tokens::id_jag::AssertionVerifier::new(
        &config.enterprise,
        &config.upstream.issuer,
        Arc::new(discovery.clone()),
        upstream_http.clone(),
        clock.clone(),
        crate::tokens::id_jag::KeyTiming {
            ttl: config.upstream.discovery_ttl,
            refetch_interval: config.upstream.jwks_refetch_interval,
        },
    ));
    let grant_flow = Arc::new(crate::flows::grants::Grants::new(
        crate::flows::grants::Settings::from_config(&config),
        crate::flows::grants::Parts {
            store: store.clone(),
            clock: clock.clone(),
            metrics: metrics.clone(),
            signing: signing.clone(),
            verifier: verifier.clone(),
            clients: clients.clone(),
            discovery: discovery.clone(),
            upstream_http: upstream_http.clone(),
            invalidator: crate::actors::scopes::handle::InvalidatorHandle::new(invalidator),
            refresh_once: upstream_refresh,
            sessions: sessions.clone(),
            assertions,
        },
    ));
    let admin = Arc::new(crate::flows::admin::Admin::new(
        crate::flows::admin::AdminParts {
            grants: grant_flow.clone(),
            clients: clients.clone(),
            store: store.clone(),
            login_state: opened.login_state.clone(),
            clock: clock.clone(),
            upstream_http: upstream_http.clone(),
        },
    ));
    let exchange = Arc::new(crate::flows::exchange::Exchange::new(
        crate::flows::exchange::ExchangeParts {
            config: config.exchange.clone(),
            resources: config.resources.clone(),
            credentials: ClientCredentials::of(&config.upstream),
            verifier: verifier.clone(),
            exchanger: exchanger.clone(),
            store: store.clone(),
            grants: grant_flow.clone(),
            clock: clock.clone(),
            metrics: metrics.clone(),
        },
    ));
    // Budgets on the protected resources (`[resources.rate_limit]`), on the same
    // counters as registration's limit: shared by replicas on Redis.
    // Client addresses (`server.trusted_proxies`) and the address lists: the OAuth
    // endpoints' here, each resource's in the access flow.
    let addresses = Arc::new(crate::flows::addresses::Addresses::new(
        config.server.trusted_proxies.iter().copied().collect(),
        config.server.oauth_addresses.clone(),
        metrics.clone(),
    ));
    addresses.warn_untrusted_lists(&config.resources);
    let resources: Arc<[crate::config::ResourceConfig]> =
        config.resources.iter().cloned().collect();
    let limits = crate::flows::limits::Limits::new(
        opened.rate_limits.clone(),
        clock.clone(),
        metrics.clone(),
        addresses.clone(),
    );
    // The operator's view and reset of budgets (`/admin/rate-limits`).
    let budgets = Arc::new(crate::flows::limits::Budgets::new(
        resources.clone(),
        opened.rate_limits.clone(),
        clock.clone(),
        metrics.clone(),
    ));
    let access = Arc::new(crate::flows::access::Access::new(
        resources,
        addresses.clone(),
        verifier.clone(),
        limits,
        metrics.clone(),
    ));
    let cookies = Arc::new(LoginCookies::load(&config, &store));
    let login = Arc::new(Login {
        settings: LoginSettings::from_config(&config),
        clients: clients.clone(),
        sessions: sessions.clone(),
        approvals: cookies.approvals(),
        discovery: discovery.clone(),
        registration: registration.clone(),
        store: store.clone(),
        upstream_http: upstream_http.clone(),
        clock: clock.clone(),
        metrics: metrics.clone(),
    });
    // Registrations per client IP (`registration.rate_limit_*`), shared by replicas on Redis.
    let registrar = crate::flows::registration::Registrar::new(
        registration.clone(),
        crate::flows::registration::RateLimiter::new(
            "registration",
            config.registration.rate_limit,
            opened.rate_limits,
            clock.clone(),
        ),
        crate::domain::client_metadata::RedirectPolicy {
            allow_private_use_schemes: config.registration.allow_private_use_schemes,
            allowed_patterns: config.registration.redirect_uri_allow_list.clone(),
        },
        config.server.trusted_proxies.clone(),
        metrics.clone(),
    );
    let readiness = Arc::new(Readiness::new(
        store.clone(),
        config.store.backend.name(),
        discovery.clone(),
    ));
    Ok(Arc::new(Broker {
        admin,
        access,
        addresses,
        budgets,
        exchanger,
        exchange,
        grants,
        clients,
        grant_flow,
        login,
        signing,
        upstream_http,
        upstream_calls,
        sessions,
        cookies,
        metadata: Arc::new(ServerMetadata::from_config(&config)),
        resource_documents: Arc::new(ResourceDocuments::from_config(&config)),
        registrar,
        registration,
        store,
        metrics,
        readiness,
        discovery,
        verifier,
        clock,
        config,
    }))
}
