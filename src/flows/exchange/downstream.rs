//! The exchange itself, shared by the token endpoint and protected resources: the
//! policy's scopes, the strategy's preconditions, the cache, what the provider knows
//! the presented tokens by, and the provider's answer (a rotated refresh token kept
//! on the grant).

use std::sync::Arc;

use super::{Exchange, GrantError, Presented, TokenExchangeError};
use crate::actors::exchange::{ExchangeRequest, Exchanged, Holder};
use crate::config::{AudienceConfig, Strategy};
use crate::domain::exchange;
use crate::domain::scope::Scopes;
use crate::store::Grant;
use crate::tokens::{CredentialKind, Principal, Rejection};

impl Exchange {
    /// A downstream token for `audience` on behalf of the verified subject (and
    /// actor): the policy's scopes, the provider's answer (cached).
    pub async fn downstream(
        &self,
        subject: Presented<'_>,
        actor: Option<Presented<'_>>,
        audience: &AudienceConfig,
        requested: Option<&Scopes>,
        token_type: &str,
    ) -> Result<Arc<Exchanged>, TokenExchangeError> {
        let principal = subject.principal;
        let scopes = exchange::scopes(&principal.scopes, &audience.scopes, requested)?;
        if actor.is_some() && audience.strategy != Strategy::Rfc8693 {
            return Err(TokenExchangeError::InvalidRequest(format!(
                "`{}` is reached with the {} strategy, which cannot carry an actor_token",
                audience.audience,
                audience.strategy.name()
            )));
        }
        if audience.strategy == Strategy::Refresh && principal.kind != CredentialKind::BrokerJwt {
            return Err(TokenExchangeError::InvalidRequest(
                "this audience is reached with the refresh strategy, which needs a subject_token the broker issued".to_owned(),
            ));
        }
        let key = exchange::cache_key(
            subject.digest,
            &audience.audience,
            &scopes,
            token_type,
            actor.map(|a| a.digest),
        );
        // A hit needs nothing from the store: the verifier has just checked the
        // grant's standing.
        if let Some(hit) = self.exchanger.cached(&key) {
            return Ok(hit);
        }
        let (upstream_subject, grant) = self.at_provider(subject, "subject_token").await?;
        let upstream_actor = match actor {
            Some(actor) => Some(self.at_provider(actor, "actor_token").await?.0),
            None => None,
        };
        let refresh_token = grant
            .as_ref()
            .and_then(|g| g.upstream.refresh_token.clone());
        let exchanged = self
            .exchanger
            .exchange(ExchangeRequest {
                key,
                strategy: audience.strategy,
                upstream_audience: audience.upstream_audience.clone(),
                scopes,
                subject_token: upstream_subject,
                actor_token: upstream_actor,
                refresh_token,
                credentials: self.credentials.clone(),
                holder: Holder {
                    subject: principal.subject.clone(),
                    client_id: principal.client_id.clone(),
                    grant_id: principal.grant_id.clone(),
                },
            })
            .await
            .map_err(|error| {
                tracing::warn!(%error, audience = %audience.audience, "token exchange failed");
                TokenExchangeError::Provider {
                    error,
                    audience: audience.audience.clone(),
                }
            })?;
        if let (Some(grant), Some(rotated), Strategy::Refresh) = (
            grant,
            exchanged.rotated_refresh_token.clone(),
            audience.strategy,
        ) && grant.upstream.refresh_token.as_deref() != Some(rotated.as_str())
        {
            let mut upstream = grant.upstream;
            upstream.refresh_token = Some(rotated);
            self.store
                .set_upstream_tokens(&grant.grant_id, upstream)
                .await?;
        }
        Ok(exchanged)
    }

    /// What the provider knows a presented token by: the token itself when the
    /// provider issued it; for a broker token, its grant's provider token (refreshed
    /// first when expired), with the grant.
    async fn at_provider(
        &self,
        presented: Presented<'_>,
        what: &str,
    ) -> Result<(String, Option<Grant>), TokenExchangeError> {
        match presented.principal.kind {
            CredentialKind::BrokerJwt => {
                let grant_id = presented.principal.grant_id.as_deref().ok_or_else(|| {
                    TokenExchangeError::InvalidRequest(format!("{what} names no grant"))
                })?;
                let grant = self.live_grant(grant_id).await?;
                // A grant from an ID-JAG (enterprise-managed authorization) has no
                // provider token: nothing the provider would know the subject by.
                if grant.upstream.is_absent() {
                    return Err(GrantError::Invalid(format!(
                        "{what}'s grant holds no provider token to exchange (an ID-JAG grant)"
                    ))
                    .into());
                }
                let live = self.grants.fresh(grant).await?;
                Ok((live.upstream.access_token.clone(), Some(live)))
            }
            CredentialKind::UpstreamJwt | CredentialKind::Introspected => {
                Ok((presented.token.to_owned(), None))
            }
            CredentialKind::ApiKey => Err(TokenExchangeError::InvalidRequest(format!(
                "{what}: an API key cannot be exchanged"
            ))),
        }
    }

    /// The grant as stored, unless it is revoked or gone.
    async fn live_grant(&self, grant_id: &str) -> Result<Grant, TokenExchangeError> {
        match self.store.get_grant(grant_id).await? {
            Some(grant) if grant.revoked_at.is_none() => Ok(grant),
            _ => Err(GrantError::Invalid("the grant was revoked".to_owned()).into()),
        }
    }

    /// A presented token (`subject_token`, `actor_token`), verified as if it called
    /// one of the protected resources. Invalid → `invalid_request` (RFC 8693 §2.2.2);
    /// not verifiable now (the store or the provider's keys unreachable) → 503.
    pub(super) async fn verify_presented(
        &self,
        token: &str,
        digest: &[u8; 32],
        what: &str,
    ) -> Result<Arc<Principal>, TokenExchangeError> {
        let mut last = None;
        let mut unavailable = false;
        for resource in &self.resources {
            match self.verifier.verify_digested(token, digest, resource).await {
                Ok(principal) => return Ok(principal),
                Err(rejection) => {
                    unavailable |= rejection == Rejection::Unavailable;
                    last = Some(rejection);
                }
            }
        }
        let reason = last.map_or("no protected resource is configured", |r| r.reason());
        self.metrics.auth_failure(reason);
        // What judges the token (its grant's standing, the provider's keys) cannot be
        // read now: worth retrying, and no verdict on the token.
        if unavailable {
            return Err(TokenExchangeError::Grant(GrantError::Unavailable(format!(
                "{what} cannot be verified now"
            ))));
        }
        Err(TokenExchangeError::InvalidRequest(format!(
            "{what} is not valid ({reason})"
        )))
    }
}
