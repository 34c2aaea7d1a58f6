//! The registration actor: creates clients (RFC 7591, `registration.mode = "local"`:
//! the broker issues ids and secrets itself, so the provider sees one client however
//! many MCP clients register), de-duplicates identical public registrations, bounds
//! the number of clients, and periodically removes unused ones. Reads (authorize,
//! token) go to the store directly through the handle.

mod messages;

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use moka::sync::Cache;
use rand::RngCore;
use sha2::{Digest, Sha256};

pub use messages::{RegisterClient, Sweep};

use crate::clock::Clock;
use crate::config::RegistrationConfig;
use crate::domain::client_metadata::{ClientMetadata, TokenEndpointAuthMethod};
use crate::store::{ClientOrigin, Store, StoreError, StoredClient};
use crate::telemetry::metrics::Metrics;

/// A registration's outcome.
#[derive(Debug, Clone)]
pub struct Registered {
    pub client: StoredClient,
    /// The client secret, shown in this response only; `None` for public clients.
    pub secret: Option<String>,
    /// True when an identical public registration was answered with its client.
    pub reused: bool,
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
}

/// What handlers hold.
#[derive(Clone)]
pub struct RegistrationHandle {
    addr: Addr<Registration>,
    store: Arc<dyn Store>,
    recent_public: Cache<[u8; 32], String>,
}

impl RegistrationHandle {
    pub async fn register(
        &self,
        metadata: ClientMetadata,
    ) -> Result<Registered, RegistrationError> {
        self.addr
            .send(RegisterClient { metadata })
            .await
            .map_err(|_| RegistrationError::Stopped)?
    }

    pub async fn sweep(&self) -> Result<SweepReport, RegistrationError> {
        self.addr
            .send(Sweep)
            .await
            .map_err(|_| RegistrationError::Stopped)?
    }

    pub async fn client(&self, client_id: &str) -> Result<Option<StoredClient>, StoreError> {
        self.store.get_client(client_id).await
    }

    /// A client already registered with identical public metadata within the
    /// de-duplication window: hosted clients behind one egress IP registering the same
    /// app must neither multiply clients nor use up each other's rate limit.
    pub async fn existing_public(&self, metadata: &ClientMetadata) -> Option<StoredClient> {
        if metadata.token_endpoint_auth_method != TokenEndpointAuthMethod::None {
            return None;
        }
        let client_id = self.recent_public.get(&metadata.fingerprint())?;
        self.store.get_client(&client_id).await.ok().flatten()
    }
}

pub struct Registration {
    config: RegistrationConfig,
    store: Arc<dyn Store>,
    clock: Clock,
    metrics: Metrics,
    recent_public: Cache<[u8; 32], String>,
}

impl Registration {
    pub fn start(
        config: RegistrationConfig,
        store: Arc<dyn Store>,
        clock: Clock,
        metrics: Metrics,
    ) -> RegistrationHandle {
        let recent_public = Cache::builder()
            .max_capacity(100_000)
            .time_to_live(config.dedupe_window)
            .build();
        let actor = Self {
            config,
            store: store.clone(),
            clock,
            metrics,
            recent_public: recent_public.clone(),
        };
        RegistrationHandle {
            addr: actor.start(),
            store,
            recent_public,
        }
    }
}

fn random_b64(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, buf)
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
    type Result = ResponseActFuture<Self, Result<Registered, RegistrationError>>;

    fn handle(&mut self, message: RegisterClient, _: &mut Self::Context) -> Self::Result {
        let store = self.store.clone();
        let max = self.config.max_clients;
        let now = self.clock.unix();
        let metadata = message.metadata;
        let public = metadata.token_endpoint_auth_method == TokenEndpointAuthMethod::None;
        let fingerprint = metadata.fingerprint();
        let work = async move {
            if store.count_clients().await? >= max {
                return Err(RegistrationError::Full);
            }
            let secret = (!public).then(|| random_b64(32));
            let client = StoredClient {
                client_id: random_b64(16),
                secret_hash: secret.as_ref().map(|s| Sha256::digest(s.as_bytes()).into()),
                metadata: serde_json::Value::Object(metadata.to_response_json()),
                fingerprint,
                issued_at: now,
                last_used_at: None,
                origin: ClientOrigin::Local,
            };
            store.put_client(client.clone()).await?;
            Ok(Registered {
                client,
                secret,
                reused: false,
            })
        };
        Box::pin(work.into_actor(self).map(move |result, actor, _| {
            match &result {
                Ok(registered) => {
                    actor.metrics.registration("created");
                    if public {
                        actor
                            .recent_public
                            .insert(fingerprint, registered.client.client_id.clone());
                    }
                }
                Err(RegistrationError::Full) => actor.metrics.registration("full"),
                Err(_) => actor.metrics.registration("failed"),
            }
            result
        }))
    }
}

impl Handler<Sweep> for Registration {
    type Result = ResponseActFuture<Self, Result<SweepReport, RegistrationError>>;

    fn handle(&mut self, _: Sweep, _: &mut Self::Context) -> Self::Result {
        let store = self.store.clone();
        let now = self.clock.unix();
        let unused_before = now.saturating_sub(self.config.unused_ttl.as_secs());
        let idle_before = now.saturating_sub(self.config.idle_ttl.as_secs());
        let work = async move {
            let mut report = SweepReport::default();
            for client in store.stale_clients(unused_before, idle_before).await? {
                if store.delete_client(&client.client_id).await? {
                    report.removed += 1;
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
