//! `POST /admin/invalidate` with one of `{"grant_id": …}`, `{"subject": …}`,
//! `{"client_id": …}` or `{"all": true}` (what it does is `flows::grants`). The rest
//! of the admin API is in the `admin_*` files; the routes in `admin_routes.rs`.

use actix_web::{HttpResponse, web};
use serde_json::{Value, json};

use super::admin_auth::Authorized;
use super::error::ApiError;
use crate::domain::invalidation::Invalidation;
use crate::flows::grants::Grants;

pub async fn invalidate(
    Authorized(caller): Authorized,
    grants: web::Data<Grants>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let what = Invalidation::from_json(&body).map_err(ApiError::InvalidRequest)?;
    grants.invalidate_for_operator(what.clone(), caller).await;
    Ok(HttpResponse::Ok().json(json!({ "invalidated": what })))
}
