//! Revocation (RFC 7009). Revoking a refresh token or an access token revokes its
//! grant: every refresh token of the chain dies and the grant's access tokens — the
//! broker's, or in passthrough mode the provider's it handed out — stop verifying on
//! their next use, on every replica. The answer is the same whether or not the token
//! was known (§2.2), so the endpoint tells an attacker nothing; a token issued to
//! another client is left alone.

use super::{GrantError, Grants};
use crate::domain::refresh as refresh_tokens;
use crate::flows::clients::KnownClient;
use crate::tokens::verify::token_digest;

impl Grants {
    /// Revokes the grant of `token` when it is `client`'s; `hint` is the request's
    /// `token_type_hint` (RFC 7009 §2.1), checked but not needed: every kind is looked
    /// for.
    pub async fn revoke(
        &self,
        client: &KnownClient,
        token: &str,
        hint: Option<&str>,
    ) -> Result<(), GrantError> {
        match hint {
            None | Some("refresh_token" | "access_token") => {}
            Some(other) => return Err(GrantError::UnsupportedHint(other.to_owned())),
        }
        let Some(grant_id) = self.grant_of(token).await? else {
            return Ok(());
        };
        let grant = self
            .store
            .get_grant(&grant_id)
            .await?
            .filter(|g| g.client_id == client.client_id);
        let Some(grant) = grant else {
            tracing::info!(client_id = %client.client_id, "revocation of another client's token ignored");
            return Ok(());
        };
        self.revoke_grant(&grant_id).await?;
        self.metrics.token("revoke", "revoked");
        self.metrics
            .audit(crate::telemetry::audit::AuditEvent::TokenRevoked {
                client_id: &client.client_id,
            });
        // The client held the provider's token itself: ask the provider to end it
        // too, in the background — the broker refuses it already.
        if self.provider.passthrough && grant.revoked_at.is_none() {
            let provider = self.provider.clone();
            actix::spawn(async move { provider.revoke(grant).await });
        }
        Ok(())
    }

    /// The grant a token the broker handed out belongs to: a refresh token by its hash,
    /// a provider access token (passthrough mode) by the record of handing it out, a
    /// broker access token by its verified `sid`.
    async fn grant_of(&self, token: &str) -> Result<Option<String>, GrantError> {
        if let Some(record) = self
            .store
            .find_refresh(&refresh_tokens::hash(token))
            .await?
        {
            return Ok(Some(record.grant_id));
        }
        let handed_out = self
            .store
            .find_passthrough(&token_digest(token), self.clock.unix())
            .await?;
        if let Some(handed_out) = handed_out {
            return Ok(Some(handed_out.grant_id));
        }
        Ok(self
            .verifier
            .verify_broker(token)
            .await
            .ok()
            .and_then(|verified| verified.principal.grant_id.clone()))
    }
}
