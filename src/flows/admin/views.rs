//! What the admin API answers with: the records without any secret (no client secret
//! hash, no provider token, no session id), in the shapes `src/http/admin_openapi.json`
//! describes.

use serde::Serialize;

use super::encode_cursor;
use crate::clock::UnixSeconds;
use crate::flows::clients::{ClientKind, ClientRecord};
use crate::store::{ClientOrigin, GrantRow, Listing, SessionRow};

/// One page, and the cursor of the next when more follow.
#[derive(Debug, Serialize)]
pub struct Paged<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> Paged<T> {
    pub fn of<R>(listing: Listing<R>, view: impl Fn(R) -> T) -> Self {
        Self {
            items: listing.items.into_iter().map(view).collect(),
            next_cursor: listing.next.as_deref().map(encode_cursor),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct ClientView {
    pub client_id: String,
    pub kind: ClientKind,
    /// Whether the broker stores it (only stored clients can be deleted).
    pub stored: bool,
    pub client_name: Option<String>,
    pub redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    pub scope: Option<String>,
    /// It authenticates with a secret.
    pub confidential: bool,
    /// The client the provider knows it by (proxied registration).
    pub upstream_client_id: Option<String>,
    pub created_at: Option<UnixSeconds>,
    pub last_used_at: Option<UnixSeconds>,
}

impl From<ClientRecord> for ClientView {
    fn from(record: ClientRecord) -> Self {
        let client = record.client;
        let upstream_client_id = match &client.origin {
            ClientOrigin::Proxied {
                upstream_client_id, ..
            } => Some(upstream_client_id.clone()),
            _ => None,
        };
        Self {
            confidential: client.secret_hash.is_some(),
            scope: client.scope.as_ref().map(ToString::to_string),
            client_id: client.client_id,
            kind: record.kind,
            stored: record.stored,
            client_name: client.name,
            redirect_uris: client.redirect_uris,
            grant_types: client.grant_types,
            upstream_client_id,
            created_at: record.created_at,
            last_used_at: record.last_used_at,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct GrantView {
    pub grant_id: String,
    pub subject: String,
    pub client_id: String,
    pub resource: Option<String>,
    /// Space-separated, as in OAuth.
    pub scope: String,
    pub created_at: UnixSeconds,
    /// The latest refresh-token rotation still on record.
    pub last_refreshed_at: Option<UnixSeconds>,
    pub revoked: bool,
    pub revoked_at: Option<UnixSeconds>,
}

impl From<GrantRow> for GrantView {
    fn from(row: GrantRow) -> Self {
        let grant = row.grant;
        Self {
            scope: grant.scopes.to_string(),
            revoked: grant.revoked_at.is_some(),
            revoked_at: grant.revoked_at,
            grant_id: grant.grant_id,
            subject: grant.subject,
            client_id: grant.client_id,
            resource: grant.resource,
            created_at: grant.created_at,
            last_refreshed_at: row.last_refreshed_at,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct SessionView {
    /// The SHA-256 the session is stored under (hex), not the session id.
    pub id: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub scope: String,
    pub resource: Option<String>,
    pub expires_at: UnixSeconds,
    /// Approved on the consent page: the provider leg is under way.
    pub approved: bool,
}

impl From<SessionRow> for SessionView {
    fn from(row: SessionRow) -> Self {
        Self {
            scope: row.scopes.to_string(),
            id: row.id,
            client_id: row.client_id,
            redirect_uri: row.redirect_uri,
            resource: row.resource,
            expires_at: row.expires_at,
            approved: row.approved,
        }
    }
}

/// How many grants a revocation ended (0 when they were revoked already).
#[derive(Debug, Serialize)]
pub struct Revoked {
    pub revoked: u64,
}

#[derive(Debug, Serialize)]
pub struct ClientDeleted {
    pub client_id: String,
    /// Its grants that were live and are now revoked.
    pub revoked: u64,
    /// For a proxied client with RFC 7592 management: whether the provider deleted
    /// its registration there too (`false`: logged; remove it at the provider).
    pub upstream_deleted: Option<bool>,
}
