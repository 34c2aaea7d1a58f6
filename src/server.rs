//! Builds the HTTP server from a validated `Config`: shared state, middleware and the
//! route table. `serve`, the demo and the integration tests all start it through
//! [`start`], on a listener they bound themselves.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServerHandle, ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::middleware::{DefaultHeaders, from_fn};
use actix_web::web::ServiceConfig;
use actix_web::{App, HttpServer, web};

use crate::actors::discovery::{Discovery, DiscoveryHandle, Timing};
use crate::actors::registration::{
    Registration, RegistrationHandle, Upstream as RegistrationUpstream,
};
use crate::actors::scopes::{Invalidator, Listen, ScopeCache};
use crate::actors::sessions::{SessionLimits, Sessions, SessionsHandle};
use crate::clock::Clock;
use crate::config::Config;
use crate::flows::login::{Login, LoginSettings};
use crate::http::login_cookies::LoginCookies;
use crate::http::metadata::ServerMetadata;
use crate::http::{middleware, routes};
use crate::store::Store;
use crate::telemetry::metrics::Metrics;
use crate::tokens::Verifier;
use crate::tokens::api_keys::ApiKeys;
use crate::tokens::introspect::Introspector;
use crate::tokens::signing::{SigningKeys, reload_periodically};
use crate::tokens::verify::BrokerTrust;
use crate::tokens::verify::VerifierParts;
use crate::upstream::http::UpstreamHttp;
use crate::upstream::token::ClientCredentials;

/// What every handler can reach. Handlers hold no business state of their own.
pub struct AppState {
    pub config: Arc<Config>,
    pub clock: Clock,
    pub metrics: Metrics,
    pub readiness: Readiness,
    pub metadata: ServerMetadata,
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
    /// Token exchange (RFC 8693): the cache and the exchange actor's handle.
    pub exchanger: crate::actors::exchange::Exchanger,
    /// Token exchange (RFC 8693): the flow, also registered as its own `web::Data`.
    pub exchange: Arc<crate::flows::exchange::Exchange>,
    /// The client registry: registered clients and metadata documents.
    pub clients: Arc<crate::flows::clients::Clients>,
    /// The grant lifecycle (token, revoke, introspect, admin), its own `web::Data`.
    pub grant_flow: Arc<crate::flows::grants::Grants>,
    /// Access to the protected resources (forward-auth, the gateway, the broker's own
    /// protected routes).
    pub access: Arc<crate::flows::access::Access>,
    /// The login (authorize, consent, callback).
    pub login: Arc<Login>,
}

/// The conditions `/readyz` checks besides upstream discovery (which the handler
/// asks the discovery handle about): draining after SIGTERM.
#[derive(Default)]
pub struct Readiness {
    draining: AtomicBool,
}

impl Readiness {
    /// Marks the broker as shutting down: `/readyz` fails from now on so load
    /// balancers stop sending new work while in-flight requests finish.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// The unmet conditions, empty when ready.
    pub fn unmet(&self) -> Vec<&'static str> {
        let mut unmet = Vec::new();
        if self.draining.load(Ordering::SeqCst) {
            unmet.push("shutting down");
        }
        unmet
    }
}

