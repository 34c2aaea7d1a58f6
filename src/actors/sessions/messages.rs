//! Messages to the sessions actor, in the order a login sends them.

use actix::Message;

use super::{CodeGrant, Remember, SessionError, SessionTicket, UpstreamLeg};
use crate::domain::authorize::Authorization;
use crate::store::Redeemer;

/// Sent by `GET /oauth/authorize` once the request is valid: remember it while the
/// user decides. Replies with the session id and its CSRF token (for the consent page).
#[derive(Message)]
#[rtype(result = "Result<SessionTicket, SessionError>")]
pub struct StartSession {
    pub request: Authorization,
}

/// Sent by the consent page to render a pending request (no state change).
#[derive(Message)]
#[rtype(result = "Result<Authorization, SessionError>")]
pub struct ReadSession {
    pub id: String,
}

/// Sent by the consent form's approve button (or by authorize, when a remembered
/// approval skips the page): checks the CSRF token and returns what the upstream leg
/// needs (the session id doubles as the upstream `state`).
#[derive(Message)]
#[rtype(result = "Result<UpstreamLeg, SessionError>")]
pub struct ApproveSession {
    pub id: String,
    pub csrf: String,
    /// What the callback does about remembering this approval.
    pub remember: Remember,
}

/// Sent by the consent form's deny button: ends the session; the caller redirects
/// `access_denied` to the client.
#[derive(Message)]
#[rtype(result = "Result<Authorization, SessionError>")]
pub struct DenySession {
    pub id: String,
    pub csrf: String,
}

/// Sent by `GET /oauth/callback` with the upstream `state` and the CSRF token the
/// browser's login cookie carries: takes an approved session exactly once, and only
/// in the browser that started it (a wrong token leaves the session in place).
#[derive(Message)]
#[rtype(result = "Result<(Authorization, UpstreamLeg), SessionError>")]
pub struct TakeSession {
    pub state: String,
    pub csrf: String,
}

/// Sent by the callback after the grant is stored: a one-time proxy code for the client.
#[derive(Message)]
#[rtype(result = "Result<String, SessionError>")]
pub struct MintProxyCode {
    pub grant: CodeGrant,
}

/// Sent by `POST /oauth/token` (authorization_code): redeems a code once, bound to the
/// client, redirect URI and PKCE challenge it was minted for. A spent code presented
/// again answers `Replayed` (the caller revokes the grant) only when every binding
/// matches; otherwise `Mismatch`, and nothing changes.
#[derive(Message)]
#[rtype(result = "Result<RedeemedCode, SessionError>")]
pub struct RedeemProxyCode {
    pub code: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub verifier: String,
}

/// A code redeemed: what it stands for, and who spent it (to put it back with).
#[derive(Debug)]
pub struct RedeemedCode {
    pub grant: CodeGrant,
    pub by: Redeemer,
}

/// Sent by `POST /oauth/token` when the tokens for a redeemed code could not be
/// issued: the code is unspent again, so the client's next try is not a replay.
/// Replies whether the redemption was there to put back.
#[derive(Message)]
#[rtype(result = "Result<bool, SessionError>")]
pub struct PutBackCode {
    pub code: String,
    pub by: Redeemer,
}

/// Sent by the actor's timer (and tests): drops expired sessions and codes.
#[derive(Message)]
#[rtype(result = "SweepCounts")]
pub struct SweepSessions;

/// What a sweep dropped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepCounts {
    pub sessions: u64,
    pub codes: u64,
}
