//! The sessions actor as its callers see it: one async method per step of a login.
//! The mailbox failing — the actor stopped — is mapped here, once, to
//! [`SessionError::Stopped`] (answered 503 by every caller), so no caller handles
//! `MailboxError` itself.

use actix::prelude::*;

use super::messages::{
    ApproveSession, DenySession, MintProxyCode, PutBackCode, ReadSession, RedeemProxyCode,
    RedeemedCode, StartSession, SweepCounts, SweepSessions, TakeSession,
};
use super::{CodeGrant, Remember, SessionError, SessionTicket, Sessions, UpstreamLeg};
use crate::domain::authorize::Authorization;
use crate::store::Redeemer;

/// A cheap, cloneable handle to the running sessions actor.
#[derive(Clone)]
pub struct SessionsHandle {
    addr: Addr<Sessions>,
}

impl SessionsHandle {
    /// Starts `sessions` (its sweep timer with it) and returns its handle. Must run
    /// inside an actix `System`.
    pub fn spawn(sessions: Sessions) -> Self {
        Self {
            addr: sessions.start(),
        }
    }

    /// A handle to an actor already started (tests start it where they need it).
    #[cfg(test)]
    pub(super) fn from_addr(addr: Addr<Sessions>) -> Self {
        Self { addr }
    }

    /// Sends `message`; a stopped actor is [`SessionError::Stopped`].
    async fn ask<M, T>(&self, message: M) -> Result<T, SessionError>
    where
        M: Message<Result = Result<T, SessionError>> + Send + 'static,
        T: Send + 'static,
        Sessions: Handler<M>,
    {
        self.addr.send(message).await.unwrap_or_else(|error| {
            tracing::error!(%error, "the sessions actor is gone");
            Err(SessionError::Stopped)
        })
    }

    /// A new session for a valid authorization request ([`StartSession`]).
    pub async fn start(&self, request: Authorization) -> Result<SessionTicket, SessionError> {
        self.ask(StartSession { request }).await
    }

    /// The pending request of session `id` ([`ReadSession`]).
    pub async fn read(&self, id: &str) -> Result<Authorization, SessionError> {
        self.ask(ReadSession { id: id.to_owned() }).await
    }

    /// Approves session `id` ([`ApproveSession`]): what the upstream leg needs.
    pub async fn approve(
        &self,
        id: &str,
        csrf: &str,
        remember: Remember,
    ) -> Result<UpstreamLeg, SessionError> {
        self.ask(ApproveSession {
            id: id.to_owned(),
            csrf: csrf.to_owned(),
            remember,
        })
        .await
    }

    /// Ends session `id` refused ([`DenySession`]): the request, to answer its client.
    pub async fn deny(&self, id: &str, csrf: &str) -> Result<Authorization, SessionError> {
        self.ask(DenySession {
            id: id.to_owned(),
            csrf: csrf.to_owned(),
        })
        .await
    }

    /// Takes the approved session named by the upstream `state`, once
    /// ([`TakeSession`]).
    pub async fn take(
        &self,
        state: &str,
        csrf: &str,
    ) -> Result<(Authorization, UpstreamLeg), SessionError> {
        self.ask(TakeSession {
            state: state.to_owned(),
            csrf: csrf.to_owned(),
        })
        .await
    }

    /// A one-time proxy code for a stored grant ([`MintProxyCode`]).
    pub async fn mint_code(&self, grant: CodeGrant) -> Result<String, SessionError> {
        self.ask(MintProxyCode { grant }).await
    }

    /// Redeems a proxy code once, bound to client, redirect URI and PKCE
    /// ([`RedeemProxyCode`]).
    pub async fn redeem_code(&self, redeem: RedeemProxyCode) -> Result<RedeemedCode, SessionError> {
        self.ask(redeem).await
    }

    /// Puts back a redemption whose tokens were not issued ([`PutBackCode`]).
    pub async fn put_back_code(&self, code: &str, by: Redeemer) -> Result<bool, SessionError> {
        self.ask(PutBackCode {
            code: code.to_owned(),
            by,
        })
        .await
    }

    /// Drops expired sessions and codes now ([`SweepSessions`]); nothing when the
    /// actor is gone.
    pub async fn sweep(&self) -> SweepCounts {
        self.addr.send(SweepSessions).await.unwrap_or_default()
    }
}
