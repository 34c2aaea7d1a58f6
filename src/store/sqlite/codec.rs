//! Conversions between the store's types and sqlite values, and sqlite's errors as
//! [`StoreError`]s.

use rusqlite::ErrorCode;

use crate::clock::UnixSeconds;
use crate::domain::scope::Scopes;
use crate::store::StoreError;
use crate::store::seal::SealError;

/// A time as sqlite's signed integer. Times past `i64::MAX` seconds (beyond any real
/// expiry) are stored as `i64::MAX`, which compares the same way.
pub fn secs(at: UnixSeconds) -> i64 {
    i64::try_from(at).unwrap_or(i64::MAX)
}

/// A stored time; a negative one was not written by this store.
pub fn unix(value: i64) -> Result<UnixSeconds, StoreError> {
    UnixSeconds::try_from(value).map_err(|_| corrupt(format!("negative time {value}")))
}

pub fn opt_unix(value: Option<i64>) -> Result<Option<UnixSeconds>, StoreError> {
    value.map(unix).transpose()
}

/// A stored SHA-256 (token hash, fingerprint).
pub fn hash(bytes: Vec<u8>) -> Result<[u8; 32], StoreError> {
    <[u8; 32]>::try_from(bytes).map_err(|b| corrupt(format!("hash of {} bytes", b.len())))
}

pub fn scopes(text: &str) -> Result<Scopes, StoreError> {
    Scopes::parse(text).map_err(|e| corrupt(format!("stored scopes: {e}")))
}

pub fn corrupt(message: impl Into<String>) -> StoreError {
    StoreError::Corrupt(message.into())
}

/// A sealed value that does not open is a corrupt (or foreign, or tampered) record.
pub fn seal_error(e: SealError) -> StoreError {
    corrupt(e.to_string())
}

/// sqlite's failures: damaged files and values of the wrong shape are corrupt
/// records; everything else (busy, I/O, full disk, permissions) leaves the store
/// unavailable with nothing written, as every write is one transaction.
pub fn db_error(e: rusqlite::Error) -> StoreError {
    match &e {
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(f.code, ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) =>
        {
            corrupt(format!("sqlite: {e}"))
        }
        rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::IntegralValueOutOfRange(..)
        | rusqlite::Error::InvalidColumnType(..) => corrupt(format!("sqlite: {e}")),
        _ => StoreError::Unavailable(format!("sqlite: {e}")),
    }
}
