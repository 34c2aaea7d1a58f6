//! The broker's own secrets (the consent cookie key) as rows, sealed and bound to
//! their name.

use rusqlite::{Connection, OptionalExtension, params};
use zeroize::Zeroizing;

use super::codec::{db_error, seal_error};
use crate::store::StoreError;
use crate::store::seal::{Sealer, aad};
use crate::store::signing_keys::SEALED_SECRET;

/// The secret stored under `name`, after storing `candidate` there if there was
/// none; run inside one `IMMEDIATE` transaction, so a second process waits for the
/// first and then reads its secret.
pub fn get_or_insert(
    conn: &Connection,
    sealer: &Sealer,
    name: &str,
    candidate: &[u8],
) -> Result<Zeroizing<Vec<u8>>, StoreError> {
    let place = aad(SEALED_SECRET, name);
    let held: Option<Vec<u8>> = conn
        .query_row("SELECT value FROM secrets WHERE name = ?1", [name], |row| {
            row.get(0)
        })
        .optional()
        .map_err(db_error)?;
    if let Some(sealed) = held {
        return sealer.open(&place, &sealed).map_err(seal_error);
    }
    let sealed = sealer.seal(&place, candidate).map_err(seal_error)?;
    conn.execute(
        "INSERT INTO secrets (name, value) VALUES (?1, ?2)",
        params![name, sealed],
    )
    .map_err(db_error)?;
    Ok(Zeroizing::new(candidate.to_vec()))
}
