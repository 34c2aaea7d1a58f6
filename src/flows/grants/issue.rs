//! Tokens for a grant: the answer to a redeemed authorization code (RFC 6749 §4.1.3:
//! one-time; a replay by the client the code was issued to, with its redirect URI and
//! verifier, revokes everything the code produced) and the access token every answer
//! carries — the broker's own (RFC 9068), or in passthrough mode the provider's. A
//! code whose tokens could not be issued after it was redeemed (the store or the keys
//! failing: a 5xx) is put back, so the client's next try gets them instead of being
//! taken for a replay.

use super::{GrantError, Grants, Issued};
use crate::actors::sessions::{RedeemProxyCode, RedeemedCode, SessionError};
use crate::config::TokenMode;
use crate::domain::passthrough as passthrough_rules;
use crate::domain::refresh as refresh_tokens;
use crate::domain::scope::Scopes;
use crate::flows::clients::KnownClient;
use crate::store::{Grant, PassthroughToken, RefreshRecord};
use crate::telemetry::audit::AuditEvent;
use crate::tokens::issue::{Minting, mint};
use crate::tokens::signing::SigningError;
use crate::tokens::verify::token_digest;

/// An authorization code as the client presented it (RFC 6749 §4.1.3, PKCE's
/// `code_verifier`).
pub struct CodeRedemption<'a> {
    pub code: &'a str,
    pub redirect_uri: &'a str,
    pub verifier: &'a str,
}

impl Grants {
    /// The tokens for a code the login minted for `client` (authenticated): redeemed
    /// once, bound to its redirect URI and PKCE challenge — or, when it was redeemed
    /// before, the grant revoked (RFC 6749 §4.1.2).
    pub async fn redeem(
        &self,
        client: &KnownClient,
        presented: CodeRedemption<'_>,
    ) -> Result<Issued, GrantError> {
        let redeemed = self
            .sessions
            .redeem_code(RedeemProxyCode {
                code: presented.code.to_owned(),
                client_id: client.client_id.clone(),
                redirect_uri: presented.redirect_uri.to_owned(),
                verifier: presented.verifier.to_owned(),
            })
            .await;
        let RedeemedCode {
            grant: code_grant,
            by,
        } = match redeemed {
            Ok(redeemed) => redeemed,
            Err(SessionError::Replayed { grant_id }) => {
                self.revoke_grant(&grant_id).await?;
                tracing::warn!(
                    client_id = %client.client_id,
                    "authorization code replayed: every token issued from it is revoked"
                );
                return Err(GrantError::InvalidGrant(
                    "authorization code already used; the tokens issued from it are revoked",
                ));
            }
            Err(SessionError::Mismatch(what)) => return Err(GrantError::InvalidGrant(what)),
            Err(SessionError::Stopped) => return Err(GrantError::ShuttingDown),
            Err(_) => {
                return Err(GrantError::InvalidGrant(
                    "unknown, expired or already used code",
                ));
            }
        };
        let issued = async {
            let grant = self.live_grant(&code_grant.grant_id).await?;
            let refresh = client.gets_refresh_tokens(&code_grant.scopes);
            self.first_tokens(
                "authorization_code",
                client,
                &grant,
                &code_grant.scopes,
                refresh,
            )
            .await
        }
        .await;
        if let Err(error) = &issued {
            // Nothing was handed out: the code is the client's to present again.
            match self.sessions.put_back_code(presented.code, by).await {
                Ok(true) => tracing::info!(
                    client_id = %client.client_id,
                    %error,
                    "no tokens issued for a redeemed code: the code is unspent again"
                ),
                Ok(false) => {}
                Err(put_back) => tracing::warn!(
                    client_id = %client.client_id,
                    %error,
                    ?put_back,
                    "no tokens issued for a redeemed code, and the code could not be put back now"
                ),
            }
        }
        issued
    }

