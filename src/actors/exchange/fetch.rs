//! One miss's way to a downstream token: the provider's token endpoint with the
//! audience's strategy (through the replicas' lock when a shared store links them).
//! Runs in a future the actor spawns, owning what it needs, so the actor's mailbox
//! never waits on it.

use std::sync::Arc;

use super::replicas::Replicas;
use super::{Answer, ExchangeError, ExchangeRequest, Exchanged};
use crate::actors::discovery::DiscoveryHandle;
use crate::clock::Clock;
use crate::config::Strategy;
use crate::domain::scope::Scopes;
use crate::telemetry::metrics::Metrics;
use crate::upstream::UpstreamError;
use crate::upstream::exchange as token;
use crate::upstream::http::UpstreamHttp;
use crate::upstream::token::TokenResponse;

/// What a provider call needs. Cheap to clone: one per flight.
#[derive(Clone)]
pub(super) struct Fetcher {
    pub(super) http: UpstreamHttp,
    pub(super) discovery: DiscoveryHandle,
    pub(super) clock: Clock,
    /// The cache's skew, in seconds.
    pub(super) skew: u64,
    /// The other replicas, when a shared store links them.
    pub(super) replicas: Option<Replicas>,
    pub(super) metrics: Option<Metrics>,
}

impl Fetcher {
    /// The provider's answer for `request`: asked here, or — on a shared store — by
    /// whichever replica takes the lock first.
    pub(super) async fn fetch(self, request: ExchangeRequest) -> Answer {
        match self.replicas.clone() {
            Some(replicas) => self.across_replicas(&replicas, request).await,
            None => self.fetch_upstream(request).await,
        }
    }

    /// Counts a miss answered by another caller's provider call: in this process
    /// (`local`) or on another replica (`replica`).
    pub(super) fn count_coalesced(&self, place: &str) {
        if let Some(metrics) = &self.metrics {
            metrics.exchange_coalesced(place);
        }
    }

    /// Counts a miss that could not use the replicas' lock.
    pub(super) fn count_lock_failure(&self) {
        if let Some(metrics) = &self.metrics {
            metrics.exchange_lock_failure();
        }
    }

    pub(super) async fn fetch_upstream(&self, request: ExchangeRequest) -> Answer {
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
