//! Registered clients as hashes, indexed by two sorted sets — never-used clients by
//! issue time, used ones by last use — so clean-up reads only the stale ones. A
//! proxied client's upstream secret and registration access token are sealed,
//! bound to the client id.

use ::redis::{Value, pipe};
use serde::{Deserialize, Serialize};

use super::Inner;
use super::codec::{Fields, Record, corrupt, redis_error, seal_error};
use crate::clock::UnixSeconds;
use crate::store::seal::{Sealer, aad};
use crate::store::{ClientOrigin, StoreError, StoredClient};

/// The associated data's place, as in sqlite: a sealed value means the same thing in
/// either backend.
const SEALED_ORIGIN: &str = "clients.origin_secrets";

/// The secret half of `ClientOrigin::Proxied`, sealed as one value.
#[derive(Serialize, Deserialize)]
struct OriginSecrets {
    upstream_client_secret: Option<String>,
    registration_access_token: Option<String>,
    #[serde(default)]
    upstream_secret_expires_at: Option<u64>,
}

pub async fn put(s: &Inner, client: &StoredClient) -> Result<(), StoreError> {
    let record = encode(&s.sealer, client)?;
    let id = client.client_id.as_str();
    let key = s.keys.client(id);
    let (unused, used) = (s.keys.clients_unused(), s.keys.clients_used());
    let (index, score) = match client.last_used_at {
        None => (&unused, client.issued_at),
        Some(at) => (&used, at),
    };
    // A put replaces the whole client: old fields must not survive.
    pipe()
        .atomic()
        .del(&key)
        .ignore()
        .hset_multiple(&key, record.pairs())
        .ignore()
        .zrem(&unused, id)
        .ignore()
        .zrem(&used, id)
        .ignore()
        .zadd(index, id, score)
        .ignore()
        .zadd(s.keys.client_index(), id, 0)
        .ignore()
        .query_async::<()>(&mut s.conn())
        .await
        .map_err(redis_error)
}

pub async fn get(s: &Inner, client_id: &str) -> Result<Option<StoredClient>, StoreError> {
    let value: Value = ::redis::cmd("HGETALL")
        .arg(s.keys.client(client_id))
        .query_async(&mut s.conn())
        .await
        .map_err(redis_error)?;
    let fields = Fields::from_value(value)?;
    if fields.is_empty() {
        return Ok(None);
    }
    decode(&s.sealer, client_id, &fields).map(Some)
}

pub async fn delete(s: &Inner, client_id: &str) -> Result<bool, StoreError> {
    let (deleted, _, _, _): (u64, u64, u64, u64) = pipe()
        .atomic()
        .del(s.keys.client(client_id))
        .zrem(s.keys.clients_unused(), client_id)
        .zrem(s.keys.clients_used(), client_id)
        .zrem(s.keys.client_index(), client_id)
        .query_async(&mut s.conn())
        .await
        .map_err(redis_error)?;
    Ok(deleted > 0)
}

pub async fn touch(s: &Inner, client_id: &str, at: UnixSeconds) -> Result<(), StoreError> {
    s.scripts
        .touch_client
        .key(s.keys.client(client_id))
        .key(s.keys.clients_unused())
        .key(s.keys.clients_used())
        .arg(s.keys.prefix())
        .arg(at)
        .arg(client_id)
        .invoke_async::<i64>(&mut s.conn())
        .await
        .map_err(redis_error)?;
    Ok(())
}

pub async fn stale(
    s: &Inner,
    unused_before: UnixSeconds,
    idle_before: UnixSeconds,
) -> Result<Vec<StoredClient>, StoreError> {
    let (never_used, idle): (Vec<String>, Vec<String>) = pipe()
        .zrangebyscore(s.keys.clients_unused(), "-inf", format!("({unused_before}"))
        .zrangebyscore(s.keys.clients_used(), "-inf", format!("({idle_before}"))
        .query_async(&mut s.conn())
        .await
        .map_err(redis_error)?;
    let ids: Vec<String> = never_used.into_iter().chain(idle).collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut reads = pipe();
    for id in &ids {
        reads.hgetall(s.keys.client(id));
    }
    let values: Vec<Value> = reads
        .query_async(&mut s.conn())
        .await
        .map_err(redis_error)?;
    let mut out = Vec::with_capacity(ids.len());
    for (id, value) in ids.iter().zip(values) {
        let fields = Fields::from_value(value)?;
        // Deleted since the index was read.
        if !fields.is_empty() {
            out.push(decode(&s.sealer, id, &fields)?);
        }
    }
    Ok(out)
}

