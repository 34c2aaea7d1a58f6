//! The periodic clean-up: expired sessions and codes, and dead grants.

use std::sync::Arc;
use std::time::Duration;

use super::SweepCounts;
use crate::clock::UnixSeconds;
use crate::store::{LoginState, Store};
use crate::telemetry::metrics::Metrics;

/// Drops expired login state and reports what went.
pub(super) async fn sweep(
    state: Arc<dyn LoginState>,
    metrics: Option<Metrics>,
    now: UnixSeconds,
) -> SweepCounts {
    let swept = match state.sweep_login_state(now).await {
        Ok(swept) => swept,
        Err(error) => {
            tracing::warn!(%error, "login state clean-up failed");
            return SweepCounts::default();
        }
    };
    let counts = SweepCounts {
        sessions: swept.sessions,
        codes: swept.codes,
    };
    if let Some(metrics) = &metrics {
        metrics.login_state_expired("session", counts.sessions);
        metrics.login_state_expired("code", counts.codes);
    }
    counts
}

/// [`sweep`] on the timer: what went is logged.
pub(super) async fn sweep_logged(
    state: Arc<dyn LoginState>,
    metrics: Option<Metrics>,
    now: UnixSeconds,
) {
    let counts = sweep(state, metrics, now).await;
    if counts != SweepCounts::default() {
        tracing::debug!(
            sessions = counts.sessions,
            codes = counts.codes,
            "expired login state dropped"
        );
    }
}

/// Drops revoked grants a day after their revocation, and grants without a refresh
/// token idle for longer than `idle` (the refresh-token lifetime).
pub(super) async fn sweep_grants(
    store: Arc<dyn Store>,
    idle: Duration,
    metrics: Option<Metrics>,
    now: UnixSeconds,
) {
    // Revoked grants are kept a day so late presentations of their tokens are still
    // recognised as revoked.
    match store
        .sweep_grants(
            now,
            now.saturating_sub(86_400),
            now.saturating_sub(idle.as_secs()),
        )
        .await
    {
        Ok(dropped) => {
            if let Some(metrics) = metrics {
                metrics.login_state_expired("grant", dropped);
            }
        }
        Err(error) => tracing::warn!(%error, "grant clean-up failed"),
    }
}
