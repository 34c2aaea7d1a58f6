//! Provider tokens handed out in passthrough mode: one hash per token digest, with
//! a native TTL until the token's expiry, so nothing outlives the token it describes.
//! Spent assertions (ID-JAG replay records) likewise: one string per digest.

use ::redis::{Value, pipe};

use super::Inner;
use super::codec::{Fields, Record, redis_error, ttl};
use crate::clock::UnixSeconds;
use crate::store::{PassthroughToken, StoreError};

pub async fn put(s: &Inner, token: &PassthroughToken, now: UnixSeconds) -> Result<(), StoreError> {
    let key = s.keys.passthrough(&token.digest);
    let record = Record::default()
        .text("grant_id", &token.grant_id)
        .text("client_id", &token.client_id)
        .unix("expires_at", token.expires_at);
    pipe()
        .atomic()
        .del(&key)
        .ignore()
        .hset_multiple(&key, record.pairs())
        .ignore()
        // Relative to the broker's clock, as refresh tokens' TTLs are.
        .expire(
            &key,
            i64::try_from(ttl(now, token.expires_at)).unwrap_or(i64::MAX),
        )
        .ignore()
        .query_async::<()>(&mut s.conn())
        .await
        .map_err(redis_error)
}

/// Spends an assertion: `SET NX` with a TTL until `until` by the broker's clock, so
/// of all replicas exactly one sees it first.
pub async fn spend_assertion(
    s: &Inner,
    digest: &[u8; 32],
    until: UnixSeconds,
    now: UnixSeconds,
) -> Result<bool, StoreError> {
    let set: Option<String> = ::redis::cmd("SET")
        .arg(s.keys.assertion(digest))
        .arg("1")
        .arg("NX")
        .arg("EX")
        .arg(ttl(now, until))
        .query_async(&mut s.conn())
        .await
        .map_err(redis_error)?;
    Ok(set.is_some())
}

pub async fn find(
    s: &Inner,
    digest: &[u8; 32],
    now: UnixSeconds,
) -> Result<Option<PassthroughToken>, StoreError> {
    let value: Value = ::redis::cmd("HGETALL")
        .arg(s.keys.passthrough(digest))
        .query_async(&mut s.conn())
        .await
        .map_err(redis_error)?;
    let fields = Fields::from_value(value)?;
    if fields.is_empty() {
        return Ok(None);
    }
    // Redis expires the key by its own clock; the broker's decides.
    let expires_at = fields.unix("expires_at")?;
    if now >= expires_at {
        return Ok(None);
    }
    Ok(Some(PassthroughToken {
        digest: *digest,
        grant_id: fields.text("grant_id")?,
        client_id: fields.text("client_id")?,
        expires_at,
    }))
}
