//! The sessions actor: authorization sessions (default 10 min) and proxy codes
//! (default 60 s, one-time). Both are bounded in number — beyond the bound new
//! sessions get 503, live ones are never evicted — stored by the SHA-256 of their
//! 256-bit random identifiers, and swept periodically.

mod messages;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::time::Duration;

use actix::prelude::*;
use rand::RngCore;
use sha2::{Digest, Sha256};

pub use messages::{
    ApproveSession, DenySession, MintProxyCode, ReadSession, RedeemProxyCode, StartSession,
    SweepCounts, SweepSessions, TakeSession,
};

use crate::clock::{Clock, UnixSeconds};
use crate::config::constant_time_eq;
use crate::domain::authorize::Authorization;
use crate::domain::pkce;

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

/// What the consent page needs to continue a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionTicket {
    pub id: String,
    pub csrf: String,
    pub expires_at: UnixSeconds,
}

/// The broker's own side of the upstream login: PKCE verifier and nonce towards the
/// provider, and the session id used as upstream `state`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamLeg {
    pub state: String,
    pub verifier: String,
    pub nonce: String,
}

/// What a proxy code stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeGrant {
    pub grant_id: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub scopes: crate::domain::scope::Scopes,
    pub resource: Option<String>,
    pub subject: String,
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
    #[error("{0}")]
    Mismatch(&'static str),
    #[error("the sessions actor has stopped")]
    Stopped,
}

struct Session {
    request: Authorization,
    csrf: String,
    expires_at: UnixSeconds,
    leg: Option<UpstreamLeg>,
}

struct Code {
    grant: CodeGrant,
    expires_at: UnixSeconds,
    redeemed: bool,
}

pub struct Sessions {
    limits: SessionLimits,
    clock: Clock,
    sessions: HashMap<[u8; 32], Session>,
    codes: HashMap<[u8; 32], Code>,
    metrics: Option<crate::telemetry::metrics::Metrics>,
    /// Grants are swept on the same timer: (store, how long an idle grant lives).
    grants: Option<(std::sync::Arc<dyn crate::store::Store>, Duration)>,
}

fn random() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, bytes)
}

