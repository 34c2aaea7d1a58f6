//! `GET /healthz` (the process lives) and `GET /readyz` (the broker can serve).

use std::sync::atomic::{AtomicBool, Ordering};

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::actors::discovery::DiscoveryHandle;

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

/// Liveness: 200 whenever the process can answer at all.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// Readiness: 200 only when every readiness condition holds; 503 with the reasons
/// otherwise, so a load balancer takes the replica out of rotation.
pub async fn readyz(
    readiness: web::Data<Readiness>,
    discovery: web::Data<DiscoveryHandle>,
) -> HttpResponse {
    let mut reasons = readiness.unmet();
    // Waits for a refresh in flight rather than reporting a race; fails fast when the
    // provider is unreachable and no copy within the grace is left.
    if discovery.current().await.is_err() {
        reasons.push("upstream discovery unavailable");
    }
    if reasons.is_empty() {
        HttpResponse::Ok().json(json!({ "status": "ready" }))
    } else {
        HttpResponse::ServiceUnavailable()
            .json(json!({ "status": "not ready", "reasons": reasons }))
    }
}
