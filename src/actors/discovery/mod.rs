//! The discovery actor: owns the provider's metadata and JWKS. One refresh in flight
//! at a time (callers during a refresh wait for the same result); the last good copy
//! is served for a bounded grace while the provider is down; an unknown `kid` causes
//! at most one JWKS refetch per interval. Hot readers never use the mailbox: they load
//! the current snapshot from the shared handle.

mod messages;

use std::sync::Arc;

use actix::prelude::*;
use arc_swap::ArcSwapOption;
use tokio::sync::oneshot;

pub use messages::{GetProvider, KeyFor, Refresh};

use crate::clock::{Clock, UnixSeconds};
use crate::config::{Issuer, UpstreamConfig};
use crate::telemetry::metrics::Metrics;
use crate::upstream::UpstreamError;
use crate::upstream::discovery;
use crate::upstream::http::UpstreamHttp;
use crate::upstream::jwks;
use crate::upstream::snapshot::SnapshotSource;
/// Re-exported: the snapshot and its error live in `upstream` so that the layers
/// below the actors can use them.
pub use crate::upstream::snapshot::{DiscoveryError, Snapshot};

/// Timing rules, from `[upstream]`.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub ttl: u64,
    pub grace: u64,
    pub refetch_interval: u64,
}

impl Timing {
    pub fn from_config(config: &UpstreamConfig) -> Self {
        Self {
            ttl: config.discovery_ttl.as_secs(),
            grace: config.discovery_grace.as_secs(),
            refetch_interval: config.jwks_refetch_interval.as_secs(),
        }
    }
}

/// How the provider's metadata and keys stand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Fetched `age` seconds ago, within `upstream.discovery_ttl`.
    Fresh { age: u64 },
    /// Older than the TTL (the provider did not answer a refresh), still served for
    /// `grace_left` seconds of `upstream.discovery_grace`.
    Stale { age: u64, grace_left: u64 },
    /// No copy, or none within the grace: upstream tokens are refused.
    Unavailable,
}

/// What hot paths hold: the shared snapshot and the actor's address.
#[derive(Clone)]
pub struct DiscoveryHandle {
    shared: Arc<ArcSwapOption<Snapshot>>,
    addr: Addr<Discovery>,
    timing: Timing,
    clock: Clock,
}

impl DiscoveryHandle {
    /// A snapshot usable now: the shared one while it is within its TTL, otherwise
    /// whatever the actor decides (refresh, stale within grace, or an error).
    pub async fn current(&self) -> Result<Arc<Snapshot>, DiscoveryError> {
        match SnapshotSource::fresh(self) {
            Some(snapshot) => Ok(snapshot),
            None => self.ask(GetProvider).await,
        }
    }

    /// The snapshot to look for `kid` in, after a rate-limited JWKS refetch.
    pub async fn key_for(&self, kid: &str) -> Result<Arc<Snapshot>, DiscoveryError> {
        self.ask(KeyFor {
            kid: kid.to_owned(),
        })
        .await
    }

    pub async fn refresh(&self) -> Result<Arc<Snapshot>, DiscoveryError> {
        self.ask(Refresh).await
    }

    /// How the copy held now stands (for `/readyz`), without waiting for a refresh.
    pub fn standing(&self) -> Standing {
        let now = self.clock.unix();
        let Some(snapshot) = self.shared.load_full() else {
            return Standing::Unavailable;
        };
        let age = now.saturating_sub(snapshot.fetched_at);
        let stale_until = snapshot.fetched_at + self.timing.ttl + self.timing.grace;
        if age < self.timing.ttl {
            Standing::Fresh { age }
        } else if now < stale_until {
            Standing::Stale {
                age,
                grace_left: stale_until - now,
            }
        } else {
            Standing::Unavailable
        }
    }

    async fn ask<M>(&self, message: M) -> Result<Arc<Snapshot>, DiscoveryError>
    where
        M: Message<Result = Result<Arc<Snapshot>, DiscoveryError>> + Send + 'static,
        Discovery: Handler<M>,
    {
        self.addr
            .send(message)
            .await
            .map_err(|_| DiscoveryError::Stopped)?
    }
}

