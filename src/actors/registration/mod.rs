//! The registration actor: creates clients (RFC 7591, `registration.mode = "local"`:
//! the broker issues ids and secrets itself, so the provider sees one client however
//! many MCP clients register), de-duplicates identical public registrations, bounds
//! the number of clients, and periodically removes unused ones. Reads (authorize,
//! token) go to the store directly through the handle.

mod create;
mod handle;
mod messages;
mod upstream;

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

pub use handle::RegistrationHandle;
pub use messages::{RegisterClient, Renew, Sweep};

use std::collections::HashMap;

use tokio::sync::oneshot;

use crate::actors::discovery::DiscoveryHandle;
use crate::clock::Clock;
use crate::config::RegistrationConfig;
use crate::domain::client_metadata::TokenEndpointAuthMethod;
use crate::domain::upstream_request::Profile;
use crate::redact::Redacted;
use crate::store::{ClientOrigin, RecentClients, Store, StoreError, StoredClient};
use crate::telemetry::audit::AuditEvent;
use crate::telemetry::metrics::Metrics;
use crate::upstream::http::UpstreamHttp;
use crate::upstream::registration;

/// A registration's outcome. `Debug` hides the secret.
#[derive(Clone)]
pub struct Registered {
    pub client: StoredClient,
    /// The client secret, shown in this response only; `None` for public clients.
    pub secret: Option<String>,
    /// True when an identical public registration was answered with its client.
    pub reused: bool,
}

impl std::fmt::Debug for Registered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registered")
            .field("client", &self.client)
            .field("secret", &Redacted::option(&self.secret))
            .field("reused", &self.reused)
            .finish()
    }
}

/// What a sweep removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepReport {
    pub removed: u64,
}

/// Why a registration or sweep failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RegistrationError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// `registration.max_clients` reached: answered 503 so clients retry later.
    #[error("the broker holds as many clients as it is configured for")]
    Full,
    /// The actor is gone (shutting down).
    #[error("the registration actor has stopped")]
    Stopped,
    /// Proxy mode: the provider refused the metadata (400, passed on).
    #[error("{0}")]
    UpstreamRefused(String),
    /// Proxy mode: the provider stayed busy (429/503) past the retry budget.
    #[error("the provider is busy")]
    UpstreamBusy { retry_after: Duration },
    /// Proxy mode: the provider could not be used (unreachable, no endpoint, bad answer).
    #[error("{0}")]
    Upstream(String),
}

/// What proxy mode needs to reach the provider.
#[derive(Clone)]
pub struct Upstream {
    pub http: UpstreamHttp,
    pub discovery: DiscoveryHandle,
    /// The broker's own callback, the redirect URI of every upstream client.
    pub callback: String,
    /// How the provider hears scopes and audiences (`upstream.profile`).
    pub profile: Profile,
    /// Every resource's upstream audiences (Entra names them in the scope).
    pub audiences: Vec<String>,
}

type Reply = Result<Registered, RegistrationError>;

pub struct Registration {
    config: RegistrationConfig,
    store: Arc<dyn Store>,
    clock: Clock,
    metrics: Metrics,
    upstream: Upstream,
    /// Which client identical public metadata got (shared by replicas on Redis).
    recent: Arc<dyn RecentClients>,
    /// Public registrations under way, by fingerprint, with the callers waiting for them.
    in_flight: HashMap<[u8; 32], Vec<oneshot::Sender<Reply>>>,
    /// Upstream renewals under way, by broker client id, with the callers waiting.
    renewing: HashMap<String, Vec<oneshot::Sender<upstream::RenewReply>>>,
}

impl Registration {
    pub fn start(
        config: RegistrationConfig,
        store: Arc<dyn Store>,
        clock: Clock,
        metrics: Metrics,
        upstream: Upstream,
        recent: Arc<dyn RecentClients>,
    ) -> RegistrationHandle {
        let actor = Self {
            config,
            store: store.clone(),
            clock,
            metrics,
            upstream,
            recent: recent.clone(),
            in_flight: HashMap::new(),
            renewing: HashMap::new(),
        };
        let http = actor.upstream.http.clone();
        let clock = actor.clock.clone();
        RegistrationHandle {
            addr: actor.start(),
            store,
            recent,
            http,
            clock,
        }
    }
}

