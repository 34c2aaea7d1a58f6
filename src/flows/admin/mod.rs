//! The operator's API as a use case: list and look up clients, grants and logins in
//! progress; revoke one grant, every grant of a subject (offboarding) or of a client;
//! delete a client with its grants. Only for the holder of `admin.token` (checked by
//! [`Admin::authorize`], the same constant-time check as `POST /admin/invalidate`).
//!
//! Every revocation is written to the store, then announced through the invalidation
//! path (`flows::grants` → the Invalidator → the other replicas over the shared
//! store's channel), so the grant's access tokens stop verifying at once on every
//! replica. Revoking is idempotent: a second call revokes nothing and says so.

mod revoke;
mod views;

use std::net::SocketAddr;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

pub use views::{ClientDeleted, ClientView, GrantView, Paged, Revoked, SessionView};

use crate::clock::Clock;
use crate::flows::clients::{ClientError, Clients};
use crate::flows::grants::{AdminCredential, GrantError, Grants};
use crate::store::{
    DEFAULT_PAGE, GrantFilter, LoginState, MAX_PAGE, Page, SessionFilter, Store, StoreError,
};
use crate::upstream::http::UpstreamHttp;

/// Why an admin request failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The admin API is off (`admin.token` unset): its paths do not exist (404).
    #[error("no such endpoint")]
    Off,
    /// No bearer token (401).
    #[error("the admin API needs the admin token")]
    TokenMissing,
    /// A malformed or wrong bearer token (401).
    #[error("the admin API needs the admin token")]
    TokenWrong,
    /// The named client, grant or subject has nothing to show (404).
    #[error("no such {0}")]
    NotFound(&'static str),
    /// The client is known but not stored by the broker, so it cannot be deleted (409).
    #[error("{0}")]
    NotStored(String),
    /// A malformed request: a bad cursor or page size, a bulk revocation naming neither
    /// subject nor client (400).
    #[error("{0}")]
    BadRequest(String),
    /// The store could not be read or written (503); what was revoked stays revoked.
    #[error("store unavailable: {0}")]
    Unavailable(String),
}

impl From<StoreError> for AdminError {
    fn from(error: StoreError) -> Self {
        Self::Unavailable(error.to_string())
    }
}

impl From<ClientError> for AdminError {
    fn from(error: ClientError) -> Self {
        Self::Unavailable(error.to_string())
    }
}

/// A page as the caller asked for it: the opaque cursor of the previous page's
/// `next_cursor`, and how many rows (default 50, 1 to 500).
#[derive(Debug, Clone, Default)]
pub struct PageRequest {
    pub cursor: Option<String>,
    pub limit: Option<usize>,
}

impl PageRequest {
    fn page(&self) -> Result<Page, AdminError> {
        let limit = self.limit.unwrap_or(DEFAULT_PAGE);
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(AdminError::BadRequest(format!(
                "`limit` must be between 1 and {MAX_PAGE}"
            )));
        }
        let after = match &self.cursor {
            None => None,
            Some(cursor) => Some(decode_cursor(cursor)?),
        };
        Ok(Page { after, limit })
    }
}

/// The cursor handed out: the last id of the page, base64url (opaque to callers, so
/// its form may change).
fn encode_cursor(id: &str) -> String {
    URL_SAFE_NO_PAD.encode(id.as_bytes())
}

fn decode_cursor(cursor: &str) -> Result<String, AdminError> {
    let bad = || AdminError::BadRequest("`cursor` is not one this API handed out".to_owned());
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    String::from_utf8(bytes).map_err(|_| bad())
}

/// Which grants: each field given must match exactly.
#[derive(Debug, Clone, Default)]
pub struct GrantQuery {
    pub subject: Option<String>,
    pub client_id: Option<String>,
    pub resource: Option<String>,
}

impl GrantQuery {
    fn filter(&self) -> GrantFilter {
        GrantFilter {
            subject: self.subject.clone(),
            client_id: self.client_id.clone(),
            resource: self.resource.clone(),
        }
    }
}

/// Which login sessions.
#[derive(Debug, Clone, Default)]
pub struct SessionQuery {
    pub client_id: Option<String>,
    pub resource: Option<String>,
}

/// What the admin flow works with.
pub struct AdminParts {
    pub grants: Arc<Grants>,
    pub clients: Arc<Clients>,
    pub store: Arc<dyn Store>,
    pub login_state: Arc<dyn LoginState>,
    pub clock: Clock,
    /// For deleting a proxied client's registration at the provider (RFC 7592).
    pub upstream_http: UpstreamHttp,
}

/// The operator's API, shared by every worker.
pub struct Admin {
    parts: AdminParts,
}

impl Admin {
    pub fn new(parts: AdminParts) -> Self {
        Self { parts }
    }

    /// The caller must present the admin token (`peer`: for the log of a wrong one).
    pub fn authorize(
        &self,
        credential: AdminCredential<'_>,
        peer: Option<SocketAddr>,
    ) -> Result<(), AdminError> {
        self.parts
            .grants
            .admin_authorize(credential, peer)
            .map_err(|error| match error {
                GrantError::AdminTokenMissing => AdminError::TokenMissing,
                GrantError::AdminOff => AdminError::Off,
                _ => AdminError::TokenWrong,
            })
    }

    pub async fn clients(&self, page: &PageRequest) -> Result<Paged<ClientView>, AdminError> {
        let listing = self.parts.clients.list(&page.page()?).await?;
        Ok(Paged::of(listing, ClientView::from))
    }

    pub async fn client(&self, client_id: &str) -> Result<ClientView, AdminError> {
        self.parts
            .clients
            .record(client_id)
            .await?
            .map(ClientView::from)
            .ok_or(AdminError::NotFound("client"))
    }

    pub async fn grants(
        &self,
        query: &GrantQuery,
        page: &PageRequest,
    ) -> Result<Paged<GrantView>, AdminError> {
        let listing = self
            .parts
            .store
            .list_grants(&query.filter(), &page.page()?)
            .await?;
        Ok(Paged::of(listing, GrantView::from))
    }

    pub async fn grant(&self, grant_id: &str) -> Result<GrantView, AdminError> {
        self.parts
            .store
            .grant_row(grant_id)
            .await?
            .map(GrantView::from)
            .ok_or(AdminError::NotFound("grant"))
    }

    pub async fn sessions(
        &self,
        query: &SessionQuery,
        page: &PageRequest,
    ) -> Result<Paged<SessionView>, AdminError> {
        let filter = SessionFilter {
            client_id: query.client_id.clone(),
            resource: query.resource.clone(),
        };
        let listing = self
            .parts
            .login_state
            .list_sessions(&filter, &page.page()?, self.parts.clock.unix())
            .await?;
        Ok(Paged::of(listing, SessionView::from))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_strangers_are_refused() {
        let page = PageRequest {
            cursor: Some(encode_cursor("g/ü:1")),
            limit: Some(500),
        };
        assert_eq!(page.page().unwrap().after.as_deref(), Some("g/ü:1"));
        for (cursor, limit) in [(Some("!!"), None), (None, Some(0)), (None, Some(501))] {
            let bad = PageRequest {
                cursor: cursor.map(str::to_owned),
                limit,
            };
            assert!(matches!(bad.page(), Err(AdminError::BadRequest(_))));
        }
        assert_eq!(PageRequest::default().page().unwrap(), Page::default());
    }
}
