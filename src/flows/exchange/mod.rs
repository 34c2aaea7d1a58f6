//! Token exchange (RFC 8693) as a use case: a configured caller (usually an MCP
//! server) trades a client's token for a token for a downstream API at the token
//! endpoint ([`Exchange::token_exchange`]), and a protected resource with an
//! `exchange_audience` gets one on the way to it ([`Exchange::for_resource`], for
//! forward-auth, the gateway and the broker's own routes). The subject is verified
//! like any protected request; the policy (`domain::exchange`) bounds audience and
//! scopes; the exchange actor answers from its cache or the provider. A broker
//! token is exchanged with its grant's provider token. Failures are errors, never
//! the client's token.

mod downstream;
mod error;

use std::sync::Arc;

use async_trait::async_trait;

pub use self::error::{GrantError, TokenExchangeError};
pub use crate::actors::exchange::Exchanged;
use crate::actors::exchange::Exchanger;
use crate::clock::Clock;
use crate::config::{CallerConfig, ExchangeConfig, ResourceConfig};
use crate::domain::client_auth;
use crate::domain::exchange;
use crate::domain::scope::Scopes;
use crate::flows::access::Denial;
use crate::store::{Grant, Store};
use crate::telemetry::audit::AuditEvent;
use crate::telemetry::metrics::Metrics;
use crate::tokens::verify::token_digest;
use crate::tokens::{Principal, Verifier};
use crate::upstream::exchange::ACCESS_TOKEN_TYPE;
use crate::upstream::token::ClientCredentials;

/// RFC 8693 §3: a JWT is also accepted as a subject or actor token type.
pub const JWT_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";

/// A grant's provider tokens made fresh (refreshed at the provider, once for every
/// caller, when expired): the grants' work, which an exchange of a broker token
/// needs. Implemented where that work lives.
#[async_trait(?Send)]
pub trait GrantTokens: Send + Sync {
    /// `grant` with provider tokens fresh enough to present, or why not.
    async fn fresh(&self, grant: Grant) -> Result<Grant, GrantError>;
}

/// A token-exchange request (RFC 8693 §2.1) as the token endpoint received it.
pub struct TokenExchange<'a> {
    pub subject_token: &'a str,
    pub subject_token_type: &'a str,
    pub requested_token_type: Option<&'a str>,
    /// Every `audience`, then every `resource`: exactly one is accepted.
    pub targets: Vec<&'a str>,
    pub actor_token: Option<&'a str>,
    pub actor_token_type: Option<&'a str>,
    pub scope: Option<&'a str>,
}

/// A downstream token issued to the caller, with its lifetime by the broker's clock.
#[derive(Debug)]
pub struct Issued {
    pub token: Arc<Exchanged>,
    pub expires_in: u64,
}

/// A verified token and who it stands for.
#[derive(Clone, Copy)]
pub struct Presented<'a> {
    pub token: &'a str,
    /// `tokens::token_digest(token)`: the caches know the token by it.
    pub digest: &'a [u8; 32],
    pub principal: &'a Principal,
}

/// The downstream token a route the broker serves itself received in place of the
/// client's (its resource's `exchange_audience`): in the request's extensions, and as
/// its `Authorization` header.
#[derive(Clone)]
pub struct Downstream(pub Arc<Exchanged>);

/// The exchange flow: built once by the composition root, shared by every worker.
pub struct Exchange {
    config: ExchangeConfig,
    /// Where a presented token is verified, as for a request to one of them.
    resources: Vec<ResourceConfig>,
    /// The broker's own client at the provider.
    credentials: ClientCredentials,
    verifier: Verifier,
    exchanger: Exchanger,
    store: Arc<dyn Store>,
    grants: Arc<dyn GrantTokens>,
    clock: Clock,
    metrics: Metrics,
}

