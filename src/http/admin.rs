//! The operator's API, off unless `admin.token` is set (then its paths are 404).
//!
//! `POST /admin/invalidate` with one of `{"grant_id": …}`, `{"subject": …}`,
//! `{"client_id": …}` or `{"all": true}`: every cache drops what it remembers for
//! them — grant standings (so the next request re-reads scopes and revocation from the
//! store), verified tokens, introspection answers and exchanged tokens — on this
//! replica before the answer, and on the others through the shared store's channel.

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::error::ApiError;
use super::protect::bearer;
use crate::config::constant_time_eq;
use crate::domain::invalidation::Invalidation;
use crate::server::AppState;

pub async fn invalidate(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    authorize(&state, &req)?;
    let what = Invalidation::from_json(&body).map_err(ApiError::InvalidRequest)?;
    state.invalidate(what.clone()).await;
    Ok(HttpResponse::Ok().json(json!({ "invalidated": what })))
}

/// The caller must present the admin token as a bearer token.
fn authorize(state: &AppState, req: &HttpRequest) -> Result<(), ApiError> {
    let expected = state
        .config
        .admin
        .token
        .as_ref()
        .ok_or(ApiError::NotFound)?;
    let presented = bearer(req.headers()).map_err(|rejection| match rejection.error_code() {
        None => ApiError::MissingToken("the admin API needs the admin token".to_owned()),
        Some(_) => ApiError::InvalidToken("the admin API needs the admin token".to_owned()),
    })?;
    // Hashes first: equal lengths, so the comparison leaks nothing about the length.
    let (a, b): ([u8; 32], [u8; 32]) = (
        Sha256::digest(presented.as_bytes()).into(),
        Sha256::digest(expected.expose().as_bytes()).into(),
    );
    if constant_time_eq(&a, &b) {
        Ok(())
    } else {
        tracing::warn!(peer = ?req.peer_addr(), "admin API called with a wrong token");
        Err(ApiError::InvalidToken(
            "the admin API needs the admin token".to_owned(),
        ))
    }
}
