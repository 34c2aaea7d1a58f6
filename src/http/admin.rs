//! The operator's API, off unless `admin.token` is set (then its paths are 404).
//!
//! `POST /admin/invalidate` with one of `{"grant_id": …}`, `{"subject": …}`,
//! `{"client_id": …}` or `{"all": true}` (what it does is `flows::grants`).

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

use super::error::ApiError;
use super::protect::bearer;
use crate::domain::invalidation::Invalidation;
use crate::flows::grants::{AdminCredential, Grants};

pub async fn invalidate(
    grants: web::Data<Grants>,
    req: HttpRequest,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let credential = match bearer(req.headers()) {
        Ok(token) => AdminCredential::Bearer(token),
        Err(rejection) if rejection.error_code().is_none() => AdminCredential::Missing,
        Err(_) => AdminCredential::Malformed,
    };
    grants.admin_authorize(credential, req.peer_addr())?;
    let what = Invalidation::from_json(&body).map_err(ApiError::InvalidRequest)?;
    grants.invalidate(what.clone()).await;
    Ok(HttpResponse::Ok().json(json!({ "invalidated": what })))
}
