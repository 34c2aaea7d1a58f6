//! Opaque upstream tokens, verified by RFC 7662 introspection at the provider with
//! the broker's client credentials. Answers are cached for the configured TTL but
//! never past the token's `exp`; concurrent lookups of one token share one call.

use std::sync::Arc;
use std::time::Duration;

use crate::domain::invalidation::Invalidation;
use moka::future::Cache;
use serde::Deserialize;
use serde_json::Value;

use super::principal::{CredentialKind, Principal};
use super::rejection::Rejection;
use crate::clock::Clock;
use crate::domain::scope::Scopes;
use crate::telemetry::cache_metrics::CacheCounters;
use crate::telemetry::upstream::Operation;
use crate::upstream::http::UpstreamHttp;
use crate::upstream::snapshot::SnapshotSource;
use crate::upstream::token::ClientCredentials;

/// What the provider said about a token.
#[derive(Debug, Clone)]
pub enum Introspected {
    Active {
        principal: Principal,
        audiences: Vec<String>,
        expires_at: Option<u64>,
    },
    Inactive,
}

#[derive(Deserialize)]
struct Response {
    active: bool,
    sub: Option<String>,
    scope: Option<String>,
    client_id: Option<String>,
    aud: Option<Value>,
    exp: Option<u64>,
    iss: Option<String>,
}

/// A cached answer and, by the broker's clock, until when it may be reused.
struct Cached {
    answer: Arc<Introspected>,
    valid_until: u64,
}

/// Memory is bounded by real time; reuse is decided by the broker's clock.
struct UntilExpiry {
    clock: Clock,
}

impl moka::Expiry<[u8; 32], Arc<Cached>> for UntilExpiry {
    fn expire_after_create(
        &self,
        _: &[u8; 32],
        value: &Arc<Cached>,
        _: std::time::Instant,
    ) -> Option<Duration> {
        Some(Duration::from_secs(
            value.valid_until.saturating_sub(self.clock.unix()),
        ))
    }
}

#[derive(Clone)]
pub struct Introspector {
    http: UpstreamHttp,
    discovery: Arc<dyn SnapshotSource>,
    client: ClientCredentials,
    issuer: String,
    ttl: u64,
    clock: Clock,
    cache: Cache<[u8; 32], Arc<Cached>>,
    counters: CacheCounters,
}

impl Introspector {
    pub fn new(
        http: UpstreamHttp,
        discovery: impl SnapshotSource,
        client: ClientCredentials,
        issuer: String,
        ttl: Duration,
        capacity: u64,
        clock: Clock,
    ) -> Self {
        let cache = Cache::builder()
            .max_capacity(capacity)
            .expire_after(UntilExpiry {
                clock: clock.clone(),
            })
            .support_invalidation_closures()
            .build();
        Self {
            http,
            discovery: Arc::new(discovery),
            client,
            issuer,
            ttl: ttl.as_secs(),
            clock,
            cache,
            counters: CacheCounters::default(),
        }
    }

    /// Counts the answer cache's hits and misses.
    pub fn counting(mut self, counters: CacheCounters) -> Self {
        self.counters = counters;
        self
    }

    /// The provider's verdict on `token`, from the cache when possible (for the TTL,
    /// never past the token's `exp`). Concurrent lookups of one token share one call.
    pub async fn introspect(&self, token: &str) -> Result<Arc<Introspected>, Rejection> {
        let key = crate::domain::digest::sha256(token.as_bytes());
        if let Some(cached) = self.cache.get(&key).await {
            if self.clock.unix() < cached.valid_until {
                self.counters.lookup(true);
                return Ok(cached.answer.clone());
            }
            self.cache.invalidate(&key).await;
        }
        self.counters.lookup(false);
        let cached = self
            .cache
            .try_get_with(key, async {
                let answer = self.ask(token).await?;
                let now = self.clock.unix();
                let valid_until = match answer.as_ref() {
                    Introspected::Active {
                        expires_at: Some(exp),
                        ..
                    } => (now + self.ttl).min(*exp),
                    _ => now + self.ttl,
                };
                Ok::<_, Rejection>(Arc::new(Cached {
                    answer,
                    valid_until,
                }))
            })
            .await
            .map_err(|rejection: Arc<Rejection>| *rejection)?;
        Ok(cached.answer.clone())
    }

    /// Forgets the answers `what` covers: those tokens are asked about again.
    pub fn invalidate(&self, what: &Invalidation) {
        if let Invalidation::All(_) = what {
            return self.cache.invalidate_all();
        }
        let what = what.clone();
        let registered = self.cache.invalidate_entries_if(move |_, cached| {
            matches!(cached.answer.as_ref(), Introspected::Active { principal, .. } if what.covers(principal.owner()))
        });
        if registered.is_err() {
            self.cache.invalidate_all();
        }
    }

    async fn ask(&self, token: &str) -> Result<Arc<Introspected>, Rejection> {
        let snapshot = self
            .discovery
            .current()
            .await
            .map_err(|_| Rejection::Unavailable)?;
        let Some(endpoint) = snapshot.info.introspection_endpoint.clone() else {
            // The provider cannot introspect: an opaque token cannot be verified.
            return Err(Rejection::Malformed);
        };
        let answer: Response = self
            .client
            .post(
                &self.http,
                Operation::Introspection,
                &endpoint,
                &[("token", token), ("token_type_hint", "access_token")],
            )
            .await
            .map_err(|error| {
                tracing::warn!(%error, "introspection failed");
                Rejection::Unavailable
            })?;
        if !answer.active {
            return Ok(Arc::new(Introspected::Inactive));
        }
        if answer.iss.as_deref().is_some_and(|iss| iss != self.issuer) {
            return Err(Rejection::WrongIssuer);
        }
        let Some(subject) = answer.sub else {
            return Err(Rejection::MissingClaims);
        };
        let audiences = match answer.aud {
            Some(Value::String(one)) => vec![one],
            Some(Value::Array(many)) => many
                .into_iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect(),
            _ => Vec::new(),
        };
        Ok(Arc::new(Introspected::Active {
            principal: Principal {
                subject,
                scopes: Scopes::parse(answer.scope.as_deref().unwrap_or("")).unwrap_or_default(),
                client_id: answer.client_id,
                kind: CredentialKind::Introspected,
                expires_at: answer.exp,
                grant_id: None,
                tools: None,
                identity: None,
            },
            audiences,
            expires_at: answer.exp,
        }))
    }
}