/// Why the broker could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot start the HTTP server: {0}")]
    Server(std::io::Error),
    #[error("cannot set up metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("cannot set up the upstream client: {0}")]
    Upstream(String),
    #[error("cannot load the signing keys: {0}")]
    Signing(#[from] crate::tokens::signing::SigningError),
    #[error("cannot open the store: {0}")]
    Store(#[from] crate::store::StoreError),
}

/// A started broker: its address, a handle to stop it, and the server future, which
/// must be awaited (or spawned) for it to run.
pub struct Running {
    pub addr: SocketAddr,
    pub handle: ServerHandle,
    pub state: web::Data<AppState>,
    pub server: Server,
}

impl Running {
    /// Serves until `shutdown` resolves, then stops gracefully: `/readyz` starts
    /// failing, no new connections are accepted, idle connections are closed and
    /// requests in flight finish (for at most `server.shutdown_timeout`).
    pub async fn serve_until(
        self,
        shutdown: impl Future<Output = ()> + 'static,
    ) -> std::io::Result<()> {
        let state = self.state.clone();
        serve_until(self.server, shutdown, move || {
            state.readiness.start_draining()
        })
        .await
    }
}

/// Runs `server` until `shutdown` resolves, calls `on_shutdown`, then stops it
/// gracefully (listener closed, idle connections closed, in-flight requests finish).
pub async fn serve_until(
    server: Server,
    shutdown: impl Future<Output = ()> + 'static,
    on_shutdown: impl FnOnce() + 'static,
) -> std::io::Result<()> {
    let handle = server.handle();
    actix_web::rt::spawn(async move {
        shutdown.await;
        tracing::info!("shutdown signal received: finishing in-flight requests");
        on_shutdown();
        handle.stop(true).await;
    });
    server.await?;
    tracing::info!("stopped");
    Ok(())
}

/// Checks that need the provider, run by `serve` before it accepts requests: in
/// proxy registration mode the provider must offer dynamic registration. An
/// unreachable provider is not fatal (`/readyz` reports it); a provider that answers
/// without a `registration_endpoint` is a configuration error.
pub async fn startup_checks(state: &AppState) -> Result<(), String> {
    if state.config.registration.mode != crate::config::RegistrationMode::Proxy {
        return Ok(());
    }
    match state.discovery.current().await {
        Ok(snapshot) if snapshot.info.registration_endpoint.is_none() => Err(format!(
            "registration.mode = \"proxy\" needs dynamic client registration, but the provider `{}` advertises no registration_endpoint; use mode = \"local\"",
            snapshot.info.issuer
        )),
        Ok(_) => Ok(()),
        Err(error) => {
            tracing::warn!(%error, "provider unreachable at start-up: proxy registration waits for it");
            Ok(())
        }
    }
}

/// Binds `config.server.listen` and starts the broker on it.
pub fn bind_and_start(config: Arc<Config>) -> Result<Running, StartError> {
    let addr = config.server.listen;
    let listener = TcpListener::bind(addr).map_err(|source| StartError::Bind { addr, source })?;
    start(config, listener)
}

/// The shared state every handler reaches, built from configuration. Starts the
/// actors, so it must run inside an actix `System`.
pub fn state(config: Arc<Config>, clock: Clock) -> Result<web::Data<AppState>, StartError> {
    let metrics = Metrics::new()?;
    let http = UpstreamHttp::new(config.upstream.timeout).map_err(StartError::Upstream)?;
    let upstream_http = http.clone();
    let discovery = Discovery::start(
        http.clone(),
        config.upstream.issuer.clone(),
        Timing::from_config(&config.upstream),
        clock.clone(),
        metrics.clone(),
    );
    let issuer = config.upstream.issuer.as_str().to_owned();
    let opened = crate::store::open_shared(&config.store)?;
    let store: Arc<dyn Store> = opened.store;
    let signing = Arc::new(SigningKeys::for_config(
        &config,
        store.clone(),
        clock.unix(),
    )?);
    actix_web::rt::spawn(reload_periodically(signing.clone(), clock.clone()));
    let grants = ScopeCache::new(store.clone(), clock.clone(), &config.scope_cache);
    let introspector = config.verify.introspection.then(|| {
        Introspector::new(
            http,
            discovery.clone(),
            ClientCredentials {
                client_id: config.upstream.client_id.clone(),
                secret: config.upstream.client_secret.clone(),
            },
            issuer.clone(),
            config.verify.introspection_cache_ttl,
            config.verify.cache_capacity,
            clock.clone(),
        )
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
            broker: Some(BrokerTrust {
                issuer: config.server.public_url.as_str().to_owned(),
                keys: signing.clone(),
                grants: grants.clone(),
                passthrough: (config.tokens.mode == crate::config::TokenMode::Passthrough)
                    .then(|| store.clone()),
            }),
        },
    );
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
    let metadata_documents = if config.registration.metadata_documents {
        let loopback = config.registration.metadata_documents_allow_loopback;
        let policy = crate::upstream::cimd::CimdPolicy {
            allow_loopback: loopback,
            allow_private: config.registration.metadata_documents_allow_private,
            allow_http: loopback,
            redirects: crate::domain::client_metadata::RedirectPolicy {
                allow_private_use_schemes: config.registration.allow_private_use_schemes,
                allowed_patterns: config.registration.redirect_uri_allow_list.clone(),
            },
            ..Default::default()
        };
        Some(
            crate::upstream::cimd::CimdFetcher::new(policy, clock.clone())
                .map_err(StartError::Upstream)?,
        )
    } else {
        None
    };
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
    let clients = Arc::new(crate::flows::clients::Clients::new(
        store.clone(),
        metadata_documents,
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
        },
    ));
    let exchange = Arc::new(crate::flows::exchange::Exchange::new(
        crate::flows::exchange::ExchangeParts {
            config: config.exchange.clone(),
            resources: config.resources.clone(),
            credentials: ClientCredentials {
                client_id: config.upstream.client_id.clone(),
                secret: config.upstream.client_secret.clone(),
            },
            verifier: verifier.clone(),
            exchanger: exchanger.clone(),
            store: store.clone(),
            grants: grant_flow.clone(),
            clock: clock.clone(),
            metrics: metrics.clone(),
        },
    ));
    let access = Arc::new(crate::flows::access::Access::new(
        config.resources.iter().cloned().collect(),
        verifier.clone(),
        metrics.clone(),
    ));
    let sessions = SessionsHandle::spawn(sessions);
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
    Ok(web::Data::new(AppState {
        access,
        exchanger,
        exchange,
        grants,
        clients,
        grant_flow,
        login,
        signing,
        upstream_http,
        sessions,
        cookies,
        metadata: ServerMetadata::from_config(&config),
        registrar,
        registration,
        store,
        metrics,
        readiness: Readiness::default(),
        discovery,
        verifier,
        clock,
        config,
    }))
}

