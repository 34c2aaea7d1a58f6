//! The exchange actor's messages: a cache miss, a miss's caller going away, and a
//! grant's provider refresh.

use actix::Message;
use tokio::sync::oneshot;

use super::refresh::{Outcome, Provider};
use super::{Answer, ExchangeRequest};

/// Sent by [`Exchanger::exchange`](super::Exchanger::exchange) on a cache miss.
/// Reply: the token, if one landed since the caller looked; else the answer to wait
/// for, shared with every identical miss in flight (one provider call for all).
pub struct Fetch {
    pub request: ExchangeRequest,
    /// The first caller's span: the provider call is part of its trace.
    pub span: tracing::Span,
}

impl Message for Fetch {
    type Result = Waiting;
}

/// The reply to [`Fetch`].
pub enum Waiting {
    /// Answered at once (from the cache).
    Ready(Answer),
    /// The provider call's answer, when it lands.
    Pending(oneshot::Receiver<Answer>),
}

/// Sent by an [`Exchanger::exchange`](super::Exchanger::exchange) whose caller went
/// away before its answer came. When nobody waits for the miss under `key` any more,
/// its call is stopped (and any replicas' lock it held released at once).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Abandon {
    pub key: [u8; 32],
}

/// Sent by [`RefreshOnce::refreshed`](super::RefreshOnce::refreshed) for a grant whose
/// provider tokens are due. Reply: the outcome to wait for, of the flight already
/// under way for `grant_id` or of a new one that calls `provider`. A flight runs to
/// its end even when every caller went away.
pub struct Refresh {
    pub grant_id: String,
    pub provider: Provider,
    /// The first caller's span: the provider call is part of its trace.
    pub span: tracing::Span,
}

impl Message for Refresh {
    type Result = oneshot::Receiver<Outcome>;
}
