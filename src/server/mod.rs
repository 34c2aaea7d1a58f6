//! Builds the HTTP server from a validated `Config`: the composition root
//! (`broker.rs`: every part built from configuration slices), the application
//! (`app.rs`: each handler's parts registered as their own `web::Data`, routes and
//! middleware) and the server's lifecycle here. `serve`, the demo and the integration
//! tests all start it through [`start`], on a listener they bound themselves; with
//! `server.management_listen`, a second server on its own listener serves the
//! operational routes (`management.rs`).

mod app;
mod broker;
mod management;

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use actix_web::HttpServer;
use actix_web::dev::{Server, ServerHandle};
use actix_web::web::ServiceConfig;

pub use self::app::{Surface, app};
pub use self::broker::{Broker, build};
pub use self::management::ManagementPort;
use crate::clock::Clock;
use crate::config::{Config, ServerConfig};

/// Why the broker could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// `server.{key}` cannot be bound (in use, not an address of this host, a
    /// privileged port).
    #[error("cannot listen on {addr} (server.{key}): {source}")]
    Bind {
        key: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    /// The listeners handed in do not match `server.management_listen`.
    #[error("{0}")]
    Listeners(&'static str),
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
    /// The public port's address.
    pub addr: SocketAddr,
    /// Stops the public port's server.
    pub handle: ServerHandle,
    pub state: Arc<Broker>,
    pub server: Server,
    /// The management port, when `server.management_listen` is set: already serving;
    /// [`Running::serve_until`] stops it once the public port has stopped.
    pub management: Option<ManagementPort>,
}

impl Running {
    /// Serves until `shutdown` resolves, then stops gracefully: `/readyz` starts
    /// failing, no new connections are accepted on the public port, idle connections
    /// are closed and requests in flight finish (for at most
    /// `server.shutdown_timeout`). The management port keeps answering — `/readyz`
    /// says the broker is draining, `/metrics` shows the drain — until the public
    /// port has stopped, then stops too.
    pub async fn serve_until(
        self,
        shutdown: impl Future<Output = ()> + 'static,
    ) -> std::io::Result<()> {
        let state = self.state.clone();
        let public = serve_until(self.server, shutdown, move || {
            state.readiness.start_draining()
        })
        .await;
        let management = match self.management {
            Some(port) => port.stop().await,
            None => Ok(()),
        };
        public.and(management)
    }
}

/// The sockets a broker serves on, bound by the caller: `public` for everything
/// clients reach; `management` for the operational routes, given exactly when
/// `server.management_listen` is set.
pub struct Listeners {
    pub public: TcpListener,
    pub management: Option<TcpListener>,
}

impl Listeners {
    /// Binds `server.listen` and, when set, `server.management_listen`.
    pub fn bind(config: &ServerConfig) -> Result<Self, StartError> {
        Ok(Self {
            public: bind("listen", config.listen)?,
            management: bind_management(config)?,
        })
    }
}

fn bind(key: &'static str, addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr).map_err(|source| StartError::Bind { key, addr, source })
}

/// `server.management_listen` bound, when set.
fn bind_management(config: &ServerConfig) -> Result<Option<TcpListener>, StartError> {
    config
        .management_listen
        .map(|addr| bind("management_listen", addr))
        .transpose()
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
pub async fn startup_checks(state: &Broker) -> Result<(), String> {
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

/// Binds `server.listen` (and `server.management_listen`, when set) and starts the
/// broker on them.
pub fn bind_and_start(config: Arc<Config>) -> Result<Running, StartError> {
    let listeners = Listeners::bind(&config.server)?;
    start_on(
        config,
        listeners,
        Clock::system(),
        |_: &mut ServiceConfig| {},
    )
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
/// mounts its example MCP server this way, and tests mount probes. The management
/// port, when configured, is bound here.
pub fn start_with<F>(
    config: Arc<Config>,
    listener: TcpListener,
    clock: Clock,
    extra: F,
) -> Result<Running, StartError>
where
    F: Fn(&mut ServiceConfig) + Clone + Send + 'static,
{
    let listeners = Listeners {
        public: listener,
        management: bind_management(&config.server)?,
    };
    start_on(config, listeners, clock, extra)
}

/// Like [`start_with`], on listeners the caller bound (tests bind both ports to
/// `127.0.0.1:0`). `extra` routes go on the public port.
pub fn start_on<F>(
    config: Arc<Config>,
    listeners: Listeners,
    clock: Clock,
    extra: F,
) -> Result<Running, StartError>
where
    F: Fn(&mut ServiceConfig) + Clone + Send + 'static,
{
    // Fail closed: the operational routes never land on the public port because a
    // listener was forgotten.
    let surface = match (&config.server.management_listen, &listeners.management) {
        (Some(_), Some(_)) => Surface::Public,
        (None, None) => Surface::Whole,
        (Some(_), None) => {
            return Err(StartError::Listeners(
                "server.management_listen is set but no management listener was given",
            ));
        }
        (None, Some(_)) => {
            return Err(StartError::Listeners(
                "a management listener was given but server.management_listen is not set",
            ));
        }
    };
    let addr = listeners.public.local_addr().map_err(StartError::Server)?;
    let state = build(config.clone(), clock)?;
    let parts = state.clone();
    let server = HttpServer::new(move || app(parts.clone(), surface).configure(extra.clone()))
        .workers(config.server.workers)
        .shutdown_timeout(config.server.shutdown_timeout.as_secs().max(1))
        .disable_signals()
        .listen(listeners.public)
        .map_err(StartError::Server)?
        .run();
    let management = listeners
        .management
        .map(|listener| ManagementPort::start(state.clone(), listener))
        .transpose()?;
    Ok(Running {
        addr,
        handle: server.handle(),
        state,
        server,
        management,
    })
}