/// What the exchange flow is built from.
pub struct ExchangeParts {
    pub config: ExchangeConfig,
    pub resources: Vec<ResourceConfig>,
    pub credentials: ClientCredentials,
    pub verifier: Verifier,
    pub exchanger: Exchanger,
    pub store: Arc<dyn Store>,
    pub grants: Arc<dyn GrantTokens>,
    pub clock: Clock,
    pub metrics: Metrics,
}

impl Exchange {
    pub fn new(parts: ExchangeParts) -> Self {
        let ExchangeParts {
            config,
            resources,
            credentials,
            verifier,
            exchanger,
            store,
            grants,
            clock,
            metrics,
        } = parts;
        Self {
            config,
            resources,
            credentials,
            verifier,
            exchanger,
            store,
            grants,
            clock,
            metrics,
        }
    }

    /// The caller, if it is a configured `[[exchange.clients]]` entry presenting its
    /// secret.
    pub fn caller(
        &self,
        presented: &client_auth::Presented,
    ) -> Result<&CallerConfig, TokenExchangeError> {
        self.config
            .caller(presented.client_id())
            .filter(|caller| caller.accepts(presented))
            .ok_or(TokenExchangeError::Unauthenticated)
    }

    /// RFC 8693 §2.1 for an authenticated `caller`: the token types, the one target
    /// and the policy checked, the subject (and actor) verified, then the downstream
    /// token.
    pub async fn token_exchange(
        &self,
        caller: &CallerConfig,
        request: TokenExchange<'_>,
    ) -> Result<Issued, TokenExchangeError> {
        let audience = request.targets.first().copied().unwrap_or("");
        let result = self.exchange_for(caller, request).await;
        if let Err(error) = &result {
            self.metrics.audit(AuditEvent::ExchangeRefused {
                client_id: &caller.client_id,
                audience,
                reason: error.audit_reason(),
            });
        }
        result
    }

    async fn exchange_for(
        &self,
        caller: &CallerConfig,
        request: TokenExchange<'_>,
    ) -> Result<Issued, TokenExchangeError> {
        let invalid = TokenExchangeError::InvalidRequest;
        match request.subject_token_type {
            ACCESS_TOKEN_TYPE | JWT_TOKEN_TYPE => {}
            other => {
                return Err(invalid(format!(
                    "subject_token_type `{other}` is not supported (use {ACCESS_TOKEN_TYPE})"
                )));
            }
        }
        let token_type = request.requested_token_type.unwrap_or(ACCESS_TOKEN_TYPE);
        if token_type != ACCESS_TOKEN_TYPE {
            return Err(invalid(format!(
                "requested_token_type `{token_type}` is not supported (use {ACCESS_TOKEN_TYPE})"
            )));
        }
        let target = match request.targets.as_slice() {
            [one] => *one,
            [] => {
                return Err(invalid(
                    "name the downstream API with `audience` or `resource`".to_owned(),
                ));
            }
            _ => {
                return Err(TokenExchangeError::InvalidTarget(
                    "exchange for one audience at a time".to_owned(),
                ));
            }
        };
        let audience = self.config.audience(target).ok_or_else(|| {
            TokenExchangeError::InvalidTarget(format!(
                "`{target}` is not a configured exchange audience"
            ))
        })?;
        exchange::target(&caller.audiences, target)?;
        let actor_token = actor_token(request.actor_token, request.actor_token_type)?;
        let subject_digest = token_digest(request.subject_token);
        let principal = self
            .verify_presented(request.subject_token, &subject_digest, "subject_token")
            .await?;
        let actor = match actor_token {
            Some(token) => {
                let digest = token_digest(token);
                let principal = self.verify_presented(token, &digest, "actor_token").await?;
                Some((token, digest, principal))
            }
            None => None,
        };
        let requested = request
            .scope
            .map(Scopes::parse)
            .transpose()
            .map_err(|e| TokenExchangeError::InvalidScope(e.to_string()))?;
        if let Some((_, _, actor)) = &actor {
            tracing::info!(subject = %principal.subject, actor = %actor.subject, audience = target, "token exchange on behalf of a subject by an actor");
        }
        let subject = Presented {
            token: request.subject_token,
            digest: &subject_digest,
            principal: &principal,
        };
        let actor = actor.as_ref().map(|(token, digest, principal)| Presented {
            token,
            digest,
            principal,
        });
        let token = self
            .downstream(subject, actor, audience, requested.as_ref(), token_type)
            .await?;
        let expires_in = token.expires_at.saturating_sub(self.clock.unix());
        self.metrics.audit(AuditEvent::ExchangePerformed {
            client_id: &caller.client_id,
            subject: &principal.subject,
            audience: target,
        });
        Ok(Issued { token, expires_in })
    }

