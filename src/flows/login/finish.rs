//! The login's completion once the provider answered: its code redeemed with the
//! broker's PKCE verifier, the ID token validated (signature, issuer, audience,
//! nonce, expiry), the userinfo endpoint asked when configured, the grant stored and a one-time proxy code minted.

use super::{CallbackRequest, Login};
use crate::actors::sessions::{CodeGrant, Remember, SessionError, UpstreamLeg};
use crate::config::allow_rule;
use crate::domain::authorize::{Authorization, BASE_SCOPES};
use crate::domain::identity::Identity;
use crate::domain::scope::Scopes;
use crate::flows::clients::KnownClient;
use crate::store::{Grant, StoreError, UpstreamTokens};
use crate::telemetry::audit::AuditEvent;
use crate::upstream::token::{self as upstream_token, TokenResponse};
use crate::upstream::userinfo;
use crate::upstream::{UpstreamError, id_token};

/// How a login that reached the provider ends well.
pub(super) enum Finished {
    /// The grant is stored: the client's code, and who logged in.
    Code { code: String, subject: String },
    /// The consent page was skipped for an approval remembered for another user:
    /// nothing is stored, the user must be asked.
    NotRemembered(Box<KnownClient>),
}

/// What the client is told when the login cannot be completed.
pub(super) struct Refusal {
    pub error: &'static str,
    pub description: String,
    /// The login metric's outcome.
    pub outcome: &'static str,
}

impl Refusal {
    /// Our side or the provider failed: logged in full, `server_error` to the client.
    fn failed(cause: impl std::fmt::Display) -> Self {
        tracing::warn!(%cause, "login could not be completed");
        Self {
            error: "server_error",
            description: "the login could not be completed with the identity provider".to_owned(),
            outcome: "failed",
        }
    }

    /// The provider or the broker's store cannot be used now: logged,
    /// `temporarily_unavailable` to the client (RFC 6749 §4.1.2.1), which may try again.
    fn unavailable(cause: impl std::fmt::Display) -> Self {
        tracing::warn!(%cause, "login could not be completed now");
        Self {
            error: "temporarily_unavailable",
            description: "the login cannot be completed right now; try again shortly".to_owned(),
            outcome: "failed",
        }
    }

    /// A provider call's failure: temporary when it may work later, else failed.
    fn upstream(error: UpstreamError) -> Self {
        if error.is_transient() {
            Self::unavailable(error)
        } else {
            Self::failed(error)
        }
    }

    /// A store failure: unreachable is temporary, a corrupt record is not.
    fn store(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(_) => Self::unavailable(error),
            StoreError::Corrupt(_) => Self::failed(error),
        }
    }
}

impl Login {
    pub(super) async fn finish(
        &self,
        answer: &CallbackRequest,
        request: &Authorization,
        leg: &UpstreamLeg,
    ) -> Result<Finished, Refusal> {
        let snapshot = self.discovery.current().await.map_err(|e| Refusal {
            error: "temporarily_unavailable",
            description: format!("the identity provider cannot be reached: {e}"),
            outcome: "failed",
        })?;
        // RFC 9207: a response naming another issuer is a mix-up attack.
        if let Some(iss) = answer.iss.as_deref()
            && iss != snapshot.info.issuer
        {
            return Err(Refusal::failed(format!(
                "the callback's iss `{iss}` is not the provider's issuer"
            )));
        }
        if let Some(error) = answer.error.as_deref() {
            let detail = answer.error_description.as_deref().unwrap_or(error);
            tracing::info!(error, detail, "the identity provider refused the login");
            return Err(Refusal {
                error: forwarded_error(error),
                description: format!("the identity provider refused the login: {detail}"),
                outcome: "upstream_error",
            });
        }
        let code = answer
            .code
            .as_deref()
            .ok_or_else(|| Refusal::failed("the provider's answer has neither code nor error"))?;
        let client = self
            .clients
            .find(&request.client_id)
            .await
            .map_err(Refusal::unavailable)?
            .ok_or_else(|| Refusal::failed("the client was removed during the login"))?;
        let credentials = client.credentials_at_provider(&self.settings.credentials);
        let token_endpoint = snapshot
            .info
            .token_endpoint
            .as_deref()
            .ok_or_else(|| Refusal::failed("the provider advertises no token_endpoint"))?;
        let tokens = upstream_token::exchange_code(
            &self.upstream_http,
            token_endpoint,
            &credentials,
            code,
            &self.settings.callback,
            &leg.verifier,
        )
        .await
        .map_err(Refusal::upstream)?;
        let id_token = tokens
            .id_token
            .as_deref()
            .ok_or_else(|| Refusal::failed("the provider returned no ID token"))?;
        let claims = id_token::validate(
            &self.discovery,
            &self.settings.upstream_issuer,
            &credentials.client_id,
            &leg.nonce,
            id_token,
            &self.clock,
            self.settings.leeway,
        )
        .await
        .map_err(Refusal::failed)?;
        if let Remember::For(digest) = &leg.remember
            && !self.approvals.is_subject(digest, &claims.subject)
        {
            tracing::info!("a remembered approval was given by another user: asking this one");
            return Ok(Finished::NotRemembered(Box::new(client)));
        }
        // `upstream.claims.userinfo`: a userinfo answer that fails or names another
        // subject ends the login like any provider failure (fail closed).
        let identity = userinfo::identity(
            &self.upstream_http,
            &snapshot.info,
            &self.settings.claims,
            &tokens.access_token,
            &claims.subject,
            self.settings.claims.identity(&claims.payload),
        )
        .await
        .map_err(Refusal::upstream)?;
        self.admitted(request, &claims.subject, &identity)?;
        let grant_id = self
            .store_grant(request, &claims.subject, &tokens, identity)
            .await?;
        self.sessions
            .mint_code(CodeGrant {
                grant_id,
                client_id: request.client_id.clone(),
                redirect_uri: request.redirect_uri.clone(),
                code_challenge: request.code_challenge.clone(),
                scopes: granted(&request.scopes, &tokens),
                resource: request.resource.clone(),
                subject: claims.subject.clone(),
            })
            .await
            .map(|code| Finished::Code {
                code,
                subject: claims.subject,
            })
            .map_err(|e| match e {
                SessionError::Full => Refusal {
                    error: "temporarily_unavailable",
                    description: "too many logins in progress; retry shortly".to_owned(),
                    outcome: "failed",
                },
                SessionError::Stopped => Refusal::unavailable(e),
                other => Refusal::failed(other),
            })
    }

