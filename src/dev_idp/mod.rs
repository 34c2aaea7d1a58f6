//! The development OpenID provider — **for development and tests only**.
//!
//! A small but correct provider served by the same binary: discovery, JWKS with key
//! rotation, the code flow with PKCE S256 (no login form), refresh-token rotation,
//! client credentials, RFC 8693 token exchange and Entra-style on-behalf-of, dynamic
//! registration (RFC 7591/7592), introspection, revocation and userinfo; plus fault
//! knobs and call counters under `/_dev/`. It keeps everything in memory and has no
//! authentication on its control API: never expose it.

mod authorize;
pub mod config;
mod control;
mod discovery;
pub mod error;
mod exchange;
pub mod faults;
mod id_jag;
pub mod idp;
pub mod keys;
mod params;
pub mod records;
mod register;
mod resource;
mod routes;
mod token;

use std::net::{SocketAddr, TcpListener};

use actix_web::dev::Server;
use actix_web::middleware::{DefaultHeaders, from_fn};
use actix_web::{App, HttpServer, web};

pub use config::DevIdpConfig;
use faults::Faults;
use idp::Idp;
use keys::KeyRing;

use crate::clock::Clock;

/// Why the dev IdP could not start.
#[derive(Debug, thiserror::Error)]
pub enum DevIdpError {
    #[error(transparent)]
    Keys(#[from] keys::KeyError),
    #[error("invalid fault: {0}")]
    Fault(String),
    #[error("cannot start the dev IdP: {0}")]
    Io(#[from] std::io::Error),
}

/// A started dev IdP; `server` must be awaited or spawned for it to run.
pub struct RunningIdp {
    pub addr: SocketAddr,
    /// The issuer, e.g. `http://127.0.0.1:8081`.
    pub url: String,
    pub idp: web::Data<Idp>,
    pub server: Server,
}

impl RunningIdp {
    /// Serves until `shutdown` resolves, then stops gracefully: the listener closes
    /// and requests in flight finish.
    pub async fn serve_until(
        self,
        shutdown: impl Future<Output = ()> + 'static,
    ) -> std::io::Result<()> {
        let handle = self.server.handle();
        actix_web::rt::spawn(async move {
            shutdown.await;
            tracing::info!("dev IdP: shutdown signal received");
            handle.stop(true).await;
        });
        self.server.await?;
        tracing::info!("dev IdP stopped");
        Ok(())
    }
}

/// Starts the IdP on `listener` with `clock` (tests share a clock to age tokens).
pub fn start(
    config: DevIdpConfig,
    listener: TcpListener,
    clock: Clock,
) -> Result<RunningIdp, DevIdpError> {
    let addr = listener.local_addr()?;
    let url = config
        .issuer
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"));
    let keys = KeyRing::new(config.signing_alg, config.key_grace)?;
    let faults = Faults::new(clock.clone(), &config.faults).map_err(DevIdpError::Fault)?;
    let idp = web::Data::new(Idp::new(url.clone(), config, clock, keys, faults));
    let app_idp = idp.clone();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(app_idp.clone())
            .configure(routes::extractor_configs)
            .configure(routes::configure)
            .default_service(web::to(routes::not_found))
            .wrap(from_fn(control::gate))
            .wrap(
                DefaultHeaders::new()
                    .add(("Cache-Control", "no-store"))
                    .add(("Pragma", "no-cache")),
            )
            .wrap(from_fn(routes::log))
    })
    .workers(2)
    .shutdown_timeout(5)
    .disable_signals()
    .listen(listener)?
    .run();
    Ok(RunningIdp {
        addr,
        url,
        idp,
        server,
    })
}
