//! `GET /healthz` (the process lives) and `GET /readyz` (the broker can serve).

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::server::AppState;

/// Liveness: 200 whenever the process can answer at all.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// Readiness: 200 only when every readiness condition holds; 503 with the reasons
/// otherwise, so a load balancer takes the replica out of rotation.
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let mut reasons = state.readiness.unmet();
    // Waits for a refresh in flight rather than reporting a race; fails fast when the
    // provider is unreachable and no copy within the grace is left.
    if state.discovery.current().await.is_err() {
        reasons.push("upstream discovery unavailable");
    }
    if reasons.is_empty() {
        HttpResponse::Ok().json(json!({ "status": "ready" }))
    } else {
        HttpResponse::ServiceUnavailable()
            .json(json!({ "status": "not ready", "reasons": reasons }))
    }
}
