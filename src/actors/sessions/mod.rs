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

mod messages;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use rand::RngCore;

pub use crate::store::{CodeGrant, Remember, UpstreamLeg};
pub use messages::{
    ApproveSession, DenySession, MintProxyCode, ReadSession, RedeemProxyCode, StartSession,
    SweepCounts, SweepSessions, TakeSession,
};

use crate::clock::{Clock, UnixSeconds};
use crate::domain::authorize::Authorization;
use crate::domain::pkce;
use crate::redact::Redacted;
use crate::store::{
    Admission, LoginSession, LoginState, MemoryLoginState, Redemption, SessionStep, Store,
    StoreError,
};

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

fn random() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, bytes)
}

/// A store failure, logged with its cause; the caller answers 503.
fn unavailable(error: StoreError) -> SessionError {
    tracing::warn!(%error, "login state unavailable");
    SessionError::Stopped
}

/// A refused step as the actor's error.
fn refused<T>(step: SessionStep<T>) -> Result<T, SessionError> {
    match step {
        SessionStep::Done(value) => Ok(value),
        SessionStep::Unknown => Err(SessionError::UnknownSession),
        SessionStep::Csrf => Err(SessionError::Csrf),
        SessionStep::NotApproved => Err(SessionError::NotApproved),
    }
}

/// Drops expired login state and reports what went.
async fn sweep(
    state: Arc<dyn LoginState>,
    metrics: Option<crate::telemetry::metrics::Metrics>,
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
                actix::spawn(async move {
                    let counts = sweep(state, metrics, now).await;
                    if counts != SweepCounts::default() {
                        tracing::debug!(
                            sessions = counts.sessions,
                            codes = counts.codes,
                            "expired login state dropped"
                        );
                    }
                });
                if let Some((store, idle)) = actor.grants.clone() {
                    let metrics = actor.metrics.clone();
                    actix::spawn(async move {
                        // Revoked grants are kept a day so late presentations of
                        // their tokens are still recognised as revoked.
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
                    });
                }
            },
        );
    }
}

impl Handler<StartSession> for Sessions {
    type Result = ResponseFuture<Result<SessionTicket, SessionError>>;

    fn handle(&mut self, message: StartSession, _: &mut Self::Context) -> Self::Result {
        let (state, now, limits) = (self.state.clone(), self.clock.unix(), self.limits);
        Box::pin(async move {
            let (id, csrf) = (random(), random());
            let expires_at = now + limits.session_ttl.as_secs();
            let session = LoginSession {
                request: message.request,
                csrf: csrf.clone(),
                expires_at,
                leg: None,
            };
            match state
                .put_session(&id, session, now, limits.max_sessions)
                .await
            {
                Ok(Admission::Stored) => Ok(SessionTicket {
                    id,
                    csrf,
                    expires_at,
                }),
                Ok(Admission::Full) => Err(SessionError::Full),
                Err(error) => Err(unavailable(error)),
            }
        })
    }
}

impl Handler<ReadSession> for Sessions {
    type Result = ResponseFuture<Result<Authorization, SessionError>>;

    fn handle(&mut self, message: ReadSession, _: &mut Self::Context) -> Self::Result {
        let (state, now) = (self.state.clone(), self.clock.unix());
        Box::pin(async move {
            match state.get_session(&message.id, now).await {
                Ok(Some(session)) => Ok(session.request),
                Ok(None) => Err(SessionError::UnknownSession),
                Err(error) => Err(unavailable(error)),
            }
        })
    }
}

impl Handler<ApproveSession> for Sessions {
    type Result = ResponseFuture<Result<UpstreamLeg, SessionError>>;

    fn handle(&mut self, message: ApproveSession, _: &mut Self::Context) -> Self::Result {
        let (state, now) = (self.state.clone(), self.clock.unix());
        // A second click (or a replayed form) gets the stored leg, not this one.
        let leg = UpstreamLeg {
            state: message.id.clone(),
            verifier: random(),
            nonce: random(),
            remember: message.remember,
        };
        Box::pin(async move {
            let step = state
                .approve_session(&message.id, &message.csrf, leg, now)
                .await
                .map_err(unavailable)?;
            refused(step)
        })
    }
}

