//! The grant lifecycle: tokens issued for a redeemed code (`authorization_code`),
//! refresh-token rotation (`refresh_token`: reuse detection with a grace for lost
//! responses, scope that may only narrow, the provider's session confirmed), revocation
//! (RFC 7009), introspection (RFC 7662), the operator's invalidations, and the
//! grant's provider tokens refreshed when they expired (also for token exchange), and
//! the ID-JAG grant (`id_jag.rs`: enterprise-managed authorization) and the
//! client-credentials grant (`client_credentials.rs`: machine clients).
//!
//! Requests come in as plain values and outcomes go out typed ([`Issued`],
//! [`Introspection`]); `http/` renders them and maps [`GrantError`] to RFC 6749 JSON.

mod admin;
mod client_credentials;
mod error;
mod id_jag;
mod introspect;
mod issue;
mod provider;
mod refresh;
mod revoke;

use std::sync::Arc;
use std::time::Duration;

pub use admin::AdminCredential;
pub use client_credentials::ClientCredentialsRequest;
pub use error::GrantError;
pub use id_jag::IdJagRequest;
pub use introspect::{Caller, Introspection};
pub use issue::CodeRedemption;

use crate::actors::discovery::DiscoveryHandle;
use crate::actors::exchange::RefreshOnce;
use crate::actors::scopes::handle::InvalidatorHandle;
use crate::actors::sessions::SessionsHandle;
use crate::clock::Clock;
use crate::config::{
    CallerConfig, Config, IntrospectionConfig, Issuer, RefreshConfig, ResourceConfig, Secret,
    TokenMode,
};
use crate::domain::identity::ClaimNames;
use crate::domain::invalidation::Invalidation;
use crate::flows::clients::{Clients, KnownClient};
use crate::store::{Grant, Store};
use crate::telemetry::metrics::Metrics;
use crate::tokens::Verifier;
use crate::tokens::id_jag::AssertionVerifier;
use crate::tokens::signing::SigningKeys;
use crate::upstream::http::UpstreamHttp;
use crate::upstream::token::ClientCredentials;
use provider::Provider;

/// What the grant lifecycle reads of the configuration.
#[derive(Clone)]
pub struct Settings {
    /// `server.public_url`: the `iss` of what the broker issues, and the audience of
    /// a grant that named no resource.
    pub issuer: Issuer,
    /// `tokens.mode`: the broker's own tokens, or the provider's handed on.
    pub mode: TokenMode,
    /// `tokens.access_token_ttl`.
    pub access_token_ttl: Duration,
    /// `[refresh]`: refresh-token life, reuse grace, provider staleness bound.
    pub refresh: RefreshConfig,
    /// `verify.leeway`: how long past its `exp` a handed-out provider token is kept.
    pub leeway: Duration,
    /// `[introspection]`: who may introspect any access token.
    pub introspection: IntrospectionConfig,
    /// `[[exchange.clients]]`: resource servers that may introspect with their
    /// configured secret.
    pub callers: Vec<CallerConfig>,
    /// `admin.token`: the admin API's bearer token (none: the API is off).
    pub admin_token: Option<Secret>,
    /// The broker's own client at the provider (for clients not registered there).
    pub upstream_client: ClientCredentials,
    /// `[[resources]]`: what an ID-JAG's `resource` may name.
    pub resources: Vec<ResourceConfig>,
    /// The provider's issuer, expected in the ID token of a provider refresh.
    pub upstream_issuer: Issuer,
    /// `[upstream.claims]`: the identity such an ID token states.
    pub claims: ClaimNames,
    /// `tokens.identity_claims`: issued access tokens carry the grant's identity.
    pub identity_claims: bool,
}

impl Settings {
    pub fn from_config(config: &Config) -> Self {
        Self {
            issuer: config.server.public_url.clone(),
            mode: config.tokens.mode,
            access_token_ttl: config.tokens.access_token_ttl,
            refresh: config.refresh.clone(),
            leeway: config.verify.leeway,
            introspection: config.introspection.clone(),
            callers: config.exchange.clients.clone(),
            admin_token: config.admin.token.clone(),
            upstream_client: ClientCredentials::of(&config.upstream),
            resources: config.resources.clone(),
            upstream_issuer: config.upstream.issuer.clone(),
            claims: config.upstream.claims.clone(),
            identity_claims: config.tokens.identity_claims,
        }
    }
}