    /// Stores the grant `subject` gave the client, with the provider's tokens; its id.
    async fn store_grant(
        &self,
        request: &Authorization,
        subject: &str,
        tokens: &TokenResponse,
        identity: Identity,
    ) -> Result<String, Refusal> {
        let now = self.clock.unix();
        let grant_id = crate::flows::grants::new_grant_id();
        self.store
            .put_grant(Grant {
                grant_id: grant_id.clone(),
                subject: subject.to_owned(),
                client_id: request.client_id.clone(),
                scopes: granted(&request.scopes, tokens),
                resource: request.resource.clone(),
                upstream: UpstreamTokens {
                    access_token: tokens.access_token.clone(),
                    refresh_token: tokens.refresh_token.clone(),
                    expires_at: tokens.expires_in.map(|s| now + s),
                    scope: tokens.scope.clone(),
                    obtained_at: Some(now),
                    identity: (!identity.is_empty()).then_some(identity),
                },
                created_at: now,
                revoked_at: None,
            })
            .await
            .map_err(Refusal::store)?;
        if let Err(error) = self.store.touch_client(&request.client_id, now).await {
            tracing::warn!(%error, "could not record the client's use");
        }
        Ok(grant_id)
    }
}

impl Login {
    /// The allow rule of the resource the login is for (`[resources.allow]`): a user
    /// outside it never gets a grant for it — `access_denied` at the client's redirect
    /// URI, audited, nothing stored. A login for no resource has no rule here; its
    /// tokens are not meant for any resource, and each request is judged anyway.
    fn admitted(
        &self,
        request: &Authorization,
        subject: &str,
        identity: &Identity,
    ) -> Result<(), Refusal> {
        let Some(uri) = request.resource.as_deref() else {
            return Ok(());
        };
        let rule = allow_rule(&self.settings.resources, uri);
        let Some(unmet) = rule.and_then(|rule| rule.judge(subject, Some(identity)).err()) else {
            return Ok(());
        };
        tracing::info!(
            condition = unmet.condition(),
            resource = uri,
            "login refused by the resource's allow rule"
        );
        self.metrics.audit(AuditEvent::AccessDenied {
            client_id: &request.client_id,
            subject,
            resource: uri,
            condition: unmet.condition(),
            stage: "login",
        });
        Err(Refusal {
            error: "access_denied",
            description: unmet.description().to_owned(),
            outcome: "denied_by_rule",
        })
    }
}

/// What the client may have: what it asked for, narrowed to what the provider
/// granted when the provider says (RFC 6749 §5.1: no `scope` means all of it). The
/// OpenID scopes are the broker's to give.
fn granted(requested: &Scopes, tokens: &TokenResponse) -> Scopes {
    match tokens.scope.as_deref().map(Scopes::parse) {
        Some(Ok(upstream)) => {
            let ours = Scopes::of(BASE_SCOPES.iter().copied());
            requested.intersection(&upstream.union(&ours))
        }
        _ => requested.clone(),
    }
}

/// Provider errors the client can act on are passed on; the rest mean the broker's
/// own client is misconfigured, which the user's client cannot fix.
fn forwarded_error(error: &str) -> &'static str {
    match error {
        "access_denied"
        | "login_required"
        | "consent_required"
        | "interaction_required"
        | "account_selection_required" => "access_denied",
        "temporarily_unavailable" => "temporarily_unavailable",
        "invalid_scope" => "invalid_scope",
        _ => "server_error",
    }
}