pub async fn count(s: &Inner) -> Result<u64, StoreError> {
    let (unused, used): (u64, u64) = pipe()
        .atomic()
        .zcard(s.keys.clients_unused())
        .zcard(s.keys.clients_used())
        .query_async(&mut s.conn())
        .await
        .map_err(redis_error)?;
    Ok(unused + used)
}

fn encode(sealer: &Sealer, client: &StoredClient) -> Result<Record, StoreError> {
    let metadata = serde_json::to_string(&client.metadata)
        .map_err(|e| StoreError::Unavailable(format!("cannot encode client metadata: {e}")))?;
    let record = Record::default()
        .opt_hash("secret_hash", client.secret_hash.as_ref())
        .text("metadata", &metadata)
        .hash("fingerprint", &client.fingerprint)
        .unix("issued_at", client.issued_at)
        .opt_unix("last_used_at", client.last_used_at);
    Ok(match &client.origin {
        ClientOrigin::Local => record.text("origin", "local"),
        ClientOrigin::MetadataDocument => record.text("origin", "metadata_document"),
        ClientOrigin::Configured => record.text("origin", "configured"),
        ClientOrigin::Proxied {
            upstream_client_id,
            upstream_client_secret,
            registration_client_uri,
            registration_access_token,
            upstream_secret_expires_at,
        } => {
            let secrets = serde_json::to_vec(&OriginSecrets {
                upstream_client_secret: upstream_client_secret.clone(),
                registration_access_token: registration_access_token.clone(),
                upstream_secret_expires_at: *upstream_secret_expires_at,
            })
            .map(zeroize::Zeroizing::new)
            .map_err(|e| StoreError::Unavailable(format!("cannot encode client: {e}")))?;
            let sealed = sealer
                .seal(&aad(SEALED_ORIGIN, &client.client_id), &secrets)
                .map_err(seal_error)?;
            record
                .text("origin", "proxied")
                .text("upstream_client_id", upstream_client_id)
                .opt_text(
                    "registration_client_uri",
                    registration_client_uri.as_deref(),
                )
                .bytes("origin_secrets", sealed)
        }
    })
}

pub(super) fn decode(
    sealer: &Sealer,
    client_id: &str,
    f: &Fields,
) -> Result<StoredClient, StoreError> {
    let origin = match f.text("origin")?.as_str() {
        "local" => ClientOrigin::Local,
        "metadata_document" => ClientOrigin::MetadataDocument,
        "configured" => ClientOrigin::Configured,
        "proxied" => {
            let plain = sealer
                .open(&aad(SEALED_ORIGIN, client_id), f.bytes("origin_secrets")?)
                .map_err(seal_error)?;
            let secrets: OriginSecrets = serde_json::from_slice(&plain)
                .map_err(|e| corrupt(format!("client secrets: {e}")))?;
            ClientOrigin::Proxied {
                upstream_client_id: f.text("upstream_client_id")?,
                upstream_client_secret: secrets.upstream_client_secret,
                registration_client_uri: f.opt_text("registration_client_uri")?,
                registration_access_token: secrets.registration_access_token,
                upstream_secret_expires_at: secrets.upstream_secret_expires_at,
            }
        }
        other => return Err(corrupt(format!("unknown client origin `{other}`"))),
    };
    Ok(StoredClient {
        client_id: client_id.to_owned(),
        secret_hash: f.opt_hash("secret_hash")?,
        metadata: serde_json::from_slice(f.bytes("metadata")?)
            .map_err(|e| corrupt(format!("client metadata: {e}")))?,
        fingerprint: f.hash("fingerprint")?,
        issued_at: f.unix("issued_at")?,
        last_used_at: f.opt_unix("last_used_at")?,
        origin,
    })
}
