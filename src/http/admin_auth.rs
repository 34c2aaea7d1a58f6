//! What every admin handler shares: the [`Authorized`] extractor (the admin token,
//! checked by `flows::admin` in constant time before anything else is read), the
//! query shapes, and [`AdminError`] answered as the broker's JSON errors.

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use serde::Deserialize;

use super::error::ApiError;
use super::protect::bearer;
use crate::flows::admin::{Admin, AdminError, GrantQuery, PageRequest, SessionQuery};
use crate::flows::grants::AdminCredential;

/// Proof that the request carried the admin token. Put it first among a handler's
/// arguments: extractors run in order, so a caller without the token learns nothing
/// from how its query would have been judged.
/// It carries the caller's address, which the audit trail records as who acted.
pub struct Authorized(pub Option<std::net::IpAddr>);

impl FromRequest for Authorized {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let Some(admin) = req.app_data::<web::Data<Admin>>() else {
            return ready(Err(ApiError::NotFound));
        };
        let credential = match bearer(req.headers()) {
            Ok(token) => AdminCredential::Bearer(token),
            Err(rejection) if rejection.error_code().is_none() => AdminCredential::Missing,
            Err(_) => AdminCredential::Malformed,
        };
        ready(
            admin
                .authorize(credential, req.peer_addr())
                .map(|()| Authorized(req.peer_addr().map(|peer| peer.ip())))
                .map_err(ApiError::from),
        )
    }
}

/// `?cursor=…&limit=…` and the filters of a listing.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub cursor: Option<String>,
    pub limit: Option<usize>,
    pub subject: Option<String>,
    pub client_id: Option<String>,
    pub resource: Option<String>,
}

impl ListQuery {
    pub fn page(&self) -> PageRequest {
        PageRequest {
            cursor: self.cursor.clone(),
            limit: self.limit,
        }
    }

    pub fn grants(&self) -> GrantQuery {
        GrantQuery {
            subject: self.subject.clone(),
            client_id: self.client_id.clone(),
            resource: self.resource.clone(),
        }
    }

    pub fn sessions(&self) -> Result<SessionQuery, ApiError> {
        if self.subject.is_some() {
            return Err(ApiError::InvalidRequest(
                "logins in progress have no subject yet: filter by client_id or resource"
                    .to_owned(),
            ));
        }
        Ok(SessionQuery {
            client_id: self.client_id.clone(),
            resource: self.resource.clone(),
        })
    }

    /// For a listing without filters.
    pub fn unfiltered(&self) -> Result<PageRequest, ApiError> {
        if self.subject.is_some() || self.client_id.is_some() || self.resource.is_some() {
            return Err(ApiError::InvalidRequest(
                "this listing takes only `cursor` and `limit`".to_owned(),
            ));
        }
        Ok(self.page())
    }
}

impl From<AdminError> for ApiError {
    fn from(error: AdminError) -> Self {
        let description = error.to_string();
        match error {
            AdminError::Off => ApiError::NotFound,
            AdminError::TokenMissing => ApiError::MissingToken(description),
            AdminError::TokenWrong => ApiError::InvalidToken(description),
            AdminError::NotFound(_) => ApiError::Missing(description),
            AdminError::NotStored(_) => ApiError::Conflict(description),
            AdminError::BadRequest(_) => ApiError::InvalidRequest(description),
            AdminError::Unavailable(_) => ApiError::Unavailable {
                description: "the store is unavailable; retry shortly".to_owned(),
                retry_after: Some("5".to_owned()),
            },
        }
    }
}
