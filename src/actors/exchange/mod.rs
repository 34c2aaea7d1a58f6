//! Exchanges a client's token for a downstream token (RFC 8693), per request, with a
//! cache in front. Hot and concurrent: this is a shared handle, not a mailbox — a
//! mailbox would put every exchange of every worker in one queue — and moka's
//! per-key initialisation makes concurrent identical misses one upstream call.
//!
//! Entries are keyed by the subject token's hash, audience, scopes and token type, so
//! one subject's token is never served to another, and live until the downstream
//! token's expiry minus the skew; a token with less than the skew left is not cached.
//! Replicas sharing a store also coalesce their misses with each other (`replicas`).

mod replicas;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use moka::future::Cache;

use crate::actors::discovery::DiscoveryHandle;
use crate::clock::{Clock, UnixSeconds};
use crate::config::Strategy;
use crate::domain::invalidation::{Invalidation, Owner};
use crate::domain::scope::Scopes;
use crate::telemetry::metrics::Metrics;
use crate::upstream::UpstreamError;
use crate::upstream::exchange as token;
use crate::upstream::http::UpstreamHttp;
use crate::upstream::token::{ClientCredentials, TokenResponse};

use self::replicas::Replicas;
pub use self::replicas::{Claim, ExchangeLock, Lease, SHARED_WINDOW, Shared};

/// A downstream token.
#[derive(Clone)]
pub struct Exchanged {
    pub access_token: String,
    pub issued_token_type: String,
    pub expires_at: UnixSeconds,
    pub scope: Scopes,
    /// The provider's new refresh token when the `refresh` strategy rotated it: the
    /// grant must keep it, or its next refresh fails.
    pub rotated_refresh_token: Option<String>,
    /// On whose behalf: what invalidations match.
    pub holder: Holder,
}

/// Whose subject token a downstream token was exchanged for.
#[derive(Debug, Clone, Default)]
pub struct Holder {
    pub subject: String,
    pub client_id: Option<String>,
    pub grant_id: Option<String>,
}

impl Holder {
    fn owner(&self) -> Owner<'_> {
        Owner {
            subject: &self.subject,
            client_id: self.client_id.as_deref(),
            grant_id: self.grant_id.as_deref(),
        }
    }
}

impl std::fmt::Debug for Exchanged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Exchanged(expires_at {}, scope `{}`)",
            self.expires_at, self.scope
        )
    }
}

/// What the provider is asked, with what.
pub struct ExchangeRequest {
    /// `domain::exchange::cache_key`.
    pub key: [u8; 32],
    pub strategy: Strategy,
    pub upstream_audience: String,
    pub scopes: Scopes,
    /// The subject as the provider knows it: the client's token if the provider
    /// issued it, else the grant's upstream access token.
    pub subject_token: String,
    /// The actor (RFC 8693 §4.1 `act`) as the provider knows it (`rfc8693` only).
    pub actor_token: Option<String>,
    /// The grant's upstream refresh token (the `refresh` strategy needs it).
    pub refresh_token: Option<String>,
    pub credentials: ClientCredentials,
    pub holder: Holder,
}

/// Why no downstream token could be had. Never answered with the client's token.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ExchangeError {
    /// The provider refused (its RFC 6749 / 8693 error code and description).
    #[error("the provider refused the exchange: {error}{}", description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Refused {
        error: String,
        description: Option<String>,
    },
    /// The provider could not be used.
    #[error("the provider is unavailable: {0}")]
    Unavailable(String),
    /// The strategy cannot run for this subject (e.g. `refresh` without a grant).
    #[error("{0}")]
    NotPossible(String),
}

/// Entries expire `skew` before the token does.
struct BeforeExpiry {
    clock: Clock,
    skew: u64,
}

impl moka::Expiry<[u8; 32], Arc<Exchanged>> for BeforeExpiry {
    fn expire_after_create(
        &self,
        _: &[u8; 32],
        value: &Arc<Exchanged>,
        _: Instant,
    ) -> Option<Duration> {
        let until = value.expires_at.saturating_sub(self.skew);
        Some(Duration::from_secs(until.saturating_sub(self.clock.unix())))
    }
}

#[derive(Clone)]
pub struct Exchanger {
    cache: Cache<[u8; 32], Arc<Exchanged>>,
    http: UpstreamHttp,
    discovery: DiscoveryHandle,
    clock: Clock,
    skew: u64,
    /// The other replicas, when a shared store links them.
    replicas: Option<Replicas>,
    metrics: Option<Metrics>,
}

impl Exchanger {
    pub fn new(
        http: UpstreamHttp,
        discovery: DiscoveryHandle,
        clock: Clock,
        capacity: u64,
        skew: Duration,
    ) -> Self {
        Self {
            cache: Cache::builder()
                .max_capacity(capacity)
                .expire_after(BeforeExpiry {
                    clock: clock.clone(),
                    skew: skew.as_secs(),
                })
                .support_invalidation_closures()
                .build(),
            http,
            discovery,
            clock,
            skew: skew.as_secs(),
            replicas: None,
            metrics: None,
        }
    }

    /// Coalesces misses with the other replicas through `lock`; a holder keeps it
    /// for `upstream_timeout` plus a margin.
    pub fn with_replicas(
        mut self,
        lock: Arc<dyn ExchangeLock>,
        upstream_timeout: Duration,
    ) -> Self {
        self.replicas = Some(Replicas::new(lock, upstream_timeout));
        self
    }

