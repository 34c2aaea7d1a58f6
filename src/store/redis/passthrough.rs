//! Provider tokens handed out in passthrough mode: one hash per token digest, with
//! a native TTL until the token's expiry, so nothing outlives the token it describes.

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