impl Actor for Registration {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let every = self.config.sweep_interval.max(Duration::from_secs(1));
        ctx.run_interval(every, |_, ctx| {
            ctx.notify(Sweep);
        });
    }
}

impl Handler<RegisterClient> for Registration {
    type Result = ResponseFuture<Reply>;

    fn handle(&mut self, message: RegisterClient, ctx: &mut Self::Context) -> Self::Result {
        let metadata = message.metadata;
        let (tx, rx) = oneshot::channel();
        if metadata.token_endpoint_auth_method != TokenEndpointAuthMethod::None {
            let work = create::create(
                metadata,
                self.config.clone(),
                self.store.clone(),
                self.upstream.clone(),
                self.clock.unix(),
            );
            ctx.spawn(work.into_actor(self).map(move |result, actor, _| {
                actor.count(&result);
                let _ = tx.send(result);
            }));
            return wait(rx);
        }
        // Identical public registrations under way share the one being made.
        let fingerprint = metadata.fingerprint();
        if let Some(waiters) = self.in_flight.get_mut(&fingerprint) {
            waiters.push(tx);
            return wait(rx);
        }
        self.in_flight.insert(fingerprint, vec![tx]);
        let work = create::reuse_or_create(
            metadata,
            self.config.clone(),
            self.store.clone(),
            self.upstream.clone(),
            self.recent.clone(),
            self.clock.unix(),
        );
        ctx.spawn(work.into_actor(self).map(move |result, actor, _| {
            actor.count(&result);
            for (i, waiter) in actor
                .in_flight
                .remove(&fingerprint)
                .unwrap_or_default()
                .into_iter()
                .enumerate()
            {
                let reply = result.clone().map(|r| Registered {
                    reused: r.reused || i > 0,
                    ..r
                });
                let _ = waiter.send(reply);
            }
        }));
        wait(rx)
    }
}

impl Registration {
    /// The outcome in `registrations_total`.
    fn count(&self, result: &Reply) {
        self.metrics.registration(match result {
            Ok(registered) if registered.reused => "reused",
            Ok(_) => "created",
            Err(RegistrationError::Full) => "full",
            Err(_) => "failed",
        });
    }
}

fn wait(rx: oneshot::Receiver<Reply>) -> ResponseFuture<Reply> {
    Box::pin(async move { rx.await.unwrap_or(Err(RegistrationError::Stopped)) })
}

impl Handler<Sweep> for Registration {
    type Result = ResponseActFuture<Self, Result<SweepReport, RegistrationError>>;

    fn handle(&mut self, _: Sweep, _: &mut Self::Context) -> Self::Result {
        let store = self.store.clone();
        let http = self.upstream.http.clone();
        let now = self.clock.unix();
        let unused_before = now.saturating_sub(self.config.unused_ttl.as_secs());
        let idle_before = now.saturating_sub(self.config.idle_ttl.as_secs());
        let metrics = self.metrics.clone();
        let work = async move {
            let mut report = SweepReport::default();
            for client in store.stale_clients(unused_before, idle_before).await? {
                if let ClientOrigin::Proxied {
                    registration_client_uri: Some(uri),
                    registration_access_token: Some(token),
                    ..
                } = &client.origin
                    && let Err(error) = registration::delete(&http, uri, token).await
                {
                    // Keep the record so the next sweep tries again.
                    tracing::warn!(%error, client_id = %client.client_id, "upstream registration not deleted");
                    continue;
                }
                if store.delete_client(&client.client_id).await? {
                    report.removed += 1;
                    let reason = if client.last_used_at.is_some() {
                        "idle"
                    } else {
                        "unused"
                    };
                    metrics.audit(AuditEvent::ClientRemoved {
                        client_id: &client.client_id,
                        reason,
                    });
                }
            }
            Ok(report)
        };
        Box::pin(work.into_actor(self).map(
            |result: Result<SweepReport, RegistrationError>, actor, _| {
                match &result {
                    Ok(report) if report.removed > 0 => {
                        actor.metrics.clients_removed(report.removed);
                        tracing::info!(
                            removed = report.removed,
                            "unused client registrations removed"
                        );
                    }
                    Ok(_) => {}
                    Err(error) => tracing::warn!(%error, "registration sweep failed"),
                }
                result
            },
        ))
    }
}
