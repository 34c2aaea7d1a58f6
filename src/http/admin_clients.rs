//! `GET /admin/clients`, `GET /admin/clients/{client_id}`,
//! `DELETE /admin/clients/{client_id}` (its grants revoked, then the client removed).

use actix_web::{HttpResponse, web};

use super::admin_auth::{Authorized, ListQuery};
use super::error::ApiError;
use crate::flows::admin::Admin;

pub async fn list(
    _: Authorized,
    admin: web::Data<Admin>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = admin.clients(&query.unfiltered()?).await?;
    Ok(HttpResponse::Ok().json(page))
}

pub async fn show(
    _: Authorized,
    admin: web::Data<Admin>,
    client_id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(admin.client(&client_id).await?))
}

pub async fn delete(
    Authorized(caller): Authorized,
    admin: web::Data<Admin>,
    client_id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(admin.delete_client(caller, &client_id).await?))
}
