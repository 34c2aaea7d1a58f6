//! The sessions actor: authorization sessions (default 10 min) and proxy codes
//! (default 60 s, one-time). Both are bounded in number — beyond the bound new
//! sessions get 503, live ones are never evicted — stored by the SHA-256 of their
//! 256-bit random identifiers, and swept periodically.
//!
//! The records live in a [`LoginState`]: process memory by default, Redis when
//! replicas share a store (`with_login_state`), so a login may move between replicas
//! and a code redeemed on one is spent on all. The actor holds no state of its own:
//! it makes the identifiers, reads the clock and checks a code's bindings; each
//! step that must happen once is one atomic call on the login state.
//!
//! Callers hold a [`SessionsHandle`]: one async method per step, the actor's
//! mailbox failing (it stopped) mapped once to [`SessionError::Stopped`].
//! `handlers.rs` holds the steps, `sweep.rs` the periodic clean-up.

mod handle;
mod handlers;
mod messages;
mod sweep;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

pub use crate::store::{CodeGrant, Remember, UpstreamLeg};
pub use handle::SessionsHandle;
pub use messages::{
    ApproveSession, DenySession, MintProxyCode, PutBackCode, ReadSession, RedeemProxyCode,
    RedeemedCode, StartSession, SweepCounts, SweepSessions, TakeSession,
};

use crate::clock::{Clock, UnixSeconds};
#[cfg(test)]
use crate::domain::authorize::Authorization;
use crate::redact::Redacted;
use crate::store::{LoginState, MemoryLoginState, Store};

/// Lifetimes and bounds.
#[derive(Debug, Clone, Copy)]
pub struct SessionLimits {
    pub session_ttl: Duration,
    pub code_ttl: Duration,
    pub max_sessions: usize,
    pub max_codes: usize,
    pub sweep_interval: Duration,
}

impl Default for SessionLimits {
    fn default() -> Self {
        Self {
            session_ttl: Duration::from_secs(600),
            code_ttl: Duration::from_secs(60),
            max_sessions: 100_000,
            max_codes: 100_000,
            sweep_interval: Duration::from_secs(30),
        }
    }
}

/// What the consent page needs to continue a session. `Debug` hides the CSRF token.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionTicket {
    pub id: String,
    pub csrf: String,
    pub expires_at: UnixSeconds,
}

impl std::fmt::Debug for SessionTicket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionTicket")
            .field("id", &self.id)
            .field("csrf", &Redacted)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Why a session or code step failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error("too many logins in progress; retry shortly")]
    Full,
    #[error("unknown or expired login session")]
    UnknownSession,
    #[error("the form is stale or forged (CSRF token mismatch)")]
    Csrf,
    #[error("this login session was not approved")]
    NotApproved,
    #[error("unknown, expired or already used authorization code")]
    InvalidCode,
    /// A code redeemed twice: the caller must revoke what the grant issued
    /// (RFC 6749 §4.1.2).
    #[error("authorization code already used")]
    Replayed { grant_id: String },
    /// The client, redirect URI or PKCE verifier is not what the code was minted
    /// for (RFC 6749 §4.1.3, RFC 7636 §4.6): refused, the code left as it was —
    /// unspent, or spent with its grant untouched.
    #[error("{0}")]
    Mismatch(&'static str),
    /// The actor has stopped, or its login state (a shared store) cannot be reached:
    /// answered 503, nothing changed.
    #[error("the sessions actor has stopped or its store is unavailable")]
    Stopped,
}

pub struct Sessions {
    limits: SessionLimits,
    clock: Clock,
    state: Arc<dyn LoginState>,
    metrics: Option<crate::telemetry::metrics::Metrics>,
    /// Grants are swept on the same timer: (store, how long an idle grant lives).
    grants: Option<(Arc<dyn Store>, Duration)>,
}

impl Sessions {
    /// Keeps sessions and codes in this process's memory.
    pub fn new(limits: SessionLimits, clock: Clock) -> Self {
        Self {
            limits,
            clock,
            state: Arc::new(MemoryLoginState::new()),
            metrics: None,
            grants: None,
        }
    }

    /// Keeps them in `state` instead (Redis, shared by replicas).
    pub fn with_login_state(mut self, state: Arc<dyn LoginState>) -> Self {
        self.state = state;
        self
    }

    /// Also drops dead grants on each run: revoked ones, and ones without a refresh
    /// token older than `idle` (the refresh-token lifetime).
    pub fn with_grant_sweep(mut self, store: Arc<dyn Store>, idle: Duration) -> Self {
        self.grants = Some((store, idle));
        self
    }

    /// Reports clean-up work to `metrics`.
    pub fn with_metrics(mut self, metrics: crate::telemetry::metrics::Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }
}

impl Actor for Sessions {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(
            self.limits.sweep_interval.max(Duration::from_secs(1)),
            |actor, _| {
                let now = actor.clock.unix();
                let (state, metrics) = (actor.state.clone(), actor.metrics.clone());
                actix::spawn(sweep::sweep_logged(state, metrics.clone(), now));
                if let Some((store, idle)) = actor.grants.clone() {
                    actix::spawn(sweep::sweep_grants(store, idle, metrics, now));
                }
            },
        );
    }
}
