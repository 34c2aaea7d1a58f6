//! Tokens for a grant: the answer to a redeemed authorization code (RFC 6749 §4.1.3:
//! one-time; a replay by the client the code was issued to, with its redirect URI and
//! verifier, revokes everything the code produced) and the access token every answer
//! carries — the broker's own (RFC 9068), or in passthrough mode the provider's. A
//! code whose tokens never reach the request that redeemed it — they could not be
//! issued (the store or the keys failing: a 5xx), or the request went away meanwhile
//! (its connection reset, the server stopping) — is put back, so the client's next
//! try gets them instead of being taken for a replay.

use std::sync::Arc;

use tokio::sync::oneshot;

use super::{GrantError, Grants, Issued};
use crate::actors::sessions::{RedeemProxyCode, RedeemedCode, SessionError};
use crate::config::TokenMode;
use crate::domain::passthrough as passthrough_rules;
use crate::domain::refresh as refresh_tokens;
use crate::domain::scope::Scopes;
use crate::flows::clients::KnownClient;
use crate::store::{Grant, PassthroughToken, Redeemer, RefreshRecord};
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

/// Why a redeemed code is put back: its tokens never reached the client.
#[derive(Debug, Clone, Copy)]
enum NotHandedOut {
    /// Issuing them failed after the redemption.
    NotIssued,
    /// They were issued, but the request had gone away.
    NotDelivered,
}

impl NotHandedOut {
    /// The `reason` label of `token_broker_code_put_backs_total`.
    fn label(self) -> &'static str {
        match self {
            Self::NotIssued => "not_issued",
            Self::NotDelivered => "not_delivered",
        }
    }
}

impl Grants {
    /// The tokens for a code the login minted for `client` (authenticated): redeemed
    /// once, bound to its redirect URI and PKCE challenge — or, when it was redeemed
    /// before, the grant revoked (RFC 6749 §4.1.2).
    ///
    /// The redemption and the issuing run in a task of their own, to their end,
    /// whatever becomes of the request: actix drops a request's handler when its
    /// connection is reset or the server stops, and a code spent by a dropped handler
    /// would make the client's retry a replay. A code this request spent whose tokens
    /// do not reach it is put back, before the error is answered.
    pub async fn redeem(
        self: &Arc<Self>,
        client: &KnownClient,
        presented: CodeRedemption<'_>,
    ) -> Result<Issued, GrantError> {
        let grants = Arc::clone(self);
        let client = client.clone();
        let presented = RedeemProxyCode {
            code: presented.code.to_owned(),
            client_id: client.client_id.clone(),
            redirect_uri: presented.redirect_uri.to_owned(),
            verifier: presented.verifier.to_owned(),
        };
        let (answer, answered) = oneshot::channel();
        actix::spawn(async move {
            let code = presented.code.clone();
            let (issued, spent_by) = grants.redeem_and_issue(&client, presented).await;
            let Some(by) = spent_by else {
                let _ = answer.send(issued);
                return;
            };
            if issued.is_err() {
                grants
                    .put_back(&client, &code, by, NotHandedOut::NotIssued)
                    .await;
            }
            if let Err(Ok(undelivered)) = answer.send(issued) {
                grants.forget(undelivered).await;
                grants
                    .put_back(&client, &code, by, NotHandedOut::NotDelivered)
                    .await;
            }
        });
        answered.await.unwrap_or(Err(GrantError::ShuttingDown))
    }

    /// Redeems the code and issues its tokens; beside the outcome, the mark of the
    /// redemption when this call spent the code.
    async fn redeem_and_issue(
        &self,
        client: &KnownClient,
        presented: RedeemProxyCode,
    ) -> (Result<Issued, GrantError>, Option<Redeemer>) {
        let RedeemedCode {
            grant: code_grant,
            by,
        } = match self.sessions.redeem_code(presented).await {
            Ok(redeemed) => redeemed,
            Err(SessionError::Replayed { grant_id }) => {
                if let Err(error) = self.revoke_grant(&grant_id).await {
                    return (Err(error), None);
                }
                tracing::warn!(
                    client_id = %client.client_id,
                    "authorization code replayed: every token issued from it is revoked"
                );
                let refused = GrantError::InvalidGrant(
                    "authorization code already used; the tokens issued from it are revoked",
                );
                return (Err(refused), None);
            }
            Err(SessionError::Mismatch(what)) => {
                return (Err(GrantError::InvalidGrant(what)), None);
            }
            Err(SessionError::Stopped) => return (Err(GrantError::ShuttingDown), None),
            Err(_) => {
                let refused = GrantError::InvalidGrant("unknown, expired or already used code");
                return (Err(refused), None);
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
        (issued, Some(by))
    }

    /// Makes the code redeemed under `by` the client's to present again, and counts
    /// it once that is done or failed: on Redis a put-back whose answer was lost is
    /// retried in the background (`token_broker_code_redemption_undos_total`).
    async fn put_back(&self, client: &KnownClient, code: &str, by: Redeemer, why: NotHandedOut) {
        let put_back = self.sessions.put_back_code(code, by).await;
        self.metrics.code_put_back(why.label());
        match put_back {
            Ok(true) => tracing::info!(
                client_id = %client.client_id,
                reason = why.label(),
                "no tokens handed out for a redeemed code: the code is unspent again"
            ),
            // Expired meanwhile: nothing left to present.
            Ok(false) => {}
            Err(put_back) => tracing::warn!(
                client_id = %client.client_id,
                reason = why.label(),
                ?put_back,
                "no tokens handed out for a redeemed code, and the code could not be put back now"
            ),
        }
    }

    /// Drops the refresh token of an answer nobody received: no one holds it, and the
    /// retry gets a chain of its own. (The access token dies with its short life.)
    async fn forget(&self, undelivered: Issued) {
        let Some(refresh) = undelivered.refresh_token else {
            return;
        };
        if let Err(error) = self
            .store
            .delete_refresh(&refresh_tokens::hash(&refresh))
            .await
        {
            tracing::warn!(%error, "could not drop the refresh token of an undelivered answer");
        }
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