    /// The answer for a new grant: an access token and, when the client may have
    /// one, the first refresh token of the chain.
    pub(super) async fn first_tokens(
        &self,
        grant_type: &str,
        client: &KnownClient,
        grant: &Grant,
        scopes: &Scopes,
        with_refresh: bool,
    ) -> Result<Issued, GrantError> {
        let refresh = if with_refresh {
            let now = self.clock.unix();
            let (token, hash) = refresh_tokens::new_token();
            self.store
                .put_refresh(RefreshRecord {
                    hash,
                    grant_id: grant.grant_id.clone(),
                    scopes: scopes.clone(),
                    issued_at: now,
                    expires_at: now + self.settings.refresh.ttl.as_secs(),
                    rotated: None,
                })
                .await?;
            Some(token)
        } else {
            None
        };
        let issued = self
            .access_token(grant_type, grant, scopes, refresh)
            .await?;
        self.touch(&client.client_id).await;
        Ok(issued)
    }

    /// An access token for `grant` with `scopes`, alongside `refresh_token`.
    pub(super) async fn access_token(
        &self,
        grant_type: &str,
        grant: &Grant,
        scopes: &Scopes,
        refresh_token: Option<String>,
    ) -> Result<Issued, GrantError> {
        let issued = self.unannounced(grant, scopes, refresh_token).await?;
        self.announce(grant_type, grant, scopes);
        Ok(issued)
    }

    /// The audit record of an access token with `scopes` going to `grant`'s client.
    pub(super) fn announce(&self, grant_type: &str, grant: &Grant, scopes: &Scopes) {
        self.metrics.audit(AuditEvent::TokenIssued {
            grant_type,
            client_id: &grant.client_id,
            subject: &grant.subject,
            resource: grant.resource.as_deref().unwrap_or(""),
            scopes: &scopes.to_string(),
        });
    }

    /// The answer [`Grants::access_token`] gives, without its audit record: for a
    /// caller that builds the answer before the step that decides whether it is sent.
    pub(super) async fn unannounced(
        &self,
        grant: &Grant,
        scopes: &Scopes,
        refresh_token: Option<String>,
    ) -> Result<Issued, GrantError> {
        if self.settings.mode == TokenMode::Passthrough {
            return self.passthrough(grant, refresh_token).await;
        }
        let now = self.clock.unix();
        let issuer = self.settings.issuer.as_str();
        let audience = grant.resource.as_deref().unwrap_or(issuer);
        let (access_token, expires_at) = mint(
            &self.signing,
            &Minting {
                issuer,
                subject: &grant.subject,
                client_id: &grant.client_id,
                audience,
                scopes,
                grant_id: &grant.grant_id,
                now,
                ttl: self.settings.access_token_ttl,
                identity: grant
                    .upstream
                    .identity
                    .as_ref()
                    .filter(|_| self.settings.identity_claims),
            },
        )
        .map_err(|e| match e {
            // The store was unreachable when the broker started: no key yet.
            SigningError::NoKey => GrantError::KeysNotLoaded,
            e => GrantError::Signing(e.to_string()),
        })?;
        Ok(Issued {
            access_token,
            expires_in: expires_at.saturating_sub(now),
            scope: scopes.to_string(),
            refresh_token,
        })
    }

    /// The provider's access token as it is, with the scope it carries (not the scope
    /// asked for: the client must learn what it actually holds, RFC 6749 §5.1). The
    /// broker remembers having handed it to this grant's client, by digest, until it
    /// expires: the verifier then knows whose it is, and revoking the grant refuses it.
    async fn passthrough(
        &self,
        grant: &Grant,
        refresh_token: Option<String>,
    ) -> Result<Issued, GrantError> {
        let now = self.clock.unix();
        let upstream = &grant.upstream;
        let carried = passthrough_rules::carried(&upstream.access_token);
        let expires_at = carried
            .expires_at
            .or(upstream.expires_at)
            .unwrap_or(now + self.settings.access_token_ttl.as_secs());
        self.store
            .put_passthrough(
                PassthroughToken {
                    digest: token_digest(&upstream.access_token),
                    grant_id: grant.grant_id.clone(),
                    client_id: grant.client_id.clone(),
                    expires_at: passthrough_rules::remember_until(
                        &carried,
                        upstream.expires_at,
                        now,
                        self.settings.leeway.as_secs(),
                        self.settings.refresh.ttl.as_secs(),
                    ),
                },
                now,
            )
            .await?;
        Ok(Issued {
            access_token: upstream.access_token.clone(),
            expires_in: expires_at.saturating_sub(now),
            scope: passthrough_rules::response_scope(
                &carried,
                upstream.scope.as_deref(),
                &grant.scopes,
            ),
            refresh_token,
        })
    }
}