/// The application: state, routes and middleware. Middleware wraps every route,
/// including any a caller registers on the returned `App`.
pub fn app(
    state: web::Data<AppState>,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let gateway_key = state.cookies.derived_key(crate::gateway::SESSION_KEY_LABEL);
    App::new()
        .app_data(state.clone())
        .app_data(web::Data::from(state.clients.clone()))
        .app_data(web::Data::from(state.grant_flow.clone()))
        .app_data(web::Data::from(state.access.clone()))
        .app_data(web::Data::from(state.exchange.clone()))
        .app_data(web::Data::new(state.config.forward_auth.clone()))
        .configure(routes::configure(&state.config))
        .configure(crate::gateway::routes(
            &state.config.gateways,
            gateway_key,
            state.config.server.max_body_bytes,
        ))
        .app_data(web::Data::from(state.login.clone()))
        .app_data(web::Data::from(state.cookies.clone()))
        .app_data(web::Data::from(state.registrar.clone()))
        .default_service(web::to(routes::not_found))
        .wrap(from_fn(middleware::limit_body))
        .wrap(
            DefaultHeaders::new()
                .add(("Cache-Control", "no-store"))
                .add(("Pragma", "no-cache"))
                .add(("X-Content-Type-Options", "nosniff")),
        )
        .wrap(from_fn(middleware::observe))
}

/// Starts the broker on an already bound listener. Signals are not handled here: the
/// caller decides when to stop ([`Running::serve_until`]).
pub fn start(config: Arc<Config>, listener: TcpListener) -> Result<Running, StartError> {
    start_with(
        config,
        listener,
        Clock::system(),
        |_: &mut ServiceConfig| {},
    )
}

/// Like [`start`], with more routes on the same application and middleware: the demo
/// mounts its example MCP server this way, and tests mount probes.
pub fn start_with<F>(
    config: Arc<Config>,
    listener: TcpListener,
    clock: Clock,
    extra: F,
) -> Result<Running, StartError>
where
    F: Fn(&mut ServiceConfig) + Clone + Send + 'static,
{
    let addr = listener.local_addr().map_err(StartError::Server)?;
    let state = state(config.clone(), clock)?;
    let app_state = state.clone();
    let server = HttpServer::new(move || app(app_state.clone()).configure(extra.clone()))
        .workers(config.server.workers)
        .shutdown_timeout(config.server.shutdown_timeout.as_secs().max(1))
        .disable_signals()
        .listen(listener)
        .map_err(StartError::Server)?
        .run();
    Ok(Running {
        addr,
        handle: server.handle(),
        state,
        server,
    })
}
