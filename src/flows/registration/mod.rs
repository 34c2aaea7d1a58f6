//! Dynamic client registration (RFC 7591) as one use case: the metadata checked
//! against the broker's rules, an identical public registration answered with the
//! client it already made, registrations rate-limited per client IP, and a new client
//! asked of the registration actor (made locally, or first at the provider in proxy
//! mode). Counted in `registrations_total` where the actor does not count them.

mod rate_limit;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use serde_json::Value;

pub use self::rate_limit::{RateLimiter, Refusal};
pub use crate::actors::registration::Registered;
use crate::actors::registration::{RegistrationError, RegistrationHandle};
use crate::domain::client_ip::client_ip;
use crate::domain::client_metadata::{self, MetadataError, RedirectPolicy, SupportedScopes};
use crate::telemetry::audit::AuditEvent;
use crate::telemetry::metrics::Metrics;

/// A registration request as it arrived.
#[derive(Debug, Clone, Copy)]
pub struct RegisterRequest<'a> {
    /// The JSON body: the client's metadata, not yet checked.
    pub metadata: &'a Value,
    /// The connection's peer; `None` (no rate limit) only where there is no socket.
    pub peer: Option<IpAddr>,
    /// `X-Forwarded-For`, believed only from `server.trusted_proxies`.
    pub forwarded_for: Option<&'a str>,
}

/// Why a registration was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    /// A redirect URI breaks the rules (RFC 7591 §3.2.2 `invalid_redirect_uri`).
    #[error("{0}")]
    InvalidRedirectUri(String),
    /// Other metadata breaks the rules (RFC 7591 §3.2.2 `invalid_client_metadata`).
    #[error("{0}")]
    InvalidMetadata(String),
    /// The provider refused the metadata in proxy mode (passed on as invalid metadata).
    #[error("the identity provider refused the registration: {0}")]
    UpstreamRefused(String),
    /// Too many registrations from this client IP: retry after this many seconds.
    #[error("too many registrations; retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    /// The store (rate-limit counters or client records) cannot be reached.
    #[error("registration is unavailable")]
    StoreUnavailable,
    /// `registration.max_clients` reached.
    #[error("the broker holds as many clients as it is configured for")]
    Full,
    /// Proxy mode: the provider stayed busy past the retry budget.
    #[error("the identity provider is busy")]
    UpstreamBusy { retry_after: Duration },
    /// Proxy mode: the provider could not be used (the cause is logged here).
    #[error("registration at the identity provider failed")]
    UpstreamFailed,
    /// The registration actor is gone (shutting down).
    #[error("the registration actor has stopped")]
    Stopped,
}

/// Registers clients: built once from the `[registration]` and `[server]` settings.
pub struct Registrar {
    registration: RegistrationHandle,
    limiter: RateLimiter,
    redirects: RedirectPolicy,
    trusted_proxies: Vec<IpNet>,
    metrics: Metrics,
}

impl Registrar {
    pub fn new(
        registration: RegistrationHandle,
        limiter: RateLimiter,
        redirects: RedirectPolicy,
        trusted_proxies: Vec<IpNet>,
        metrics: Metrics,
    ) -> Arc<Self> {
        Arc::new(Self {
            registration,
            limiter,
            redirects,
            trusted_proxies,
            metrics,
        })
    }

    /// Checks the metadata and returns the client to show: an existing one for
    /// identical public metadata (no secret), else a new one with its secret, once.
    pub async fn register(
        &self,
        request: RegisterRequest<'_>,
    ) -> Result<Registered, RegisterError> {
        let metadata =
            client_metadata::validate(request.metadata, &self.redirects, &SupportedScopes(None))
                .map_err(|e| {
                    self.metrics.registration("invalid");
                    match e {
                        MetadataError::InvalidRedirectUri(d) => {
                            RegisterError::InvalidRedirectUri(d)
                        }
                        MetadataError::InvalidClientMetadata(d) => {
                            RegisterError::InvalidMetadata(d)
                        }
                    }
                })?;
        // Hosted clients behind one egress IP registering the same app must not use up
        // each other's rate limit: a reused client is not counted against it.
        if let Some(existing) = self.registration.existing_public(&metadata).await {
            self.metrics.registration("reused");
            return Ok(Registered {
                client: existing,
                secret: None,
                reused: true,
            });
        }
        if let Some(peer) = request.peer {
            self.admit(client_ip(
                peer,
                request.forwarded_for,
                &self.trusted_proxies,
            ))
            .await?;
        }
        let registered = self.registration.register(metadata).await.map_err(failed)?;
        tracing::info!(client_id = %registered.client.client_id, "client registered");
        self.metrics.audit(AuditEvent::ClientRegistered {
            client_id: &registered.client.client_id,
        });
        Ok(registered)
    }

    async fn admit(&self, ip: IpAddr) -> Result<(), RegisterError> {
        match self.limiter.admit(&ip.to_string()).await {
            Ok(()) => Ok(()),
            Err(Refusal::Limited { retry_after_secs }) => {
                self.metrics.registration("rate_limited");
                Err(RegisterError::RateLimited { retry_after_secs })
            }
            Err(Refusal::Unavailable(error)) => {
                // Registering needs the same store for the client record anyway.
                tracing::warn!(%error, "registration rate limit unavailable");
                self.metrics.registration("failed");
                Err(RegisterError::StoreUnavailable)
            }
        }
    }
}

/// The actor's failure as this flow reports it; causes are logged here.
fn failed(error: RegistrationError) -> RegisterError {
    match error {
        RegistrationError::Full => RegisterError::Full,
        RegistrationError::Store(error) => {
            tracing::warn!(%error, "registration could not be stored");
            RegisterError::StoreUnavailable
        }
        RegistrationError::Stopped => RegisterError::Stopped,
        RegistrationError::UpstreamRefused(description) => {
            RegisterError::UpstreamRefused(description)
        }
        RegistrationError::UpstreamBusy { retry_after } => {
            RegisterError::UpstreamBusy { retry_after }
        }
        RegistrationError::Upstream(cause) => {
            tracing::error!(%cause, "proxied registration failed");
            RegisterError::UpstreamFailed
        }
    }
}
