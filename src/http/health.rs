//! `GET /healthz` (the process lives) and `GET /readyz` (the broker can serve: see
//! `flows::readiness`).

use actix_web::{HttpResponse, web};
use serde_json::{Value, json};

use crate::actors::discovery::Standing;
use crate::flows::readiness::{Readiness, Report, StoreCheck};

/// Liveness: 200 whenever the process can answer at all.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// Readiness: 200 only when every check passes; 503 with the reasons otherwise, so a
/// load balancer takes the replica out of rotation. The checks' detail is in `checks`
/// either way; causes are logged, not shown.
pub async fn readyz(readiness: web::Data<Readiness>) -> HttpResponse {
    let report = readiness.check().await;
    let reasons = report.reasons();
    let checks = checks(&report);
    if reasons.is_empty() {
        HttpResponse::Ok().json(json!({ "status": "ready", "checks": checks }))
    } else {
        HttpResponse::ServiceUnavailable().json(json!({
            "status": "not ready",
            "reasons": reasons,
            "checks": checks,
        }))
    }
}

fn checks(report: &Report) -> Value {
    let store = match report.store {
        StoreCheck::Ok => json!({ "status": "ok", "backend": report.backend }),
        StoreCheck::Failed => json!({
            "status": "unavailable", "backend": report.backend,
            "reason": "the store failed its probe",
        }),
        StoreCheck::TimedOut => json!({
            "status": "unavailable", "backend": report.backend,
            "reason": "the store did not answer in time",
        }),
    };
    let discovery = match report.discovery {
        Standing::Fresh { age } => json!({ "status": "fresh", "age_seconds": age }),
        Standing::Stale { age, grace_left } => json!({
            "status": "stale", "age_seconds": age, "grace_left_seconds": grace_left,
        }),
        Standing::Unavailable => json!({
            "status": "unavailable",
            "reason": "no copy of the provider's metadata and keys within the grace",
        }),
    };
    json!({
        "draining": report.draining,
        "store": store,
        "discovery": discovery,
    })
}
