//! `GET /admin/grants` (filtered by subject, client, resource), `GET` and `DELETE
//! /admin/grants/{grant_id}`, and `DELETE /admin/grants?subject=…` or `?client_id=…`:
//! every grant of a subject (offboarding) or a client revoked at once.

use actix_web::{HttpResponse, web};

use super::admin_auth::{Authorized, ListQuery};
use super::error::ApiError;
use crate::flows::admin::Admin;

pub async fn list(
    _: Authorized,
    admin: web::Data<Admin>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = admin.grants(&query.grants(), &query.page()).await?;
    Ok(HttpResponse::Ok().json(page))
}

pub async fn show(
    _: Authorized,
    admin: web::Data<Admin>,
    grant_id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(admin.grant(&grant_id).await?))
}

pub async fn revoke(
    Authorized(caller): Authorized,
    admin: web::Data<Admin>,
    grant_id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(admin.revoke_grant(caller, &grant_id).await?))
}

pub async fn revoke_matching(
    Authorized(caller): Authorized,
    admin: web::Data<Admin>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    if query.cursor.is_some() || query.limit.is_some() {
        return Err(ApiError::InvalidRequest(
            "a revocation takes no `cursor` or `limit`: every matching grant goes".to_owned(),
        ));
    }
    Ok(HttpResponse::Ok().json(admin.revoke_grants(caller, &query.grants()).await?))
}
