//! The broker's signing keys: one hash, `kid` → record (JSON, the private key sealed
//! and bound to its `kid`). One key for the whole set makes "store these unless there
//! are keys already" a single check in one script.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use super::Inner;
use super::codec::{corrupt, redis_error, seal_error};
use crate::clock::UnixSeconds;
use crate::store::seal::{Sealer, aad};
use crate::store::signing_keys::SEALED_PRIVATE_KEY;
use crate::store::{StoreError, StoredSigningKey};

/// One key as stored in its field.
#[derive(Serialize, Deserialize)]
struct Record {
    alg: String,
    /// The sealed PKCS#8 DER, base64.
    private_key: String,
    created_at: UnixSeconds,
    activates_at: UnixSeconds,
}

pub async fn list(s: &Inner) -> Result<Vec<StoredSigningKey>, StoreError> {
    let fields: BTreeMap<String, Vec<u8>> = ::redis::cmd("HGETALL")
        .arg(s.keys.signing_keys())
        .query_async(&mut s.conn())
        .await
        .map_err(redis_error)?;
    let mut keys = fields
        .into_iter()
        .map(|(kid, value)| decode(&s.sealer, kid, &value))
        .collect::<Result<Vec<_>, _>>()?;
    keys.sort_by(|a, b| (a.activates_at, &a.kid).cmp(&(b.activates_at, &b.kid)));
    Ok(keys)
}

pub async fn add_if_none(s: &Inner, keys: &[StoredSigningKey]) -> Result<bool, StoreError> {
    let mut invocation = s.scripts.add_signing_keys.key(s.keys.signing_keys());
    invocation.arg(s.keys.prefix());
    for key in keys {
        invocation.arg(&key.kid).arg(encode(&s.sealer, key)?);
    }
    let stored: i64 = invocation
        .invoke_async(&mut s.conn())
        .await
        .map_err(redis_error)?;
    Ok(stored == 1)
}

pub async fn put(s: &Inner, key: &StoredSigningKey) -> Result<(), StoreError> {
    ::redis::cmd("HSET")
        .arg(s.keys.signing_keys())
        .arg(&key.kid)
        .arg(encode(&s.sealer, key)?)
        .query_async::<i64>(&mut s.conn())
        .await
        .map_err(redis_error)?;
    Ok(())
}

pub async fn delete(s: &Inner, kids: &[String]) -> Result<u64, StoreError> {
    if kids.is_empty() {
        return Ok(0);
    }
    ::redis::cmd("HDEL")
        .arg(s.keys.signing_keys())
        .arg(kids)
        .query_async(&mut s.conn())
        .await
        .map_err(redis_error)
}

fn encode(sealer: &Sealer, key: &StoredSigningKey) -> Result<Vec<u8>, StoreError> {
    let sealed = sealer
        .seal(&aad(SEALED_PRIVATE_KEY, &key.kid), &key.private_key)
        .map_err(seal_error)?;
    serde_json::to_vec(&Record {
        alg: key.alg.clone(),
        private_key: STANDARD.encode(sealed),
        created_at: key.created_at,
        activates_at: key.activates_at,
    })
    .map_err(|e| StoreError::Unavailable(format!("cannot encode signing key: {e}")))
}

fn decode(sealer: &Sealer, kid: String, value: &[u8]) -> Result<StoredSigningKey, StoreError> {
    let record: Record =
        serde_json::from_slice(value).map_err(|e| corrupt(format!("signing key {kid}: {e}")))?;
    let sealed = STANDARD
        .decode(record.private_key.as_bytes())
        .map_err(|e| corrupt(format!("signing key {kid}: {e}")))?;
    let private_key = sealer
        .open(&aad(SEALED_PRIVATE_KEY, &kid), &sealed)
        .map_err(seal_error)?;
    Ok(StoredSigningKey {
        kid,
        alg: record.alg,
        private_key,
        created_at: record.created_at,
        activates_at: record.activates_at,
    })
}
