//! Grants and their refresh tokens, with the memory store's semantics: a refresh
//! token is visible only while its grant is live, revoking deletes the chain, and the
//! provider's tokens are sealed, bound to the grant id. Each grant keeps the set of
//! its tokens' hashes so revocation and the sweep find them without scanning.

use ::redis::Value;

use super::Inner;
use super::codec::{Fields, Record, corrupt, redis_error, seal_error, ttl};
use super::keys::hex;
use crate::clock::UnixSeconds;
use crate::store::seal::{Sealer, aad};
use crate::store::{Grant, RefreshRecord, Rotation, StoreError, UpstreamTokens};

/// The associated data's place, as in sqlite.
const SEALED_UPSTREAM: &str = "grants.upstream";
/// Grants the sweep hands to one script: bounds how long Redis is busy with it.
const SWEEP_BATCH: usize = 100;

pub async fn put_grant(s: &Inner, grant: &Grant) -> Result<(), StoreError> {
    let record = Record::default()
        .text("subject", &grant.subject)
        .text("client_id", &grant.client_id)
        .text("scopes", &grant.scopes.to_string())
        .opt_text("resource", grant.resource.as_deref())
        .bytes(
            "upstream",
            seal_upstream(&s.sealer, &grant.grant_id, &grant.upstream)?,
        )
        .unix("created_at", grant.created_at)
        .opt_unix("revoked_at", grant.revoked_at);
    let mut call = s.scripts.put_grant.prepare_invoke();
    call.key(s.keys.grant(&grant.grant_id))
        .arg(s.keys.prefix())
        .arg(&grant.grant_id);
    for (name, value) in record.pairs() {
        call.arg(*name).arg(value.as_slice());
    }
    call.invoke_async::<i64>(&mut s.conn())
        .await
        .map_err(redis_error)?;
    Ok(())
}

pub async fn get_grant(s: &Inner, grant_id: &str) -> Result<Option<Grant>, StoreError> {
    let value: Value = ::redis::cmd("HGETALL")
        .arg(s.keys.grant(grant_id))
        .query_async(&mut s.conn())
        .await
        .map_err(redis_error)?;
    decode_grant(&s.sealer, grant_id, Fields::from_value(value)?)
}

pub async fn set_upstream(
    s: &Inner,
    grant_id: &str,
    tokens: &UpstreamTokens,
) -> Result<(), StoreError> {
    let sealed = seal_upstream(&s.sealer, grant_id, tokens)?;
    s.scripts
        .set_upstream
        .key(s.keys.grant(grant_id))
        .arg(s.keys.prefix())
        .arg(sealed)
        .invoke_async::<i64>(&mut s.conn())
        .await
        .map_err(redis_error)?;
    Ok(())
}

pub async fn revoke(
    s: &Inner,
    grant_id: &str,
    now: UnixSeconds,
) -> Result<Option<Grant>, StoreError> {
    let value: Value = s
        .scripts
        .revoke_grant
        .key(s.keys.grant(grant_id))
        .key(s.keys.grant_tokens(grant_id))
        .arg(s.keys.prefix())
        .arg(grant_id)
        .arg(now)
        .invoke_async(&mut s.conn())
        .await
        .map_err(redis_error)?;
    decode_grant(&s.sealer, grant_id, Fields::from_value(value)?)
}

pub async fn put_refresh(s: &Inner, record: &RefreshRecord) -> Result<(), StoreError> {
    let fields = Record::default()
        .text("grant_id", &record.grant_id)
        .text("scopes", &record.scopes.to_string())
        .unix("issued_at", record.issued_at)
        .unix("expires_at", record.expires_at)
        .opt_unix("rotated_at", record.rotated.map(|r| r.at))
        .opt_hash("successor", record.rotated.as_ref().map(|r| &r.successor));
    let mut call = s.scripts.put_refresh.prepare_invoke();
    call.key(s.keys.refresh(&record.hash))
        .arg(s.keys.prefix())
        .arg(hex(&record.hash))
        .arg(&record.grant_id)
        .arg(ttl(record.issued_at, record.expires_at));
    for (name, value) in fields.pairs() {
        call.arg(*name).arg(value.as_slice());
    }
    call.invoke_async::<i64>(&mut s.conn())
        .await
        .map_err(redis_error)?;
    Ok(())
}

