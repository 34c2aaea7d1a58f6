//! Whether this replica should get traffic (`/readyz`): not shutting down, its store
//! answering, the provider's metadata and keys usable. Each check is bounded, so a
//! probe with a one-second timeout gets an answer rather than a hang.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::actors::discovery::{DiscoveryHandle, Standing};
use crate::store::Store;

/// How long the store may take to answer the probe before it counts as down.
const STORE_WITHIN: Duration = Duration::from_millis(1500);
/// How long a discovery refresh in flight is waited for before the copy held is judged.
const DISCOVERY_WITHIN: Duration = Duration::from_millis(1500);

/// The store's answer to the probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreCheck {
    Ok,
    /// It answered with an error (unreachable, not writable).
    Failed,
    /// It did not answer within the bound.
    TimedOut,
}

/// What `/readyz` reports.
#[derive(Debug, Clone, Copy)]
pub struct Report {
    pub draining: bool,
    /// `memory`, `sqlite` or `redis`.
    pub backend: &'static str,
    pub store: StoreCheck,
    pub discovery: Standing,
}

impl Report {
    /// Why the replica should not get traffic; empty when ready. A stale discovery
    /// copy within its grace still verifies tokens, so it is not a reason.
    pub fn reasons(&self) -> Vec<&'static str> {
        let mut reasons = Vec::new();
        if self.draining {
            reasons.push("shutting down");
        }
        match self.store {
            StoreCheck::Ok => {}
            StoreCheck::Failed => reasons.push("store unavailable"),
            StoreCheck::TimedOut => reasons.push("store did not answer in time"),
        }
        if self.discovery == Standing::Unavailable {
            reasons.push("upstream discovery unavailable");
        }
        reasons
    }
}

/// The readiness checks over the broker's store and discovery handle.
pub struct Readiness {
    draining: AtomicBool,
    store: Arc<dyn Store>,
    backend: &'static str,
    discovery: DiscoveryHandle,
}

impl Readiness {
    pub fn new(store: Arc<dyn Store>, backend: &'static str, discovery: DiscoveryHandle) -> Self {
        Self {
            draining: AtomicBool::new(false),
            store,
            backend,
            discovery,
        }
    }

    /// Marks the broker as shutting down: `/readyz` fails from now on so load
    /// balancers stop sending new work while in-flight requests finish.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// Runs the checks, both at once.
    pub async fn check(&self) -> Report {
        let (store, discovery) = futures_util::join!(self.store_check(), self.discovery_check());
        Report {
            draining: self.draining.load(Ordering::SeqCst),
            backend: self.backend,
            store,
            discovery,
        }
    }

    async fn store_check(&self) -> StoreCheck {
        match actix_web::rt::time::timeout(STORE_WITHIN, self.store.probe()).await {
            Ok(Ok(())) => StoreCheck::Ok,
            Ok(Err(error)) => {
                tracing::warn!(%error, backend = self.backend, "readiness: the store failed its probe");
                StoreCheck::Failed
            }
            Err(_) => {
                tracing::warn!(backend = self.backend, within = ?STORE_WITHIN, "readiness: the store did not answer its probe");
                StoreCheck::TimedOut
            }
        }
    }

    /// Lets a refresh that is due run (bounded), then judges the copy held.
    async fn discovery_check(&self) -> Standing {
        let _ = actix_web::rt::time::timeout(DISCOVERY_WITHIN, self.discovery.current()).await;
        self.discovery.standing()
    }
}
