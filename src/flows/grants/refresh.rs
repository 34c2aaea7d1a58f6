//! The `refresh_token` grant (RFC 6749 §6, OAuth 2.1 §4.3.1): the refresh token
//! rotates on every use; a rotated one presented again within `refresh.reuse_grace`
//! gets a fresh pair (the client lost the answer), after it revokes the grant; the
//! scope may only narrow; the provider's session is confirmed and its tokens
//! refreshed before the rotation, so that a refusal leaves the token unspent.

use super::{GrantError, Grants, Issued};
use crate::config::allow_rule;
use crate::domain::refresh as refresh_tokens;
use crate::domain::scope::Scopes;
use crate::flows::clients::KnownClient;
use crate::store::{Grant, RefreshRecord, RotateOutcome};
use crate::telemetry::audit::AuditEvent;

impl Grants {
    /// New tokens for the refresh token `presented` by `client` (authenticated), with
    /// `scope` when the client asked for less than the token carries.
    pub async fn refresh(
        &self,
        client: &KnownClient,
        presented: &str,
        scope: Option<&str>,
    ) -> Result<Issued, GrantError> {
        let unknown = GrantError::InvalidGrant("unknown, expired or revoked refresh token");
        let hash = refresh_tokens::hash(presented);
        let Some(record) = self.store.find_refresh(&hash).await? else {
            return Err(unknown);
        };
        let grant = self.live_grant(&record.grant_id).await?;
        if grant.client_id != client.client_id {
            return Err(GrantError::InvalidGrant(
                "the refresh token was issued to another client",
            ));
        }
        let scopes = narrowed(record.scopes, scope)?;
        // Everything that can fail runs before the rotation, the one step that spends
        // the presented token: a client refused for any reason (the provider cannot
        // confirm the session or refresh its tokens, the store is unreachable, the
        // user no longer meets the allow rule) keeps its token unspent and retries
        // with it whenever it likes — past the reuse grace too, which only covers an
        // answer lost after the rotation. A replayed token reaches the provider only
        // for the grant's own refresh there, and is caught by the rotation just after.
        let grant = self.confirmed(grant).await?;
        let grant = self.refresh_upstream(grant).await?;
        self.still_admitted(&grant)?;
        let (successor, successor_hash) = refresh_tokens::new_token();
        let issued = self.unannounced(&grant, &scopes, Some(successor)).await?;
        let now = self.clock.unix();
        let outcome = self
            .store
            .rotate_refresh(
                hash,
                RefreshRecord {
                    hash: successor_hash,
                    grant_id: grant.grant_id.clone(),
                    scopes: scopes.clone(),
                    issued_at: now,
                    expires_at: now + self.settings.refresh.ttl.as_secs(),
                    rotated: None,
                },
                now,
                self.settings.refresh.reuse_grace,
            )
            .await?;
        match outcome {
            RotateOutcome::Rotated { .. } => self.metrics.audit(AuditEvent::RefreshRotated {
                client_id: &client.client_id,
                subject: &grant.subject,
            }),
            RotateOutcome::Replayed { grant_id } => {
                self.revoke_grant(&grant_id).await?;
                self.metrics.audit(AuditEvent::RefreshReuse {
                    client_id: &client.client_id,
                    subject: &grant.subject,
                });
                tracing::warn!(
                    client_id = %client.client_id,
                    "rotated refresh token presented again: grant revoked"
                );
                return Err(GrantError::InvalidGrant(
                    "refresh token already used; the grant is revoked",
                ));
            }
            _ => return Err(unknown),
        }
        self.announce("refresh_token", &grant, &scopes);
        self.touch(&client.client_id).await;
        Ok(issued)
    }
}

impl Grants {
    /// The allow rule of the grant's resource on the identity the provider last stated
    /// (just replaced, if the provider was asked again): a user the rule no longer
    /// admits gets no new tokens (`invalid_grant`, audited at stage `refresh`).
    fn still_admitted(&self, grant: &Grant) -> Result<(), GrantError> {
        let rule = grant
            .resource
            .as_deref()
            .and_then(|uri| allow_rule(&self.settings.resources, uri));
        let Some(rule) = rule else {
            return Ok(());
        };
        let Err(unmet) = rule.judge(&grant.subject, grant.upstream.identity.as_ref()) else {
            return Ok(());
        };
        self.metrics.audit(AuditEvent::AccessDenied {
            client_id: &grant.client_id,
            subject: &grant.subject,
            resource: grant.resource.as_deref().unwrap_or(""),
            condition: unmet.condition(),
            stage: "refresh",
        });
        Err(GrantError::InvalidGrant(
            "the user no longer meets the resource's allow rule",
        ))
    }
}

/// The scopes of the new tokens: those of the refresh token, or the subset asked for.
fn narrowed(granted: Scopes, asked: Option<&str>) -> Result<Scopes, GrantError> {
    let Some(text) = asked else {
        return Ok(granted);
    };
    let asked = Scopes::parse(text).map_err(GrantError::InvalidScope)?;
    let excess = asked.missing_from(&granted);
    if !excess.is_empty() {
        return Err(GrantError::InvalidScope(format!(
            "a refresh may only narrow the scope; not granted: {excess}"
        )));
    }
    Ok(asked)
}