    /// Counts coalesced misses and lock failures.
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// A downstream token for `request`: cached, or from the provider (one call for
    /// any number of identical concurrent requests — on a shared store, across
    /// replicas too).
    pub async fn exchange(
        &self,
        request: ExchangeRequest,
    ) -> Result<Arc<Exchanged>, ExchangeError> {
        let key = request.key;
        if let Some(hit) = self.cached(&key).await {
            return Ok(hit);
        }
        let fetched_here = AtomicBool::new(false);
        let fetch = async {
            fetched_here.store(true, Ordering::Relaxed);
            match &self.replicas {
                Some(replicas) => self.across_replicas(replicas, request).await,
                None => self.fetch_upstream(request).await,
            }
        };
        let answer = self.cache.try_get_with(key, fetch).await;
        if !fetched_here.load(Ordering::Relaxed) {
            self.count_coalesced("local");
        }
        answer.map_err(|e| (*e).clone())
    }

    /// Counts a miss answered by another caller's provider call: in this process
    /// (`local`) or on another replica (`replica`).
    fn count_coalesced(&self, place: &str) {
        if let Some(metrics) = &self.metrics {
            metrics.exchange_coalesced(place);
        }
    }

    /// Counts a miss that could not use the replicas' lock.
    fn count_lock_failure(&self) {
        if let Some(metrics) = &self.metrics {
            metrics.exchange_lock_failure();
        }
    }

    /// The cached downstream token under `key`, while fresh: callers look here before
    /// gathering what a provider call needs (the grant's tokens), so a hit touches
    /// nothing but the cache.
    pub async fn cached(&self, key: &[u8; 32]) -> Option<Arc<Exchanged>> {
        let hit = self.cache.get(key).await?;
        // Moka's timer runs on real time; the broker's clock decides freshness, so a
        // hit past `expires_at - skew` by that clock is dropped and fetched again.
        if self.clock.unix() + self.skew < hit.expires_at {
            return Some(hit);
        }
        self.cache.invalidate(key).await;
        None
    }

    /// Forgets the exchanged tokens `what` covers.
    pub fn invalidate(&self, what: &Invalidation) {
        if let Invalidation::All(_) = what {
            return self.cache.invalidate_all();
        }
        let what = what.clone();
        let registered = self
            .cache
            .invalidate_entries_if(move |_, exchanged| what.covers(exchanged.holder.owner()));
        if registered.is_err() {
            self.cache.invalidate_all();
        }
    }

    async fn fetch_upstream(
        &self,
        request: ExchangeRequest,
    ) -> Result<Arc<Exchanged>, ExchangeError> {
        let snapshot = self
            .discovery
            .current()
            .await
            .map_err(|e| ExchangeError::Unavailable(e.to_string()))?;
        let endpoint = snapshot
            .info
            .token_endpoint
            .clone()
            .ok_or_else(|| ExchangeError::Unavailable("no token_endpoint".to_owned()))?;
        let scope = request.scopes.to_string();
        let answer = match request.strategy {
            Strategy::Rfc8693 => {
                token::token_exchange(
                    &self.http,
                    &endpoint,
                    &request.credentials,
                    &request.subject_token,
                    request.actor_token.as_deref(),
                    &request.upstream_audience,
                    &scope,
                )
                .await
            }
            Strategy::EntraObo => {
                let api = request.upstream_audience.trim_end_matches('/');
                let scopes: Vec<String> = if request.scopes.is_empty() {
                    vec![format!("{api}/.default")]
                } else {
                    request
                        .scopes
                        .iter()
                        .map(|s| format!("{api}/{s}"))
                        .collect()
                };
                token::on_behalf_of(
                    &self.http,
                    &endpoint,
                    &request.credentials,
                    &request.subject_token,
                    &scopes.join(" "),
                )
                .await
            }
            Strategy::Refresh => {
                let refresh_token = request.refresh_token.as_deref().ok_or_else(|| {
                    ExchangeError::NotPossible(
                        "the refresh strategy needs a token the broker issued (it holds the provider's refresh token)"
                            .to_owned(),
                    )
                })?;
                token::refresh_for_resource(
                    &self.http,
                    &endpoint,
                    &request.credentials,
                    refresh_token,
                    &request.upstream_audience,
                    &scope,
                )
                .await
            }
        };
        let answer = answer.map_err(|e| match e {
            UpstreamError::OAuth {
                error, description, ..
            } => ExchangeError::Refused { error, description },
            other => ExchangeError::Unavailable(other.to_string()),
        })?;
        Ok(Arc::new(self.downstream(answer, request)))
    }

    fn downstream(&self, answer: TokenResponse, request: ExchangeRequest) -> Exchanged {
        let asked = &request.scopes;
        let now = self.clock.unix();
        let api = format!("{}/", request.upstream_audience.trim_end_matches('/'));
        let scope = answer
            .scope
            .as_deref()
            .map(|text| {
                text.split_ascii_whitespace()
                    .map(|s| s.strip_prefix(api.as_str()).unwrap_or(s))
                    .filter(|s| *s != ".default")
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .and_then(|s| Scopes::parse(&s).ok())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| asked.clone());
        Exchanged {
            scope,
            issued_token_type: answer
                .issued_token_type
                .clone()
                .unwrap_or_else(|| token::ACCESS_TOKEN_TYPE.to_owned()),
            // Without `expires_in` the token is used once and not cached.
            expires_at: answer.expires_in.map_or(now, |s| now + s),
            access_token: answer.access_token,
            rotated_refresh_token: answer.refresh_token,
            holder: request.holder,
        }
    }
}
