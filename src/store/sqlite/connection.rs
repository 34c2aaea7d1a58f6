//! Opening the database file with the settings durability depends on.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::codec::db_error;
use crate::store::StoreError;

/// How long a statement waits for another process's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens (creating when absent) the database at `path`, waiting on another process's
/// lock instead of failing at once. Nothing in the file changes yet: see [`configure`].
pub fn open(path: &Path) -> Result<Connection, StoreError> {
    create_private(path)?;
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| {
        StoreError::Unavailable(format!("cannot open store {}: {e}", path.display()))
    })?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(db_error)?;
    Ok(conn)
}

/// The settings durability depends on, for a file known to be ours: WAL journal (kept
/// in the file), so readers never wait on the writer; `synchronous = FULL`, so a commit
/// is on disk before it is acknowledged and survives a crash or `kill -9` (and a power
/// cut); foreign keys enforced.
pub fn configure(conn: &Connection) -> Result<(), StoreError> {
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(db_error)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Unavailable(format!(
            "the store cannot use WAL journaling (got {mode})"
        )));
    }
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(db_error)?;
    conn.pragma_update(None, "foreign_keys", true)
        .map_err(db_error)?;
    Ok(())
}

/// Creates the file readable by its owner only before sqlite does (sqlite would use
/// the umask; its `-wal` and `-shm` files copy the main file's mode). The secrets in
/// it are sealed, but hashes and metadata are nobody else's business either.
fn create_private(path: &Path) -> Result<(), StoreError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).map(drop).map_err(|e| {
        StoreError::Unavailable(format!("cannot create store {}: {e}", path.display()))
    })
}
