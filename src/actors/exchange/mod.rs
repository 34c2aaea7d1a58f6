//! Exchanges a client's token for a downstream token (RFC 8693), per request, with a
//! cache in front, and refreshes a grant's provider tokens once for all who need
//! them. Two halves:
//!
//! - The cache ([`Exchanger::cached`]): hot and concurrent, a moka cache shared by
//!   every worker and read directly — a hit never queues in a mailbox.
//! - The [`ExchangeActor`]: a miss becomes its message. It owns the misses in flight
//!   (waiters per key), so identical concurrent misses are one upstream call, and
//!   spawns that call on its own context: its mailbox only does bookkeeping and never
//!   waits on the network. On a shared store the call first coordinates with the
//!   other replicas (`replicas`, through `store::ExchangeLock`). A miss whose every
//!   caller went away is called off (its replicas' lock released at once). The
//!   provider refreshes of a grant's tokens are its messages too (`refresh`): one
//!   flight per grant, run to its end even when its callers go away, and the
//!   replicas' `store::RefreshLock`.
//!
//! Entries are keyed by the subject token's hash, audience, scopes and token type, so
//! one subject's token is never served to another, and live until the downstream
//! token's expiry minus the skew; a token with less than the skew left is not cached.

mod actor;
mod cache;
mod fetch;
mod handle;
mod messages;
mod refresh;
mod replicas;

use crate::clock::UnixSeconds;
use crate::config::Strategy;
use crate::domain::invalidation::Owner;
use crate::domain::scope::Scopes;
use crate::upstream::token::ClientCredentials;

pub use self::actor::ExchangeActor;
pub use self::handle::{Exchanger, Exchanges};
pub use self::messages::{Abandon, Fetch, Refresh, Waiting};
pub use self::refresh::{RefreshError, RefreshOnce, Refreshes};
pub use self::replicas::{REFUSAL_WINDOW, SHARED_WINDOW};
pub use crate::store::{Claim, ExchangeLock, Lease, Shared};

#[cfg(test)]
pub(crate) use self::refresh::tests as refresh_tests;

/// A downstream token.
#[derive(Clone)]
pub struct Exchanged {
    pub access_token: String,
    pub issued_token_type: String,
    pub expires_at: UnixSeconds,
    pub scope: Scopes,
    /// The provider's new refresh token when the `refresh` strategy rotated it: the
    /// grant must keep it, or its next refresh fails.
    pub rotated_refresh_token: Option<String>,
    /// On whose behalf: what invalidations match.
    pub holder: Holder,
}

/// Whose subject token a downstream token was exchanged for.
#[derive(Debug, Clone, Default)]
pub struct Holder {
    pub subject: String,
    pub client_id: Option<String>,
    pub grant_id: Option<String>,
}

impl Holder {
    fn owner(&self) -> Owner<'_> {
        Owner {
            subject: &self.subject,
            client_id: self.client_id.as_deref(),
            grant_id: self.grant_id.as_deref(),
        }
    }
}

impl std::fmt::Debug for Exchanged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Exchanged(expires_at {}, scope `{}`)",
            self.expires_at, self.scope
        )
    }
}

/// What the provider is asked, with what.
pub struct ExchangeRequest {
    /// `domain::exchange::cache_key`.
    pub key: [u8; 32],
    pub strategy: Strategy,
    pub upstream_audience: String,
    pub scopes: Scopes,
    /// The subject as the provider knows it: the client's token if the provider
    /// issued it, else the grant's upstream access token.
    pub subject_token: String,
    /// The actor (RFC 8693 §4.1 `act`) as the provider knows it (`rfc8693` only).
    pub actor_token: Option<String>,
    /// The grant's upstream refresh token (the `refresh` strategy needs it).
    pub refresh_token: Option<String>,
    pub credentials: ClientCredentials,
    pub holder: Holder,
}

/// Why no downstream token could be had. Never answered with the client's token.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ExchangeError {
    /// The provider refused (its RFC 6749 / 8693 error code and description).
    #[error("the provider refused the exchange: {error}{}", description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Refused {
        error: String,
        description: Option<String>,
    },
    /// The provider could not be used.
    #[error("the provider is unavailable: {0}")]
    Unavailable(String),
    /// The strategy cannot run for this subject (e.g. `refresh` without a grant).
    #[error("{0}")]
    NotPossible(String),
}

/// What a miss's waiters are answered.
pub type Answer = Result<std::sync::Arc<Exchanged>, ExchangeError>;
