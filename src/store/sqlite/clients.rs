//! Registered clients as rows. A proxied client's upstream secret and registration
//! access token are sealed, bound to the client id.

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};

use super::codec::{corrupt, db_error, hash, opt_unix, seal_error, secs, unix};
use crate::clock::UnixSeconds;
use crate::store::seal::{Sealer, aad};
use crate::store::{ClientOrigin, Listing, Page, StoreError, StoredClient};

const SEALED_ORIGIN: &str = "clients.origin_secrets";
const COLUMNS: &str = "client_id, secret_hash, metadata, fingerprint, issued_at, last_used_at, \
                       origin, upstream_client_id, registration_client_uri, origin_secrets";

/// The secret half of `ClientOrigin::Proxied`, sealed as one value.
#[derive(Serialize, Deserialize)]
struct OriginSecrets {
    upstream_client_secret: Option<String>,
    registration_access_token: Option<String>,
    #[serde(default)]
    upstream_secret_expires_at: Option<u64>,
}

pub fn put(conn: &Connection, sealer: &Sealer, client: &StoredClient) -> Result<(), StoreError> {
    let (origin, upstream_client_id, registration_client_uri, sealed) = match &client.origin {
        ClientOrigin::Local => ("local", None, None, None),
        ClientOrigin::MetadataDocument => ("metadata_document", None, None, None),
        ClientOrigin::Configured => ("configured", None, None, None),
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
            (
                "proxied",
                Some(upstream_client_id.as_str()),
                registration_client_uri.as_deref(),
                Some(sealed),
            )
        }
    };
    let metadata = serde_json::to_string(&client.metadata)
        .map_err(|e| StoreError::Unavailable(format!("cannot encode client metadata: {e}")))?;
    conn.prepare_cached(&format!(
        "INSERT OR REPLACE INTO clients ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
    ))
    .and_then(|mut s| {
        s.execute(params![
            client.client_id,
            client.secret_hash,
            metadata,
            client.fingerprint,
            secs(client.issued_at),
            client.last_used_at.map(secs),
            origin,
            upstream_client_id,
            registration_client_uri,
            sealed,
        ])
    })
    .map_err(db_error)?;
    Ok(())
}

pub fn get(
    conn: &Connection,
    sealer: &Sealer,
    client_id: &str,
) -> Result<Option<StoredClient>, StoreError> {
    let raw = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM clients WHERE client_id = ?1"
        ))
        .and_then(|mut s| s.query_row([client_id], RawClient::read).optional())
        .map_err(db_error)?;
    raw.map(|r| r.decode(sealer)).transpose()
}

pub fn delete(conn: &Connection, client_id: &str) -> Result<bool, StoreError> {
    let n = conn
        .execute("DELETE FROM clients WHERE client_id = ?1", [client_id])
        .map_err(db_error)?;
    Ok(n > 0)
}

pub fn touch(conn: &Connection, client_id: &str, at: UnixSeconds) -> Result<(), StoreError> {
    // Never moves backwards: uses reported out of order keep the latest.
    conn.execute(
        "UPDATE clients SET last_used_at = MAX(COALESCE(last_used_at, ?1), ?1) \
         WHERE client_id = ?2",
        params![secs(at), client_id],
    )
    .map_err(db_error)?;
    Ok(())
}

pub fn stale(
    conn: &Connection,
    sealer: &Sealer,
    unused_before: UnixSeconds,
    idle_before: UnixSeconds,
) -> Result<Vec<StoredClient>, StoreError> {
    let raws = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM clients \
             WHERE (last_used_at IS NULL AND issued_at < ?1) OR last_used_at < ?2"
        ))
        .and_then(|mut s| {
            s.query_map(
                params![secs(unused_before), secs(idle_before)],
                RawClient::read,
            )?
            .collect::<Result<Vec<_>, _>>()
        })
        .map_err(db_error)?;
    raws.into_iter().map(|r| r.decode(sealer)).collect()
}

/// A page of clients in id order (the primary key's order).
pub fn list(
    conn: &Connection,
    sealer: &Sealer,
    page: &Page,
) -> Result<Listing<StoredClient>, StoreError> {
    let limit = i64::try_from(page.size() + 1).unwrap_or(i64::MAX);
    let raws = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM clients WHERE ?1 IS NULL OR client_id > ?1 \
             ORDER BY client_id LIMIT ?2"
        ))
        .and_then(|mut s| {
            s.query_map(params![page.after, limit], RawClient::read)?
                .collect::<Result<Vec<_>, _>>()
        })
        .map_err(db_error)?;
    let rows = raws
        .into_iter()
        .map(|r| r.decode(sealer))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(page.cut(rows, |c: &StoredClient| &c.client_id))
}

pub fn count(conn: &Connection) -> Result<u64, StoreError> {
    let n: i64 = conn
        .query_row("SELECT COUNT(*) FROM clients", [], |row| row.get(0))
        .map_err(db_error)?;
    u64::try_from(n).map_err(|_| corrupt("negative count"))
}

/// A row as read, decoded after the statement is done.
struct RawClient {
    client_id: String,
    secret_hash: Option<Vec<u8>>,
    metadata: String,
    fingerprint: Vec<u8>,
    issued_at: i64,
    last_used_at: Option<i64>,
    origin: String,
    upstream_client_id: Option<String>,
    registration_client_uri: Option<String>,
    origin_secrets: Option<Vec<u8>>,
}

impl RawClient {
    fn read(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            client_id: row.get(0)?,
            secret_hash: row.get(1)?,
            metadata: row.get(2)?,
            fingerprint: row.get(3)?,
            issued_at: row.get(4)?,
            last_used_at: row.get(5)?,
            origin: row.get(6)?,
            upstream_client_id: row.get(7)?,
            registration_client_uri: row.get(8)?,
            origin_secrets: row.get(9)?,
        })
    }

    fn decode(self, sealer: &Sealer) -> Result<StoredClient, StoreError> {
        let origin = match self.origin.as_str() {
            "local" => ClientOrigin::Local,
            "metadata_document" => ClientOrigin::MetadataDocument,
            "configured" => ClientOrigin::Configured,
            "proxied" => {
                let sealed = self
                    .origin_secrets
                    .ok_or_else(|| corrupt("proxied client without its sealed secrets"))?;
                let plain = sealer
                    .open(&aad(SEALED_ORIGIN, &self.client_id), &sealed)
                    .map_err(seal_error)?;
                let secrets: OriginSecrets = serde_json::from_slice(&plain)
                    .map_err(|e| corrupt(format!("client secrets: {e}")))?;
                ClientOrigin::Proxied {
                    upstream_client_id: self
                        .upstream_client_id
                        .ok_or_else(|| corrupt("proxied client without upstream client id"))?,
                    upstream_client_secret: secrets.upstream_client_secret,
                    registration_client_uri: self.registration_client_uri,
                    registration_access_token: secrets.registration_access_token,
                    upstream_secret_expires_at: secrets.upstream_secret_expires_at,
                }
            }
            other => return Err(corrupt(format!("unknown client origin `{other}`"))),
        };
        Ok(StoredClient {
            metadata: serde_json::from_str(&self.metadata)
                .map_err(|e| corrupt(format!("client metadata: {e}")))?,
            secret_hash: self.secret_hash.map(hash).transpose()?,
            fingerprint: hash(self.fingerprint)?,
            issued_at: unix(self.issued_at)?,
            last_used_at: opt_unix(self.last_used_at)?,
            client_id: self.client_id,
            origin,
        })
    }
}