    /// [`Exchange::for_resource`] for a request the access flow let through with
    /// `token`: the digest and principal it verified are reused, not recomputed.
    pub async fn for_checked(
        &self,
        checked: &crate::flows::access::Checked<'_>,
        token: &str,
    ) -> Result<Option<Arc<Exchanged>>, NoDownstream> {
        let subject = Presented {
            token,
            digest: &checked.digest,
            principal: &checked.principal,
        };
        self.for_resource(checked.resource, subject).await
    }

    /// The downstream token a protected resource hands on (its `exchange_audience`),
    /// for forward-auth, the gateway and the routes the broker serves itself:
    /// `Ok(None)` when the resource names none; `Err` (logged and counted) when it
    /// cannot be had — fail closed, the request must not go through.
    pub async fn for_resource(
        &self,
        resource: &ResourceConfig,
        subject: Presented<'_>,
    ) -> Result<Option<Arc<Exchanged>>, NoDownstream> {
        let Some(audience) = resource
            .exchange_audience
            .as_deref()
            .and_then(|name| self.config.audience(name))
        else {
            return Ok(None);
        };
        match self
            .downstream(subject, None, audience, None, ACCESS_TOKEN_TYPE)
            .await
        {
            Ok(exchanged) => Ok(Some(exchanged)),
            Err(TokenExchangeError::Grant(GrantError::Invalid(why))) => {
                // Retrying cannot help: the grant is gone, or never had a provider
                // token (an ID-JAG or client-credentials grant), so the token is
                // refused as the access flow refuses any other.
                tracing::info!(reason = %why, resource = %resource.uri, "token refused: its grant cannot be exchanged");
                self.metrics.auth_failure("not_exchangeable");
                Err(NoDownstream::Refused(Box::new(Denial::not_exchangeable(
                    resource, why,
                ))))
            }
            Err(error) => {
                tracing::warn!(%error, audience = %audience.audience, resource = %resource.uri, "exchange for a protected resource failed");
                self.metrics.auth_failure("exchange_failed");
                Err(NoDownstream::Unavailable)
            }
        }
    }
}

/// Why a checked request to a resource with an `exchange_audience` gets no downstream
/// token; either way it must not go through.
#[derive(Debug)]
pub enum NoDownstream {
    /// Worth retrying: the provider or the store cannot be used now (503 with
    /// `Retry-After`).
    Unavailable,
    /// Never for this token: its grant is revoked or holds no provider token. Answered
    /// as the access flow's other refusals (401 `invalid_token`).
    Refused(Box<Denial>),
}

/// `actor_token` with its type (RFC 8693 §2.1: the type is required with it and
/// meaningless without it).
fn actor_token<'a>(
    token: Option<&'a str>,
    token_type: Option<&str>,
) -> Result<Option<&'a str>, TokenExchangeError> {
    let invalid = |d: &str| Err(TokenExchangeError::InvalidRequest(d.to_owned()));
    match (token, token_type) {
        (None, None) => Ok(None),
        (Some(token), Some(ACCESS_TOKEN_TYPE | JWT_TOKEN_TYPE)) => Ok(Some(token)),
        (Some(_), Some(other)) => invalid(&format!(
            "actor_token_type `{other}` is not supported (use {ACCESS_TOKEN_TYPE})"
        )),
        (Some(_), None) => invalid("actor_token_type is required with actor_token"),
        (None, Some(_)) => invalid("actor_token_type without actor_token"),
    }
}
