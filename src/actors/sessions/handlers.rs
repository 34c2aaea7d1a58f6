//! The steps of a login, one handler per message. Each step that must happen once
//! (approve, deny, take, redeem) is one atomic call on the login state, so replicas
//! sharing it agree; what the actor decides is the order around it (a code's
//! bindings are checked before it is spent).

use actix::prelude::*;
use rand::Rng;

use super::messages::{
    ApproveSession, DenySession, MintProxyCode, PutBackCode, ReadSession, RedeemProxyCode,
    RedeemedCode, StartSession, SweepCounts, SweepSessions, TakeSession,
};
use super::{CodeGrant, SessionError, SessionTicket, Sessions, UpstreamLeg, sweep};
use crate::domain::authorize::Authorization;
use crate::domain::pkce;
use crate::store::{Admission, LoginSession, Redeemer, Redemption, SessionStep, StoreError};

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
    type Result = ResponseFuture<Result<RedeemedCode, SessionError>>;

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
            let by = Redeemer::random();
            match state
                .redeem_code(&message.code, by, now)
                .await
                .map_err(unavailable)?
            {
                Redemption::Redeemed(grant) => Ok(RedeemedCode { grant, by }),
                Redemption::Replayed { grant_id } => Err(SessionError::Replayed { grant_id }),
                Redemption::Invalid => Err(SessionError::InvalidCode),
            }
        })
    }
}

impl Handler<PutBackCode> for Sessions {
    type Result = ResponseFuture<Result<bool, SessionError>>;

    fn handle(&mut self, message: PutBackCode, _: &mut Self::Context) -> Self::Result {
        let state = self.state.clone();
        Box::pin(async move {
            state
                .unredeem_code(&message.code, message.by)
                .await
                .map_err(unavailable)
        })
    }
}

impl Handler<SweepSessions> for Sessions {
    type Result = ResponseFuture<SweepCounts>;

    fn handle(&mut self, _: SweepSessions, _: &mut Self::Context) -> Self::Result {
        Box::pin(sweep::sweep(
            self.state.clone(),
            self.metrics.clone(),
            self.clock.unix(),
        ))
    }
}