/// What verification, introspection and ID-token validation (below the actors) hold.
#[async_trait::async_trait]
impl SnapshotSource for DiscoveryHandle {
    fn fresh(&self) -> Option<Arc<Snapshot>> {
        let snapshot = self.shared.load_full()?;
        (self.clock.unix() < snapshot.fetched_at + self.timing.ttl).then_some(snapshot)
    }

    async fn renewed(&self) -> Result<Arc<Snapshot>, DiscoveryError> {
        self.ask(GetProvider).await
    }

    async fn refetched_for(&self, kid: &str) -> Result<Arc<Snapshot>, DiscoveryError> {
        self.key_for(kid).await
    }
}

type Waiter = oneshot::Sender<Result<Arc<Snapshot>, DiscoveryError>>;

/// The actor.
pub struct Discovery {
    http: UpstreamHttp,
    issuer: Issuer,
    timing: Timing,
    clock: Clock,
    shared: Arc<ArcSwapOption<Snapshot>>,
    waiters: Vec<Waiter>,
    in_flight: bool,
    metrics: Metrics,
    /// When an unknown `kid` last caused a JWKS refetch (regular refreshes do not count).
    last_kid_refetch: Option<UnixSeconds>,
}

impl Discovery {
    /// Starts the actor and returns the handle hot paths use.
    pub fn start(
        http: UpstreamHttp,
        issuer: Issuer,
        timing: Timing,
        clock: Clock,
        metrics: Metrics,
    ) -> DiscoveryHandle {
        let shared = Arc::new(ArcSwapOption::empty());
        let actor = Self {
            http,
            issuer,
            timing,
            clock: clock.clone(),
            shared: shared.clone(),
            waiters: Vec::new(),
            in_flight: false,
            metrics,
            last_kid_refetch: None,
        };
        DiscoveryHandle {
            shared,
            addr: actor.start(),
            timing,
            clock,
        }
    }

    fn fresh(&self) -> Option<Arc<Snapshot>> {
        let snapshot = self.shared.load_full()?;
        (self.clock.unix() < snapshot.fetched_at + self.timing.ttl).then_some(snapshot)
    }

    /// Queues `waiter` and starts a refresh unless one is running. `keys_only`
    /// refetches the JWKS with the current metadata.
    fn refresh(&mut self, ctx: &mut Context<Self>, waiter: Option<Waiter>, keys_only: bool) {
        self.waiters.extend(waiter);
        if self.in_flight {
            return;
        }
        self.in_flight = true;
        let http = self.http.clone();
        let issuer = self.issuer.clone();
        let now = self.clock.unix();
        let current = self.shared.load_full().filter(|_| keys_only);
        let work = async move {
            match current {
                Some(snapshot) => {
                    let keys = jwks::fetch(&http, &snapshot.info.jwks_uri).await?;
                    Ok(Snapshot {
                        info: snapshot.info.clone(),
                        keys,
                        fetched_at: snapshot.fetched_at,
                    })
                }
                None => {
                    let info = discovery::discover(&http, &issuer).await?;
                    let keys = jwks::fetch(&http, &info.jwks_uri).await?;
                    Ok(Snapshot {
                        info,
                        keys,
                        fetched_at: now,
                    })
                }
            }
        };
        ctx.spawn(
            work.into_actor(self)
                .map(|result, actor, _| actor.finish(result)),
        );
    }

