//! The replicas' exchange lock: identical exchange misses on replicas that share a
//! store become one provider call (the exchange actor's `replicas` decides how it is
//! used; Redis implements it in `redis::exchange_lock`). Here because it is the
//! store's contract, like `LoginState` and `RateLimits`: the backends implement it
//! without knowing the actor.

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::StoreError;

/// What one replica leaves the others under an exchange's key. Holds no holder (each
/// replica knows it from its own request, the key being the subject's) and no
/// rotated refresh token (the replica that called stores it in the grant).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Shared {
    /// The provider's downstream token.
    Token {
        access_token: String,
        issued_token_type: String,
        expires_at: u64,
        scope: String,
    },
    /// The provider refused (RFC 6749 §5.2 / RFC 8693 §2.2.2 error and description).
    Refused {
        error: String,
        description: Option<String>,
    },
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Token { expires_at, .. } => write!(f, "Token(expires_at {expires_at})"),
            Self::Refused { error, .. } => write!(f, "Refused({error})"),
        }
    }
}

/// A replica's hold on one key's lock: `owner` is what it wrote, so it releases the
/// lock only while it is still its own.
#[derive(Debug)]
pub struct Lease {
    pub key: [u8; 32],
    pub owner: String,
}

/// The answer to one [`ExchangeLock::claim`].
#[derive(Debug)]
pub enum Claim {
    /// Another replica's published outcome.
    Settled(Shared),
    /// The lock is this replica's: call the provider, then [`ExchangeLock::settle`].
    Won(Lease),
    /// Another replica holds the lock and has published nothing yet.
    Held,
}

/// The replicas' shared lock and outcomes (Redis: `store::redis::exchange_lock`).
#[async_trait]
pub trait ExchangeLock: Send + Sync + 'static {
    /// In one atomic step: the outcome published under `key`, else the lock on it
    /// for `ttl`, else [`Claim::Held`].
    async fn claim(&self, key: &[u8; 32], ttl: Duration) -> Result<Claim, StoreError>;

    /// Publishes `outcome` for its duration (nothing when `None`), then releases the
    /// lock if `lease` still holds it.
    async fn settle(
        &self,
        lease: Lease,
        outcome: Option<(Shared, Duration)>,
    ) -> Result<(), StoreError>;
}
