//! The management port (`server.management_listen`): a server of its own for
//! `/healthz`, `/readyz`, `/metrics` and `/admin/*`, so the public port can face the
//! internet while probes, scrapers and operators use a port that does not. A separate
//! server rather than a second listener on the public one, so that on shutdown the
//! public port stops accepting while this one still answers `/readyz` (draining) and
//! `/metrics`, and stops after it.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use actix_web::HttpServer;
use actix_web::dev::ServerHandle;

use super::{Broker, StartError, Surface, app};

/// Probes, scrapes and admin calls are few and short: two workers at most.
const MAX_WORKERS: usize = 2;

/// The running management server.
pub struct ManagementPort {
    pub addr: SocketAddr,
    pub handle: ServerHandle,
    task: actix_web::rt::task::JoinHandle<std::io::Result<()>>,
}

impl ManagementPort {
    /// Starts serving the operational routes of `state` on `listener` (in the current
    /// actix system, like the public server).
    pub(super) fn start(state: Arc<Broker>, listener: TcpListener) -> Result<Self, StartError> {
        let addr = listener.local_addr().map_err(StartError::Server)?;
        let server_config = &state.config.server;
        let workers = server_config.workers.min(MAX_WORKERS);
        let timeout = server_config.shutdown_timeout.as_secs().max(1);
        let server = HttpServer::new(move || app(state.clone(), Surface::Management))
            .workers(workers)
            .shutdown_timeout(timeout)
            .disable_signals()
            .listen(listener)
            .map_err(StartError::Server)?
            .run();
        Ok(Self {
            addr,
            handle: server.handle(),
            task: actix_web::rt::spawn(server),
        })
    }

    /// Stops gracefully (requests in flight finish) and waits until it has stopped.
    pub async fn stop(self) -> std::io::Result<()> {
        self.handle.stop(true).await;
        self.task.await.map_err(std::io::Error::other)?
    }
}