    fn finish(&mut self, result: Result<Snapshot, UpstreamError>) {
        self.in_flight = false;
        let reply = match result {
            Ok(snapshot) => {
                tracing::info!(
                    issuer = %snapshot.info.issuer,
                    keys = snapshot.keys.len(),
                    skipped = snapshot.keys.skipped.len(),
                    "upstream discovery refreshed"
                );
                // Once per change, not per refresh: a signing key the provider
                // publishes and the broker cannot use fails every token it signs.
                let before = self.shared.load_full();
                let skipped = &snapshot.keys.skipped;
                if !skipped.is_empty()
                    && before
                        .as_ref()
                        .is_none_or(|before| before.keys.skipped != *skipped)
                {
                    let keys: Vec<String> = skipped.iter().map(ToString::to_string).collect();
                    tracing::warn!(
                        issuer = %snapshot.info.issuer,
                        skipped = %keys.join("; "),
                        "the provider publishes signing keys the broker cannot use: tokens they sign will be refused"
                    );
                }
                self.metrics.discovery_refresh("ok");
                let snapshot = Arc::new(snapshot);
                self.shared.store(Some(snapshot.clone()));
                Ok(snapshot)
            }
            Err(error) => self.stale_or(error),
        };
        for waiter in self.waiters.drain(..) {
            let _ = waiter.send(reply.clone());
        }
    }

    /// The last good snapshot while within TTL + grace, else the error.
    fn stale_or(&mut self, error: UpstreamError) -> Result<Arc<Snapshot>, DiscoveryError> {
        let now = self.clock.unix();
        match self.shared.load_full() {
            Some(snapshot) if now < snapshot.fetched_at + self.timing.ttl + self.timing.grace => {
                self.metrics.discovery_refresh("stale");
                tracing::warn!(%error, age_secs = now - snapshot.fetched_at, "upstream unreachable: serving the last good discovery copy");
                Ok(snapshot)
            }
            _ => {
                self.metrics.discovery_refresh("failed");
                tracing::error!(%error, "upstream discovery failed and no copy within the grace is left");
                Err(DiscoveryError::Upstream(error))
            }
        }
    }
}

impl Actor for Discovery {
    type Context = Context<Self>;

    /// Fetch once at start so the first request rarely waits, then keep the copy fresh
    /// in the background; requests still refresh on demand when the copy is old.
    fn started(&mut self, ctx: &mut Self::Context) {
        self.refresh(ctx, None, false);
        let period = std::time::Duration::from_secs(self.timing.ttl.max(1));
        ctx.run_interval(period, |actor, ctx| actor.refresh(ctx, None, false));
    }
}

type Reply = ResponseFuture<Result<Arc<Snapshot>, DiscoveryError>>;

fn wait(rx: oneshot::Receiver<Result<Arc<Snapshot>, DiscoveryError>>) -> Reply {
    Box::pin(async move { rx.await.unwrap_or(Err(DiscoveryError::Stopped)) })
}

impl Handler<GetProvider> for Discovery {
    type Result = Reply;

    fn handle(&mut self, _: GetProvider, ctx: &mut Self::Context) -> Reply {
        if let Some(snapshot) = self.fresh() {
            return Box::pin(async move { Ok(snapshot) });
        }
        let (tx, rx) = oneshot::channel();
        self.refresh(ctx, Some(tx), false);
        wait(rx)
    }
}

impl Handler<KeyFor> for Discovery {
    type Result = Reply;

    fn handle(&mut self, message: KeyFor, ctx: &mut Self::Context) -> Reply {
        let now = self.clock.unix();
        let current = self.shared.load_full();
        let known = current
            .as_ref()
            .is_some_and(|s| s.keys.find(Some(&message.kid)).is_some());
        let recently = self
            .last_kid_refetch
            .is_some_and(|at| now < at + self.timing.refetch_interval);
        match current {
            Some(snapshot) if known || (recently && !self.in_flight) => {
                Box::pin(async move { Ok(snapshot) })
            }
            _ => {
                if !self.in_flight {
                    self.last_kid_refetch = Some(now);
                }
                let (tx, rx) = oneshot::channel();
                let keys_only = self.fresh().is_some();
                self.refresh(ctx, Some(tx), keys_only);
                wait(rx)
            }
        }
    }
}

impl Handler<Refresh> for Discovery {
    type Result = Reply;

    fn handle(&mut self, _: Refresh, ctx: &mut Self::Context) -> Reply {
        let (tx, rx) = oneshot::channel();
        self.refresh(ctx, Some(tx), false);
        wait(rx)
    }
}
