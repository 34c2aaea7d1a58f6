//! `GET /admin/sessions`: logins in progress (between `/oauth/authorize` and the
//! callback), filtered by client and resource.

use actix_web::{HttpResponse, web};

use super::admin_auth::{Authorized, ListQuery};
use super::error::ApiError;
use crate::flows::admin::Admin;

pub async fn list(
    _: Authorized,
    admin: web::Data<Admin>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = admin.sessions(&query.sessions()?, &query.page()).await?;
    Ok(HttpResponse::Ok().json(page))
}