/// The handles the grant lifecycle works with.
pub struct Parts {
    pub store: Arc<dyn Store>,
    pub clock: Clock,
    pub metrics: Metrics,
    pub signing: Arc<SigningKeys>,
    pub verifier: Verifier,
    pub clients: Arc<Clients>,
    pub discovery: DiscoveryHandle,
    pub upstream_http: UpstreamHttp,
    pub invalidator: InvalidatorHandle,
    /// One refresh of a grant's expired provider tokens at a time, on every replica.
    pub refresh_once: RefreshOnce,
    /// The one-time codes the login minted, redeemed here.
    pub sessions: SessionsHandle,
    /// The trusted ID-JAG issuers and their keys (`[[enterprise.issuers]]`).
    pub assertions: Arc<AssertionVerifier>,
}

/// The grant lifecycle, shared by every worker.
pub struct Grants {
    settings: Settings,
    store: Arc<dyn Store>,
    clock: Clock,
    metrics: Metrics,
    signing: Arc<SigningKeys>,
    verifier: Verifier,
    clients: Arc<Clients>,
    invalidator: InvalidatorHandle,
    refresh_once: RefreshOnce,
    sessions: SessionsHandle,
    assertions: Arc<AssertionVerifier>,
    /// What a refresh or revocation at the provider needs, shared with the tasks
    /// that outlive the request.
    provider: Arc<Provider>,
}

/// What the token endpoint hands the client (RFC 6749 §5.1; always a bearer token).
pub struct Issued {
    pub access_token: String,
    pub expires_in: u64,
    pub scope: String,
    pub refresh_token: Option<String>,
}

impl Grants {
    pub fn new(settings: Settings, parts: Parts) -> Self {
        let provider = Arc::new(Provider {
            store: parts.store.clone(),
            clock: parts.clock.clone(),
            clients: parts.clients.clone(),
            discovery: parts.discovery,
            http: parts.upstream_http,
            invalidator: parts.invalidator.clone(),
            own: settings.upstream_client.clone(),
            passthrough: settings.mode == TokenMode::Passthrough,
            issuer: settings.upstream_issuer.clone(),
            leeway: settings.leeway,
            claims: settings.claims.clone(),
        });
        Self {
            settings,
            store: parts.store,
            clock: parts.clock,
            metrics: parts.metrics,
            signing: parts.signing,
            verifier: parts.verifier,
            clients: parts.clients,
            invalidator: parts.invalidator,
            refresh_once: parts.refresh_once,
            sessions: parts.sessions,
            assertions: parts.assertions,
            provider,
        }
    }

    /// Counts a token-endpoint outcome (`grant_type` label, `issued` or the error
    /// code): the endpoint's adapter knows the code a failure is answered with.
    pub fn count(&self, grant_type: &str, outcome: &str) {
        self.metrics.token(grant_type, outcome);
    }

    /// Writes an audit event for a flow built on the grants (the admin flow).
    pub fn audit(&self, event: crate::telemetry::audit::AuditEvent<'_>) {
        self.metrics.audit(event);
    }

    /// A grant that exists and is not revoked.
    pub async fn live_grant(&self, grant_id: &str) -> Result<Grant, GrantError> {
        match self.store.get_grant(grant_id).await? {
            Some(grant) if grant.revoked_at.is_none() => Ok(grant),
            _ => Err(GrantError::InvalidGrant("the grant was revoked")),
        }
    }

    /// Revokes a grant everywhere: stored (its refresh tokens die) and in the
    /// verifier (its access tokens stop verifying on the next request).
    pub async fn revoke_grant(&self, grant_id: &str) -> Result<(), GrantError> {
        self.store.revoke_grant(grant_id, self.clock.unix()).await?;
        self.invalidator
            .invalidate(Invalidation::GrantId(grant_id.to_owned()))
            .await;
        Ok(())
    }

    /// Records the client's use (registrations unused for long are swept).
    async fn touch(&self, client_id: &str) {
        if let Err(error) = self.store.touch_client(client_id, self.clock.unix()).await {
            tracing::warn!(%error, "could not record the client's use");
        }
    }
}

/// Whether `client` registered for `grant_type` (RFC 7591 §2 `grant_types`).
pub fn may_use(client: &KnownClient, grant_type: &'static str) -> Result<(), GrantError> {
    if client.grant_types.iter().any(|g| g == grant_type) {
        Ok(())
    } else {
        Err(GrantError::UnauthorizedClient(grant_type))
    }
}

/// A new grant's id: 128 random bits, URL-safe (a login's grant and an ID-JAG's alike).
pub fn new_grant_id() -> String {
    use base64::Engine;
    use rand::Rng;
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
