//! `GET /metrics`: Prometheus text exposition.

use actix_web::{HttpResponse, web};

use super::error::ApiError;
use crate::telemetry::metrics::Metrics;

pub async fn metrics(metrics: web::Data<Metrics>) -> Result<HttpResponse, ApiError> {
    let text = metrics
        .render()
        .map_err(|e| ApiError::Internal(format!("rendering metrics: {e}")))?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(text))
}
