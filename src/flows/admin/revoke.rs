//! Revocations: one grant, every grant of a subject or a client, a client with its
//! grants. Each writes the store first, then announces through the invalidation path
//! — also after a partial failure, so what was revoked stops verifying everywhere.

use std::net::IpAddr;

use super::{Admin, AdminError, ClientDeleted, GrantQuery, Revoked};
use crate::domain::invalidation::Invalidation;
use crate::store::{ClientOrigin, GrantFilter, MAX_PAGE, Page};
use crate::telemetry::audit::{AdminTarget, AuditEvent};

impl Admin {
    /// Revokes one grant: `revoked: 1`, or 0 when it was revoked already; 404 for an
    /// unknown grant.
    pub async fn revoke_grant(
        &self,
        caller: Option<IpAddr>,
        grant_id: &str,
    ) -> Result<Revoked, AdminError> {
        let Some(grant) = self.parts.store.get_grant(grant_id).await? else {
            return Err(AdminError::NotFound("grant"));
        };
        // Announced even when revoked already: harmless, and it repairs a replica
        // that missed the first announcement.
        self.parts
            .grants
            .revoke_grant(grant_id)
            .await
            .map_err(|e| AdminError::Unavailable(e.to_string()))?;
        let revoked = u64::from(grant.revoked_at.is_none());
        tracing::info!(grant_id, revoked, "admin: grant revoked");
        self.audit(
            caller,
            "revoke_grant",
            AdminTarget::Grant(grant_id),
            revoked,
        );
        Ok(Revoked { revoked })
    }

    /// Revokes every live grant matching `query`, which must name a subject (the
    /// offboarding call) or a client: `revoked` counts those that were live.
    pub async fn revoke_grants(
        &self,
        caller: Option<IpAddr>,
        query: &GrantQuery,
    ) -> Result<Revoked, AdminError> {
        let announce = match (&query.subject, &query.client_id) {
            (Some(subject), _) if !subject.is_empty() => Invalidation::Subject(subject.clone()),
            (None, Some(client)) if !client.is_empty() => Invalidation::ClientId(client.clone()),
            _ => {
                return Err(AdminError::BadRequest(
                    "name a non-empty `subject` or `client_id` whose grants to revoke".to_owned(),
                ));
            }
        };
        let revoked = self.revoke_matching(&query.filter()).await;
        self.parts.grants.invalidate(announce).await;
        let revoked = revoked?;
        tracing::info!(
            subject = query.subject.as_deref(),
            client_id = query.client_id.as_deref(),
            revoked,
            "admin: grants revoked"
        );
        match (&query.subject, &query.client_id) {
            (Some(subject), _) if !subject.is_empty() => self.audit(
                caller,
                "revoke_subject_grants",
                AdminTarget::Subject(subject),
                revoked,
            ),
            (_, client) => self.audit(
                caller,
                "revoke_client_grants",
                AdminTarget::Client(client.as_deref().unwrap_or("")),
                revoked,
            ),
        }
        Ok(Revoked { revoked })
    }

    /// Deletes a stored client: its grants revoked, its registration at the provider
    /// deleted (RFC 7592, when it has one), the record removed. A client the broker
    /// knows without storing it is refused (409); an unknown one is 404.
    pub async fn delete_client(
        &self,
        caller: Option<IpAddr>,
        client_id: &str,
    ) -> Result<ClientDeleted, AdminError> {
        let clients = &self.parts.clients;
        let Some(stored) = clients.stored(client_id).await? else {
            return Err(match clients.known_elsewhere(client_id) {
                Some(_) => AdminError::NotStored(
                    "this client is described by its metadata document, not stored: \
                     there is nothing to delete (revoke its grants instead)"
                        .to_owned(),
                ),
                None => AdminError::NotFound("client"),
            });
        };
        let filter = GrantFilter {
            client_id: Some(client_id.to_owned()),
            ..GrantFilter::default()
        };
        let announce = Invalidation::ClientId(client_id.to_owned());
        let first = self.revoke_matching(&filter).await;
        if let Err(error) = first {
            self.parts.grants.invalidate(announce).await;
            return Err(error);
        }
        let upstream_deleted = self.delete_upstream(&stored.origin, client_id).await;
        clients.delete(client_id).await?;
        // A login that finished while the first pass ran left a grant behind.
        let second = self.revoke_matching(&filter).await;
        self.parts.grants.invalidate(announce).await;
        let revoked = first? + second?;
        tracing::info!(
            client_id,
            revoked,
            ?upstream_deleted,
            "admin: client deleted"
        );
        self.parts
            .grants
            .audit(AuditEvent::ClientDeleted { client_id });
        self.audit(
            caller,
            "delete_client",
            AdminTarget::Client(client_id),
            revoked,
        );
        Ok(ClientDeleted {
            client_id: client_id.to_owned(),
            revoked,
            upstream_deleted,
        })
    }

    /// One `admin_action` event: who (the caller's address), what, how many.
    fn audit(&self, caller: Option<IpAddr>, action: &str, target: AdminTarget<'_>, count: u64) {
        let caller = caller.map(|ip| ip.to_string()).unwrap_or_default();
        self.parts.grants.audit(AuditEvent::AdminAction {
            caller: &caller,
            action,
            target,
            count,
        });
    }

    async fn delete_upstream(&self, origin: &ClientOrigin, client_id: &str) -> Option<bool> {
        let ClientOrigin::Proxied {
            registration_client_uri: Some(uri),
            registration_access_token: Some(token),
            ..
        } = origin
        else {
            return None;
        };
        let deleted =
            crate::upstream::registration::delete(&self.parts.upstream_http, uri, token).await;
        if let Err(error) = &deleted {
            tracing::warn!(%error, client_id, "upstream registration not deleted");
        }
        Some(deleted.is_ok())
    }

    /// Marks every live grant matching `filter` revoked in the store; how many.
    async fn revoke_matching(&self, filter: &GrantFilter) -> Result<u64, AdminError> {
        let store = &self.parts.store;
        let mut page = Page::first(MAX_PAGE);
        let mut live = Vec::new();
        loop {
            let listing = store.list_grants(filter, &page).await?;
            live.extend(
                listing
                    .items
                    .into_iter()
                    .filter(|row| row.grant.revoked_at.is_none())
                    .map(|row| row.grant.grant_id),
            );
            match listing.next {
                Some(next) => page.after = Some(next),
                None => break,
            }
        }
        let now = self.parts.clock.unix();
        for grant_id in &live {
            store.revoke_grant(grant_id, now).await?;
        }
        Ok(live.len() as u64)
    }
}