pub async fn find_refresh(s: &Inner, hash: &[u8; 32]) -> Result<Option<RefreshRecord>, StoreError> {
    let value: Value = s
        .scripts
        .find_refresh
        .key(s.keys.refresh(hash))
        .arg(s.keys.prefix())
        .invoke_async(&mut s.conn())
        .await
        .map_err(redis_error)?;
    let fields = Fields::from_value(value)?;
    if fields.is_empty() {
        return Ok(None);
    }
    decode_refresh(*hash, &fields).map(Some)
}

pub async fn delete_refresh(s: &Inner, hash: &[u8; 32]) -> Result<bool, StoreError> {
    let deleted: i64 = s
        .scripts
        .delete_refresh
        .key(s.keys.refresh(hash))
        .arg(s.keys.prefix())
        .arg(hex(hash))
        .invoke_async(&mut s.conn())
        .await
        .map_err(redis_error)?;
    Ok(deleted > 0)
}

/// Walks every grant (`SSCAN`, so Redis is never blocked by one long command) and
/// sweeps them a batch per script. Each grant's step is atomic; several replicas
/// sweeping at once only split the count.
pub async fn sweep(
    s: &Inner,
    now: UnixSeconds,
    revoked_before: UnixSeconds,
    idle_before: UnixSeconds,
) -> Result<u64, StoreError> {
    let mut conn = s.conn();
    let mut cursor: u64 = 0;
    let mut gone = 0;
    loop {
        let (next, ids): (u64, Vec<String>) = ::redis::cmd("SSCAN")
            .arg(s.keys.grants())
            .arg(cursor)
            .arg("COUNT")
            .arg(SWEEP_BATCH)
            .query_async(&mut conn)
            .await
            .map_err(redis_error)?;
        if !ids.is_empty() {
            let mut call = s.scripts.sweep_grants.prepare_invoke();
            call.key(s.keys.grants())
                .arg(s.keys.prefix())
                .arg(now)
                .arg(revoked_before)
                .arg(idle_before);
            for id in &ids {
                call.arg(id);
            }
            gone += call
                .invoke_async::<u64>(&mut conn)
                .await
                .map_err(redis_error)?;
        }
        if next == 0 {
            return Ok(gone);
        }
        cursor = next;
    }
}

fn seal_upstream(
    sealer: &Sealer,
    grant_id: &str,
    tokens: &UpstreamTokens,
) -> Result<Vec<u8>, StoreError> {
    let plain = serde_json::to_vec(tokens)
        .map(zeroize::Zeroizing::new)
        .map_err(|e| StoreError::Unavailable(format!("cannot encode upstream tokens: {e}")))?;
    sealer
        .seal(&aad(SEALED_UPSTREAM, grant_id), &plain)
        .map_err(seal_error)
}

/// A grant from its fields; `None` when there are none.
pub fn decode_grant(
    sealer: &Sealer,
    grant_id: &str,
    f: Fields,
) -> Result<Option<Grant>, StoreError> {
    if f.is_empty() {
        return Ok(None);
    }
    let plain = sealer
        .open(&aad(SEALED_UPSTREAM, grant_id), f.bytes("upstream")?)
        .map_err(seal_error)?;
    let upstream: UpstreamTokens =
        serde_json::from_slice(&plain).map_err(|e| corrupt(format!("upstream tokens: {e}")))?;
    Ok(Some(Grant {
        grant_id: grant_id.to_owned(),
        subject: f.text("subject")?,
        client_id: f.text("client_id")?,
        scopes: f.scopes("scopes")?,
        resource: f.opt_text("resource")?,
        upstream,
        created_at: f.unix("created_at")?,
        revoked_at: f.opt_unix("revoked_at")?,
    }))
}

pub fn decode_refresh(hash: [u8; 32], f: &Fields) -> Result<RefreshRecord, StoreError> {
    let rotated = match (f.opt_unix("rotated_at")?, f.opt_hash("successor")?) {
        (Some(at), Some(successor)) => Some(Rotation { at, successor }),
        (None, None) => None,
        _ => return Err(corrupt("refresh token half rotated")),
    };
    Ok(RefreshRecord {
        hash,
        grant_id: f.text("grant_id")?,
        scopes: f.scopes("scopes")?,
        issued_at: f.unix("issued_at")?,
        expires_at: f.unix("expires_at")?,
        rotated,
    })
}
