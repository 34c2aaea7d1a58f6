//! The operator's view and reset of a caller's rate-limit budgets on a resource
//! (`flows::limits::Budgets`), behind the admin token as `/admin/invalidate` checks it
//! (routed only when `admin.token` is set). The caller is named in the query:
//!
//! - `GET /admin/rate-limits?resource=URI&subject=…&client=…&api_key=…&ip=…`: what is
//!   left of every budget that applies (`remaining`, `limit`, `window_secs`,
//!   `reset_after_secs` per rule).
//! - `DELETE /admin/rate-limits?…` (or `POST /admin/rate-limits/reset?…`): every such
//!   budget back whole — on Redis for every replica at once; idempotent; the answer is
//!   the view afterwards.
//!
//! The token is checked before the query is read; a wrong or missing one is 401 and
//! changes nothing.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::admin_auth::Authorized;
use super::error::{ApiError, ErrorCode};
use crate::flows::limits::{BudgetError, BudgetQuery, Budgets};

/// The query naming whose budgets: unknown parameters are refused, so a misspelt
/// part cannot silently name another key.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    resource: String,
    subject: Option<String>,
    client: Option<String>,
    api_key: Option<String>,
    ip: Option<String>,
}

pub async fn show(
    _: Authorized,
    budgets: web::Data<Budgets>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let params = params(&req)?;
    let report = budgets.show(params.query()).await?;
    Ok(HttpResponse::Ok().json(report))
}

pub async fn reset(
    Authorized(caller): Authorized,
    budgets: web::Data<Budgets>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let params = params(&req)?;
    let report = budgets.reset(params.query(), caller).await?;
    Ok(HttpResponse::Ok().json(report))
}

/// The query (400), read only after [`Authorized`] let the request in (401 without the
/// admin token, nothing read).
fn params(req: &HttpRequest) -> Result<Params, ApiError> {
    web::Query::<Params>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .map_err(|_| {
            ApiError::InvalidRequest(
                "the query takes `resource` and any of subject, client, api_key, ip".to_owned(),
            )
        })
}

impl Params {
    fn query(&self) -> BudgetQuery<'_> {
        BudgetQuery {
            resource: &self.resource,
            subject: self.subject.as_deref(),
            client: self.client.as_deref(),
            api_key: self.api_key.as_deref(),
            ip: self.ip.as_deref(),
        }
    }
}

impl From<BudgetError> for ApiError {
    fn from(error: BudgetError) -> Self {
        match error {
            BudgetError::UnknownResource(_) | BudgetError::BadKey(_) => {
                ApiError::oauth(ErrorCode::InvalidRequest, error.to_string())
            }
            BudgetError::Unavailable => ApiError::Unavailable {
                description: error.to_string(),
                retry_after: Some("5".to_owned()),
            },
        }
    }
}