impl Handler<DenySession> for Sessions {
    type Result = ResponseFuture<Result<Authorization, SessionError>>;

    fn handle(&mut self, message: DenySession, _: &mut Self::Context) -> Self::Result {
        let (state, now) = (self.state.clone(), self.clock.unix());
        Box::pin(async move {
            let step = state
                .deny_session(&message.id, &message.csrf, now)
                .await
                .map_err(unavailable)?;
            refused(step)
        })
    }
}

impl Handler<TakeSession> for Sessions {
    type Result = ResponseFuture<Result<(Authorization, UpstreamLeg), SessionError>>;

    fn handle(&mut self, message: TakeSession, _: &mut Self::Context) -> Self::Result {
        let (state, now) = (self.state.clone(), self.clock.unix());
        Box::pin(async move {
            let step = state
                .take_session(&message.state, &message.csrf, now)
                .await
                .map_err(unavailable)?;
            refused(step)
        })
    }
}

impl Handler<MintProxyCode> for Sessions {
    type Result = ResponseFuture<Result<String, SessionError>>;

    fn handle(&mut self, message: MintProxyCode, _: &mut Self::Context) -> Self::Result {
        let (state, now, limits) = (self.state.clone(), self.clock.unix(), self.limits);
        Box::pin(async move {
            let code = random();
            let expires_at = now + limits.code_ttl.as_secs();
            match state
                .put_code(&code, message.grant, expires_at, now, limits.max_codes)
                .await
            {
                Ok(Admission::Stored) => Ok(code),
                Ok(Admission::Full) => Err(SessionError::Full),
                Err(error) => Err(unavailable(error)),
            }
        })
    }
}

/// Checks a redemption against what the code was minted for.
fn check_bindings(grant: &CodeGrant, message: &RedeemProxyCode) -> Result<(), SessionError> {
    if grant.client_id != message.client_id {
        return Err(SessionError::Mismatch(
            "the code was issued to another client",
        ));
    }
    if grant.redirect_uri != message.redirect_uri {
        return Err(SessionError::Mismatch(
            "redirect_uri differs from the authorization request",
        ));
    }
    pkce::verify(&message.verifier, &grant.code_challenge)
        .map_err(|_| SessionError::Mismatch("code_verifier does not match the code_challenge"))
}

impl Handler<RedeemProxyCode> for Sessions {
    type Result = ResponseFuture<Result<CodeGrant, SessionError>>;

    fn handle(&mut self, message: RedeemProxyCode, _: &mut Self::Context) -> Self::Result {
        let (state, now) = (self.state.clone(), self.clock.unix());
        Box::pin(async move {
            let stored = state
                .find_code(&message.code, now)
                .await
                .map_err(unavailable)?
                .ok_or(SessionError::InvalidCode)?;
            // Every binding is checked first: before the code is spent, so a wrong
            // guess by an attacker does not burn the legitimate client's code, and
            // before a replay is acted on, so someone who merely saw a spent code
            // (another client, a wrong redirect URI or verifier) cannot end the
            // grant it produced. Redeemed codes keep their bindings until they
            // expire, and the bindings never change, so checking them on this read
            // is as good as inside the redemption, which alone decides who redeems
            // first.
            if let Err(mismatch) = check_bindings(&stored.grant, &message) {
                if stored.redeemed {
                    tracing::warn!(
                        client_id = %message.client_id,
                        "a spent authorization code presented without its binding: nothing revoked"
                    );
                }
                return Err(mismatch);
            }
            if stored.redeemed {
                return Err(SessionError::Replayed {
                    grant_id: stored.grant.grant_id,
                });
            }
            match state
                .redeem_code(&message.code, now)
                .await
                .map_err(unavailable)?
            {
                Redemption::Redeemed(grant) => Ok(grant),
                Redemption::Replayed { grant_id } => Err(SessionError::Replayed { grant_id }),
                Redemption::Invalid => Err(SessionError::InvalidCode),
            }
        })
    }
}

impl Handler<SweepSessions> for Sessions {
    type Result = ResponseFuture<SweepCounts>;

    fn handle(&mut self, _: SweepSessions, _: &mut Self::Context) -> Self::Result {
        Box::pin(sweep(
            self.state.clone(),
            self.metrics.clone(),
            self.clock.unix(),
        ))
    }
}
