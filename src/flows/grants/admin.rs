//! The operator's invalidations (`POST /admin/invalidate`): every cache drops what it
//! remembers for a grant, subject, client or everything — on this replica before the
//! answer, on the others through the shared store's channel. Only for the holder of
//! `admin.token`.

use std::net::{IpAddr, SocketAddr};

use sha2::{Digest, Sha256};

use super::{GrantError, Grants};
use crate::config::constant_time_eq;
use crate::domain::invalidation::Invalidation;
use crate::telemetry::audit::{AdminTarget, AuditEvent};

/// The bearer credential an admin request carried, as the edge read it.
pub enum AdminCredential<'a> {
    /// No `Authorization` header.
    Missing,
    /// A header that is not a well-formed bearer token.
    Malformed,
    Bearer(&'a str),
}

impl Grants {
    /// Applies `what` on every cache (call [`Grants::admin_authorize`] first).
    pub async fn invalidate(&self, what: Invalidation) {
        self.invalidator.invalidate(what).await;
    }

    /// The operator's `POST /admin/invalidate`: [`Grants::invalidate`], recorded in the
    /// audit trail as an `admin_action` by `caller`.
    pub async fn invalidate_for_operator(&self, what: Invalidation, caller: Option<IpAddr>) {
        let caller = caller.map(|ip| ip.to_string()).unwrap_or_default();
        let target = match &what {
            Invalidation::GrantId(grant_id) => AdminTarget::Grant(grant_id),
            Invalidation::Subject(subject) => AdminTarget::Subject(subject),
            Invalidation::ClientId(client_id) => AdminTarget::Client(client_id),
            Invalidation::All(_) => AdminTarget::All,
        };
        self.audit(AuditEvent::AdminAction {
            caller: &caller,
            action: "invalidate",
            target,
            count: 0,
        });
        self.invalidate(what).await;
    }

    /// The caller must present the admin token as a bearer token (`peer`: who asked,
    /// for the log of a wrong token).
    pub fn admin_authorize(
        &self,
        credential: AdminCredential<'_>,
        peer: Option<SocketAddr>,
    ) -> Result<(), GrantError> {
        let expected = self
            .settings
            .admin_token
            .as_ref()
            .ok_or(GrantError::AdminOff)?;
        let presented = match credential {
            AdminCredential::Missing => return Err(GrantError::AdminTokenMissing),
            AdminCredential::Malformed => return Err(GrantError::AdminTokenWrong),
            AdminCredential::Bearer(token) => token,
        };
        // Hashes first: equal lengths, so the comparison leaks nothing about the length.
        let (a, b): ([u8; 32], [u8; 32]) = (
            Sha256::digest(presented.as_bytes()).into(),
            Sha256::digest(expected.expose().as_bytes()).into(),
        );
        if constant_time_eq(&a, &b) {
            Ok(())
        } else {
            tracing::warn!(?peer, "admin API called with a wrong token");
            Err(GrantError::AdminTokenWrong)
        }
    }
}
