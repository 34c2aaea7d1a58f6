//! The schema, as an ordered list of steps. The database's `PRAGMA user_version` is
//! the number of steps applied; start-up applies the missing ones, each in its own
//! `IMMEDIATE` transaction together with the version bump, so a crash or a second
//! process starting at the same time leaves either the old or the new version. A
//! database newer than this binary is refused rather than guessed at.
//!
//! Steps are append-only: a released step is never edited, only followed by another.

use rusqlite::{Connection, TransactionBehavior};

use super::codec::db_error;
use crate::store::StoreError;

/// `PRAGMA application_id`: marks the file as a token-broker store ("TBrk").
pub const APPLICATION_ID: i32 = 0x5442_726b;

/// One schema step.
pub struct Migration {
    /// What the step does, for the log.
    pub description: &'static str,
    pub sql: &'static str,
}

pub const MIGRATIONS: &[Migration] = &[
    Migration {
        description: "clients, grants and refresh tokens",
        sql: "
        CREATE TABLE clients (
            client_id               TEXT PRIMARY KEY NOT NULL,
            secret_hash             BLOB,
            metadata                TEXT NOT NULL,
            fingerprint             BLOB NOT NULL,
            issued_at               INTEGER NOT NULL,
            last_used_at            INTEGER,
            origin                  TEXT NOT NULL,
            upstream_client_id      TEXT,
            registration_client_uri TEXT,
            -- sealed JSON: the upstream client secret and registration access token
            origin_secrets          BLOB
        );
        CREATE TABLE grants (
            grant_id   TEXT PRIMARY KEY NOT NULL,
            subject    TEXT NOT NULL,
            client_id  TEXT NOT NULL,
            scopes     TEXT NOT NULL,
            resource   TEXT,
            -- sealed JSON: the provider's tokens
            upstream   BLOB NOT NULL,
            created_at INTEGER NOT NULL,
            revoked_at INTEGER
        );
        CREATE TABLE refresh_tokens (
            hash       BLOB PRIMARY KEY NOT NULL,
            grant_id   TEXT NOT NULL REFERENCES grants (grant_id) ON DELETE CASCADE,
            scopes     TEXT NOT NULL,
            issued_at  INTEGER NOT NULL,
            expires_at INTEGER NOT NULL,
            rotated_at INTEGER,
            successor  BLOB,
            CHECK ((rotated_at IS NULL) = (successor IS NULL))
        ) WITHOUT ROWID;
        CREATE INDEX refresh_tokens_by_grant ON refresh_tokens (grant_id);
        CREATE INDEX refresh_tokens_by_expiry ON refresh_tokens (expires_at);
    ",
    },
    Migration {
        description: "the broker's signing keys",
        sql: "
        CREATE TABLE signing_keys (
            kid          TEXT PRIMARY KEY NOT NULL,
            alg          TEXT NOT NULL,
            -- sealed: the PKCS#8 DER private key
            private_key  BLOB NOT NULL,
            created_at   INTEGER NOT NULL,
            activates_at INTEGER NOT NULL
        );
    ",
    },
    Migration {
        description: "the broker's own secrets (the consent cookie key)",
        sql: "
        CREATE TABLE secrets (
            name  TEXT PRIMARY KEY NOT NULL,
            -- sealed
            value BLOB NOT NULL
        );
    ",
    },
    Migration {
        description: "provider tokens handed out in passthrough mode, by digest",
        sql: "
        CREATE TABLE passthrough_tokens (
            digest     BLOB PRIMARY KEY NOT NULL,
            grant_id   TEXT NOT NULL,
            client_id  TEXT NOT NULL,
            expires_at INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE INDEX passthrough_tokens_by_expiry ON passthrough_tokens (expires_at);
    ",
    },
    Migration {
        description: "assertions (ID-JAGs) spent, by digest of issuer and jti",
        sql: "
        CREATE TABLE spent_assertions (
            digest     BLOB PRIMARY KEY NOT NULL,
            expires_at INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE INDEX spent_assertions_by_expiry ON spent_assertions (expires_at);
    ",
    },
    Migration {
        description: "grants listed by subject, client and resource (the admin API)",
        sql: "
        CREATE INDEX grants_by_subject ON grants (subject, grant_id);
        CREATE INDEX grants_by_client ON grants (client_id, grant_id);
        CREATE INDEX grants_by_resource ON grants (resource, grant_id);
    ",
    },
];

/// The schema version this binary writes.
pub fn latest() -> u32 {
    u32::try_from(MIGRATIONS.len()).unwrap_or(u32::MAX)
}

/// Brings the database to the latest version; returns how many steps ran.
pub fn migrate(conn: &mut Connection) -> Result<usize, StoreError> {
    apply(conn, MIGRATIONS)
}

/// [`migrate`] with the steps given (tests use broken lists).
pub(super) fn apply(conn: &mut Connection, steps: &[Migration]) -> Result<usize, StoreError> {
    let known = u32::try_from(steps.len()).unwrap_or(u32::MAX);
    refuse_foreign_or_newer(conn, known)?;
    let mut applied = 0;
    loop {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db_error)?;
        // Read under the write lock: another process may have migrated meanwhile.
        let version = user_version(&tx)?;
        let Some(step) = steps.get(usize::try_from(version).unwrap_or(usize::MAX)) else {
            refuse_if_newer(version, known)?;
            return Ok(applied);
        };
        tx.execute_batch(step.sql).map_err(|e| {
            StoreError::Unavailable(format!(
                "schema migration {} ({}) failed: {e}",
                version + 1,
                step.description
            ))
        })?;
        tx.pragma_update(None, "user_version", version + 1)
            .map_err(db_error)?;
        tx.pragma_update(None, "application_id", APPLICATION_ID)
            .map_err(db_error)?;
        tx.commit().map_err(db_error)?;
        tracing::info!(
            version = version + 1,
            step = step.description,
            "store schema migrated"
        );
        applied += 1;
    }
}

/// Refuses a file that another program owns, or that a newer broker has migrated.
pub fn check_file(conn: &Connection) -> Result<(), StoreError> {
    refuse_foreign_or_newer(conn, latest())
}

fn refuse_foreign_or_newer(conn: &Connection, known: u32) -> Result<(), StoreError> {
    let version = user_version(conn)?;
    let app: i32 = conn
        .pragma_query_value(None, "application_id", |row| row.get(0))
        .map_err(db_error)?;
    let foreign = if version == 0 {
        // Unversioned: only an empty file is ours to create the schema in.
        let objects: i64 = conn
            .query_row("SELECT COUNT(*) FROM sqlite_master", [], |row| row.get(0))
            .map_err(db_error)?;
        objects > 0
    } else {
        app != APPLICATION_ID
    };
    if foreign {
        return Err(StoreError::Unavailable(format!(
            "the database is not a token-broker store (application_id {app:#x}, user_version {version})"
        )));
    }
    refuse_if_newer(version, known)
}

fn refuse_if_newer(version: u32, known: u32) -> Result<(), StoreError> {
    if version > known {
        return Err(StoreError::Unavailable(format!(
            "the database has schema version {version}, newer than this binary's {known}: \
             run a token-broker at least as new as the one that last wrote it"
        )));
    }
    Ok(())
}

pub fn user_version(conn: &Connection) -> Result<u32, StoreError> {
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(db_error)?;
    u32::try_from(version)
        .map_err(|_| StoreError::Unavailable(format!("the database has schema version {version}")))
}
