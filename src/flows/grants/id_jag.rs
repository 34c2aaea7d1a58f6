//! The Identity Assertion JWT Authorization Grant at the token endpoint
//! (`grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`, RFC 7523 §2.1; the MCP
//! extension "Enterprise-Managed Authorization" §5): a confidential client presents
//! the ID-JAG its user's enterprise IdP issued for this authorization server; its
//! signature is checked against the issuer's keys (`tokens::id_jag`), its claims by
//! `domain::id_jag`, its `jti` spent once in the store (shared by replicas on Redis,
//! kept across a restart on sqlite), and what is issued is what a login issues: a
//! grant — revocable, invalidated and listed like any other — and an access token for
//! the resource the ID-JAG names. No refresh token: the draft (§4.4 "Refresh Token")
//! says the authorization server SHOULD NOT return one; the client presents a fresh
//! ID-JAG instead.

use sha2::{Digest, Sha256};

use super::{GrantError, Grants, Issued};
use crate::config::SubjectClaim;
use crate::domain::id_jag::{self, Expected, KnownResource, SubjectFrom};
use crate::domain::scope::Scopes;
use crate::flows::clients::KnownClient;
use crate::store::{Grant, UpstreamTokens};
use crate::tokens::id_jag::AssertionError;

/// The grant as the client presented it.
pub struct IdJagRequest<'a> {
    /// `assertion`: the ID-JAG.
    pub assertion: &'a str,
    /// `scope`, when the request had one (RFC 6749 §3.3: the grant may only narrow).
    pub scope: Option<&'a str>,
    /// Whether the client authenticated, with a secret or a client assertion (the
    /// grant is for confidential clients: draft §8.1).
    pub confidential: bool,
}

impl Grants {
    /// Trades an ID-JAG for the broker's tokens, or refuses it (`invalid_grant`) with
    /// nothing changed but, once the signature and claims held, its `jti` spent.
    pub async fn id_jag(
        &self,
        client: &KnownClient,
        request: IdJagRequest<'_>,
    ) -> Result<Issued, GrantError> {
        if !self.assertions.is_enabled() {
            return Err(GrantError::UnsupportedGrant);
        }
        if !request.confidential {
            return Err(GrantError::ConfidentialOnly);
        }
        let requested = request
            .scope
            .map(Scopes::parse)
            .transpose()
            .map_err(GrantError::InvalidScope)?;
        let signed = self
            .assertions
            .verify(request.assertion)
            .await
            .map_err(assertion_error)?;
        let issuer = signed.issuer;
        if !issuer.clients.iter().any(|c| c == &client.client_id) {
            return Err(GrantError::InvalidGrant(
                "this client may not present this issuer's grants",
            ));
        }
        let resources: Vec<KnownResource<'_>> = self
            .settings
            .resources
            .iter()
            .map(|r| KnownResource {
                uri: &r.uri,
                scopes_supported: &r.scopes_supported,
            })
            .collect();
        let subject = match issuer.subject_claim {
            SubjectClaim::Sub => SubjectFrom::Sub {
                prefix: &issuer.subject_prefix,
            },
            SubjectClaim::Email => SubjectFrom::Email {
                prefix: &issuer.subject_prefix,
            },
        };
        let leeway = self.settings.leeway.as_secs();
        let now = self.clock.unix();
        let accepted = id_jag::judge(
            &signed.claims,
            &Expected {
                audience: self.settings.issuer.as_str(),
                client_id: &client.client_id,
                resources: &resources,
                subject,
                max_scopes: &issuer.max_scopes,
                requested: requested.as_ref(),
                now,
                leeway,
                max_lifetime: issuer.max_lifetime.as_secs(),
            },
        )
        .map_err(|refusal| GrantError::InvalidGrant(refusal.describe()))?;
        // A resource that hands on a provider token needs a provider login: a grant
        // without one could never be used there, so none is issued.
        let exchanges = self
            .settings
            .resources
            .iter()
            .any(|r| r.uri == accepted.resource && r.exchange_audience.is_some());
        if exchanges {
            return Err(GrantError::InvalidGrant(
                "this resource exchanges tokens at the provider, which needs a provider login: an ID-JAG cannot reach it",
            ));
        }
        // Spent by issuer and jti (the extension §7.4.2), until it could no longer be
        // accepted anyway.
        let digest: [u8; 32] = Sha256::new()
            .chain_update(issuer.issuer.as_str().as_bytes())
            .chain_update([0])
            .chain_update(accepted.jti.as_bytes())
            .finalize()
            .into();
        let until = accepted.exp.saturating_add(leeway);
        if !self.store.spend_assertion(digest, until, now).await? {
            tracing::warn!(
                client_id = %client.client_id,
                issuer = %issuer.issuer.as_str(),
                "ID-JAG presented again: refused"
            );
            return Err(GrantError::InvalidGrant("this ID-JAG was already used"));
        }
        let grant = Grant {
            grant_id: super::new_grant_id(),
            subject: accepted.subject,
            client_id: client.client_id.clone(),
            scopes: accepted.scopes.clone(),
            resource: Some(accepted.resource),
            // No provider tokens: the enterprise IdP vouched through the grant alone.
            upstream: UpstreamTokens::absent(now),
            created_at: now,
            revoked_at: None,
        };
        self.store.put_grant(grant.clone()).await?;
        tracing::info!(
            client_id = %client.client_id,
            grant_id = %grant.grant_id,
            issuer = %issuer.issuer.as_str(),
            "ID-JAG accepted"
        );
        self.first_tokens(
            "urn:ietf:params:oauth:grant-type:jwt-bearer",
            client,
            &grant,
            &accepted.scopes,
            false,
        )
        .await
    }
}

fn assertion_error(error: AssertionError) -> GrantError {
    match error {
        AssertionError::KeysUnavailable => GrantError::ProviderUnreachable,
        other => GrantError::InvalidGrant(other.describe()),
    }
}
