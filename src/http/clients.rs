//! The client registry at the HTTP edge: the credentials a back-channel request
//! carries, read from its `Authorization` header and form, and the registry's errors
//! as RFC 6749 answers. The registry itself is `flows::clients`.

use actix_web::HttpRequest;
use actix_web::http::header;

use super::error::ApiError;
use super::params::Params;
use crate::domain::client_auth::{self, Presented};
pub use crate::flows::clients::KnownClient;
use crate::flows::clients::{ClientError, Clients};

impl From<ClientError> for ApiError {
    fn from(error: ClientError) -> Self {
        match error {
            ClientError::Unavailable(_) => ApiError::Unavailable {
                description: error.to_string(),
                retry_after: Some("5".to_owned()),
            },
            ClientError::Unauthenticated(why) => ApiError::InvalidClient(why.to_owned()),
        }
    }
}

/// The credentials a back-channel request carries (Basic header, form fields, or a
/// client assertion); unreadable ones are `invalid_client`.
pub fn presented(req: &HttpRequest, form: &Params) -> Result<Presented, ApiError> {
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    client_auth::read_fields(client_auth::Fields {
        authorization,
        client_id: form.one("client_id")?,
        client_secret: form.one("client_secret")?,
        client_assertion_type: form.one("client_assertion_type")?,
        client_assertion: form.one("client_assertion")?,
    })
    .map_err(|e| ApiError::InvalidClient(e.to_string()))
}

/// Authenticates the caller of a back-channel endpoint; every failure is
/// `invalid_client` (401).
pub async fn authenticate(
    clients: &Clients,
    req: &HttpRequest,
    form: &Params,
) -> Result<KnownClient, ApiError> {
    let presented = presented(req, form)?;
    Ok(clients.authenticate(&presented).await?)
}
