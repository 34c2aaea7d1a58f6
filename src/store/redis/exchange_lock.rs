//! The replicas' exchange lock on Redis (the trait: `store::exchange_lock`; how replicas use it:
//! `actors::exchange::replicas`).
//!
//! ```text
//! <p>exchange-lock:<hex key>   the holder's random owner token, PX = its lock's life
//! <p>exchange:<hex key>        the outcome, sealed, PX = seconds (see SHARED_WINDOW)
//! ```
//!
//! Claiming is one script (published outcome, else `SET NX PX`), so no replica takes
//! the lock between another's publishing and releasing it; settling is one script
//! too (publish, then delete the lock only if its value is still the holder's owner
//! token: a lock that expired and was taken over is left to its new holder). The
//! outcome holds a downstream token, so it is sealed like the provider's tokens in
//! grants, with the Redis key as associated data: a value copied under another key
//! — another subject's — does not open.

use std::sync::LazyLock;
use std::time::Duration;

use ::redis::{Script, Value};
use async_trait::async_trait;

use super::codec::{corrupt, redis_error, seal_error, word};
use super::{Inner, RedisStore};
use crate::store::{Claim, ExchangeLock, Lease, Shared, StoreError};

macro_rules! script {
    ($file:literal) => {
        Script::new(concat!(
            include_str!("lua/common.lua"),
            include_str!(concat!("lua/", $file))
        ))
    };
}

struct Scripts {
    claim: Script,
    settle: Script,
}

static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| Scripts {
    claim: script!("exchange_claim.lua"),
    settle: script!("exchange_settle.lua"),
});

#[async_trait]
impl ExchangeLock for RedisStore {
    async fn claim(&self, key: &[u8; 32], ttl: Duration) -> Result<Claim, StoreError> {
        let key = *key;
        self.call(move |s| async move { claim(&s, key, ttl).await })
            .await
    }

    async fn settle(
        &self,
        lease: Lease,
        outcome: Option<(Shared, Duration)>,
    ) -> Result<(), StoreError> {
        self.call(move |s| async move { settle(&s, lease, outcome).await })
            .await
    }
}

async fn claim(s: &Inner, key: [u8; 32], ttl: Duration) -> Result<Claim, StoreError> {
    let outcome_key = s.keys.exchange(&key);
    let owner = uuid::Uuid::new_v4().simple().to_string();
    let reply: Value = SCRIPTS
        .claim
        .key(&outcome_key)
        .key(s.keys.exchange_lock(&key))
        .arg(s.keys.prefix())
        .arg(&owner)
        .arg(millis(ttl))
        .invoke_async(&mut s.conn())
        .await
        .map_err(redis_error)?;
    let Value::Array(items) = reply else {
        return Err(corrupt(format!("exchange claim answered {reply:?}")));
    };
    match items.as_slice() {
        [w] if word(w)? == "won" => Ok(Claim::Won(Lease { key, owner })),
        [w] if word(w)? == "held" => Ok(Claim::Held),
        [w, Value::BulkString(sealed)] if word(w)? == "settled" => {
            open(s, &outcome_key, sealed).map(Claim::Settled)
        }
        other => Err(corrupt(format!("exchange claim answered {other:?}"))),
    }
}

async fn settle(
    s: &Inner,
    lease: Lease,
    outcome: Option<(Shared, Duration)>,
) -> Result<(), StoreError> {
    let outcome_key = s.keys.exchange(&lease.key);
    let (sealed, keep) = match &outcome {
        Some((shared, keep)) => (seal(s, &outcome_key, shared)?, millis(*keep)),
        None => (Vec::new(), 0),
    };
    SCRIPTS
        .settle
        .key(&outcome_key)
        .key(s.keys.exchange_lock(&lease.key))
        .arg(s.keys.prefix())
        .arg(&lease.owner)
        .arg(sealed)
        .arg(keep)
        .invoke_async::<Value>(&mut s.conn())
        .await
        .map_err(redis_error)?;
    Ok(())
}

fn seal(s: &Inner, outcome_key: &str, shared: &Shared) -> Result<Vec<u8>, StoreError> {
    let plain = serde_json::to_vec(shared)
        .map(zeroize::Zeroizing::new)
        .map_err(|e| StoreError::Unavailable(format!("cannot encode an exchange outcome: {e}")))?;
    s.sealer
        .seal(outcome_key.as_bytes(), &plain)
        .map_err(seal_error)
}

fn open(s: &Inner, outcome_key: &str, sealed: &[u8]) -> Result<Shared, StoreError> {
    let plain = s
        .sealer
        .open(outcome_key.as_bytes(), sealed)
        .map_err(seal_error)?;
    serde_json::from_slice(&plain).map_err(|e| corrupt(format!("exchange outcome: {e}")))
}

/// Milliseconds for `PX`: at least one (zero is refused).
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}