fn key(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

impl Sessions {
    pub fn new(limits: SessionLimits, clock: Clock) -> Self {
        Self {
            limits,
            clock,
            sessions: HashMap::new(),
            codes: HashMap::new(),
            metrics: None,
            grants: None,
        }
    }

    /// Also drops dead grants on each run: revoked ones, and ones without a refresh
    /// token older than `idle` (the refresh-token lifetime).
    pub fn with_grant_sweep(
        mut self,
        store: std::sync::Arc<dyn crate::store::Store>,
        idle: Duration,
    ) -> Self {
        self.grants = Some((store, idle));
        self
    }

    /// Reports clean-up work to `metrics`.
    pub fn with_metrics(mut self, metrics: crate::telemetry::metrics::Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    fn live_session(&mut self, id: &str) -> Result<&mut Session, SessionError> {
        let now = self.clock.unix();
        match self.sessions.get_mut(&key(id)) {
            Some(session) if now < session.expires_at => Ok(session),
            _ => Err(SessionError::UnknownSession),
        }
    }

    fn check_csrf(session: &Session, csrf: &str) -> Result<(), SessionError> {
        if constant_time_eq(session.csrf.as_bytes(), csrf.as_bytes()) {
            Ok(())
        } else {
            Err(SessionError::Csrf)
        }
    }

    fn sweep(&mut self) -> SweepCounts {
        let now = self.clock.unix();
        let (sessions, codes) = (self.sessions.len(), self.codes.len());
        self.sessions.retain(|_, s| now < s.expires_at);
        // Redeemed codes are kept until expiry so a replay is recognised as one.
        self.codes.retain(|_, c| now < c.expires_at);
        let counts = SweepCounts {
            sessions: (sessions - self.sessions.len()) as u64,
            codes: (codes - self.codes.len()) as u64,
        };
        if let Some(metrics) = &self.metrics {
            metrics.login_state_expired("session", counts.sessions);
            metrics.login_state_expired("code", counts.codes);
        }
        counts
    }
}

impl Actor for Sessions {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(
            self.limits.sweep_interval.max(Duration::from_secs(1)),
            |actor, _| {
                let counts = actor.sweep();
                if counts != SweepCounts::default() {
                    tracing::debug!(
                        sessions = counts.sessions,
                        codes = counts.codes,
                        "expired login state dropped"
                    );
                }
                if let Some((store, idle)) = actor.grants.clone() {
                    let now = actor.clock.unix();
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
    type Result = Result<SessionTicket, SessionError>;

    fn handle(&mut self, message: StartSession, _: &mut Self::Context) -> Self::Result {
        if self.sessions.len() >= self.limits.max_sessions {
            self.sweep();
            if self.sessions.len() >= self.limits.max_sessions {
                return Err(SessionError::Full);
            }
        }
        let (id, csrf) = (random(), random());
        let expires_at = self.clock.unix() + self.limits.session_ttl.as_secs();
        self.sessions.insert(
            key(&id),
            Session {
                request: message.request,
                csrf: csrf.clone(),
                expires_at,
                leg: None,
            },
        );
        Ok(SessionTicket {
            id,
            csrf,
            expires_at,
        })
    }
}

impl Handler<ReadSession> for Sessions {
    type Result = Result<Authorization, SessionError>;

    fn handle(&mut self, message: ReadSession, _: &mut Self::Context) -> Self::Result {
        Ok(self.live_session(&message.id)?.request.clone())
    }
}

impl Handler<ApproveSession> for Sessions {
    type Result = Result<UpstreamLeg, SessionError>;

    fn handle(&mut self, message: ApproveSession, _: &mut Self::Context) -> Self::Result {
        let session = self.live_session(&message.id)?;
        Self::check_csrf(session, &message.csrf)?;
        // A second click (or a replayed form) gets the same leg, not a new one.
        let leg = session.leg.get_or_insert_with(|| UpstreamLeg {
            state: message.id.clone(),
            verifier: random(),
            nonce: random(),
        });
        Ok(leg.clone())
    }
}

impl Handler<DenySession> for Sessions {
    type Result = Result<Authorization, SessionError>;

    fn handle(&mut self, message: DenySession, _: &mut Self::Context) -> Self::Result {
        Self::check_csrf(self.live_session(&message.id)?, &message.csrf)?;
        let session = self
            .sessions
            .remove(&key(&message.id))
            .ok_or(SessionError::UnknownSession)?;
        Ok(session.request)
    }
}

impl Handler<TakeSession> for Sessions {
    type Result = Result<(Authorization, UpstreamLeg), SessionError>;

    fn handle(&mut self, message: TakeSession, _: &mut Self::Context) -> Self::Result {
        Self::check_csrf(self.live_session(&message.state)?, &message.csrf)?;
        let session = self
            .sessions
            .remove(&key(&message.state))
            .ok_or(SessionError::UnknownSession)?;
        let leg = session.leg.ok_or(SessionError::NotApproved)?;
        Ok((session.request, leg))
    }
}

impl Handler<MintProxyCode> for Sessions {
    type Result = Result<String, SessionError>;

    fn handle(&mut self, message: MintProxyCode, _: &mut Self::Context) -> Self::Result {
        if self.codes.len() >= self.limits.max_codes {
            self.sweep();
            if self.codes.len() >= self.limits.max_codes {
                return Err(SessionError::Full);
            }
        }
        let code = random();
        let expires_at = self.clock.unix() + self.limits.code_ttl.as_secs();
        self.codes.insert(
            key(&code),
            Code {
                grant: message.grant,
                expires_at,
                redeemed: false,
            },
        );
        Ok(code)
    }
}

impl Handler<RedeemProxyCode> for Sessions {
    type Result = Result<CodeGrant, SessionError>;

    fn handle(&mut self, message: RedeemProxyCode, _: &mut Self::Context) -> Self::Result {
        let now = self.clock.unix();
        let code = self
            .codes
            .get_mut(&key(&message.code))
            .ok_or(SessionError::InvalidCode)?;
        if now >= code.expires_at {
            return Err(SessionError::InvalidCode);
        }
        if code.redeemed {
            return Err(SessionError::Replayed {
                grant_id: code.grant.grant_id.clone(),
            });
        }
        // Every binding is checked before the code is spent, so a wrong guess by an
        // attacker does not burn the legitimate client's code.
        if code.grant.client_id != message.client_id {
            return Err(SessionError::Mismatch(
                "the code was issued to another client",
            ));
        }
        if code.grant.redirect_uri != message.redirect_uri {
            return Err(SessionError::Mismatch(
                "redirect_uri differs from the authorization request",
            ));
        }
        pkce::verify(&message.verifier, &code.grant.code_challenge).map_err(|_| {
            SessionError::Mismatch("code_verifier does not match the code_challenge")
        })?;
        code.redeemed = true;
        Ok(code.grant.clone())
    }
}

impl Handler<SweepSessions> for Sessions {
    type Result = MessageResult<SweepSessions>;

    fn handle(&mut self, _: SweepSessions, _: &mut Self::Context) -> Self::Result {
        MessageResult(self.sweep())
    }
}
