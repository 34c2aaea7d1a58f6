//! Builds the HTTP server from a validated `Config`: the composition root
//! (`broker.rs`: every part built from configuration slices), the application
//! (`app.rs`: each handler's parts registered as their own `web::Data`, routes and
//! middleware) and the server's lifecycle here. `serve`, the demo and the integration
//! tests all start it through [`start`], on a listener they bound themselves.

mod app;
mod broker;

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use actix_web::HttpServer;
use actix_web::dev::{Server, ServerHandle};
use actix_web::web::ServiceConfig;

pub use self::app::app;
pub use self::broker::{Broker, build};
use crate::clock::Clock;
use crate::config::Config;

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
    pub state: Arc<Broker>,
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

/// Binds `config.server.listen` and starts the broker on it.
pub fn bind_and_start(config: Arc<Config>) -> Result<Running, StartError> {
    let addr = config.server.listen;
    let listener = TcpListener::bind(addr).map_err(|source| StartError::Bind { addr, source })?;
    start(config, listener)
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
    let state = build(config.clone(), clock)?;
    let parts = state.clone();
    let server = HttpServer::new(move || app(parts.clone()).configure(extra.clone()))
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
