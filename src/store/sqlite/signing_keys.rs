//! The broker's signing keys as rows, the private key sealed and bound to its `kid`.

use rusqlite::{Connection, params};

use super::codec::{db_error, seal_error, secs, unix};
use crate::store::seal::{Sealer, aad};
use crate::store::signing_keys::SEALED_PRIVATE_KEY;
use crate::store::{StoreError, StoredSigningKey};

pub fn list(conn: &Connection, sealer: &Sealer) -> Result<Vec<StoredSigningKey>, StoreError> {
    let mut statement = conn
        .prepare_cached(
            "SELECT kid, alg, private_key, created_at, activates_at FROM signing_keys \
             ORDER BY activates_at, kid",
        )
        .map_err(db_error)?;
    let rows = statement
        .query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, Vec<u8>>(2)?,
                row.get::<_, i64>(3)?,
                row.get::<_, i64>(4)?,
            ))
        })
        .map_err(db_error)?;
    let mut keys = Vec::new();
    for row in rows {
        let (kid, alg, sealed, created_at, activates_at) = row.map_err(db_error)?;
        let private_key = sealer
            .open(&aad(SEALED_PRIVATE_KEY, &kid), &sealed)
            .map_err(seal_error)?;
        keys.push(StoredSigningKey {
            kid,
            alg,
            private_key,
            created_at: unix(created_at)?,
            activates_at: unix(activates_at)?,
        });
    }
    Ok(keys)
}

/// Inserts `keys` when the table is empty; run inside one `IMMEDIATE` transaction,
/// so a second process waits for the first and then finds its keys.
pub fn add_if_none(
    conn: &Connection,
    sealer: &Sealer,
    keys: &[StoredSigningKey],
) -> Result<bool, StoreError> {
    let held: i64 = conn
        .query_row("SELECT COUNT(*) FROM signing_keys", [], |row| row.get(0))
        .map_err(db_error)?;
    if held > 0 {
        return Ok(false);
    }
    for key in keys {
        put(conn, sealer, key)?;
    }
    Ok(true)
}

pub fn put(conn: &Connection, sealer: &Sealer, key: &StoredSigningKey) -> Result<(), StoreError> {
    let sealed = sealer
        .seal(&aad(SEALED_PRIVATE_KEY, &key.kid), &key.private_key)
        .map_err(seal_error)?;
    conn.prepare_cached(
        "INSERT OR REPLACE INTO signing_keys (kid, alg, private_key, created_at, activates_at) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .and_then(|mut s| {
        s.execute(params![
            key.kid,
            key.alg,
            sealed,
            secs(key.created_at),
            secs(key.activates_at)
        ])
    })
    .map_err(db_error)?;
    Ok(())
}

pub fn delete(conn: &Connection, kids: &[String]) -> Result<u64, StoreError> {
    let mut deleted = 0;
    for kid in kids {
        deleted += conn
            .prepare_cached("DELETE FROM signing_keys WHERE kid = ?1")
            .and_then(|mut s| s.execute([kid]))
            .map_err(db_error)? as u64;
    }
    Ok(deleted)
}
