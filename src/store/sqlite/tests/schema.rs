//! Schema versions: applied once, each step whole or not at all, and never a guess at
//! a file this binary does not understand.

use rusqlite::Connection;

use super::{reopen, sealer, temp_db};
use crate::store::sqlite::connection;
use crate::store::sqlite::migrations::{
    APPLICATION_ID, MIGRATIONS, Migration, apply, latest, migrate, user_version,
};
use crate::store::{SqliteStore, StoreError};

fn unavailable(result: Result<SqliteStore, StoreError>) -> String {
    match result {
        Err(StoreError::Unavailable(message)) => message,
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

#[test]
fn migrations_run_once_and_are_idempotent() {
    let (_dir, path) = temp_db();
    let mut conn = connection::open(&path).unwrap();
    connection::configure(&conn).unwrap();
    assert_eq!(user_version(&conn).unwrap(), 0);
    assert_eq!(migrate(&mut conn).unwrap(), MIGRATIONS.len());
    assert_eq!(user_version(&conn).unwrap(), latest());
    assert_eq!(migrate(&mut conn).unwrap(), 0);
    drop(conn);
    // Opening the store again (a restart) applies nothing and changes nothing.
    drop(reopen(&path));
    drop(reopen(&path));
    let conn = Connection::open(&path).unwrap();
    assert_eq!(user_version(&conn).unwrap(), latest());
    let app: i32 = conn
        .pragma_query_value(None, "application_id", |r| r.get(0))
        .unwrap();
    assert_eq!(app, APPLICATION_ID);
}

#[test]
fn a_failing_step_leaves_the_previous_version_whole() {
    let (_dir, path) = temp_db();
    let mut conn = connection::open(&path).unwrap();
    connection::configure(&conn).unwrap();
    let good = Migration {
        description: "a",
        sql: "CREATE TABLE a (x INTEGER);",
    };
    let broken = Migration {
        description: "b",
        sql: "CREATE TABLE b (x INTEGER); INSERT INTO nowhere VALUES (1);",
    };
    let err = apply(&mut conn, &[good, broken]).unwrap_err();
    assert!(err.to_string().contains("schema migration 2 (b)"), "{err}");
    assert_eq!(user_version(&conn).unwrap(), 1);
    let b_exists: bool = conn
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'b')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(!b_exists, "the failed step's table was rolled back");
    let fixed = [
        Migration {
            description: "a",
            sql: "CREATE TABLE a (x INTEGER);",
        },
        Migration {
            description: "b",
            sql: "CREATE TABLE b (x INTEGER);",
        },
    ];
    assert_eq!(apply(&mut conn, &fixed).unwrap(), 1);
}

#[test]
fn a_database_with_a_newer_schema_is_refused() {
    let (_dir, path) = temp_db();
    drop(reopen(&path));
    let conn = Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", latest() + 1)
        .unwrap();
    drop(conn);
    let message = unavailable(SqliteStore::open(&path, sealer()));
    assert!(
        message.contains(&format!("schema version {}", latest() + 1))
            && message.contains("newer than this binary"),
        "{message}"
    );
    // Refusing wrote nothing: the version is still the newer one.
    let conn = Connection::open(&path).unwrap();
    assert_eq!(user_version(&conn).unwrap(), latest() + 1);
}

#[test]
fn a_database_of_another_program_is_refused() {
    let (_dir, path) = temp_db();
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch("CREATE TABLE notes (x TEXT); PRAGMA user_version = 1;")
        .unwrap();
    drop(conn);
    let message = unavailable(SqliteStore::open(&path, sealer()));
    assert!(message.contains("not a token-broker store"), "{message}");
    let conn = Connection::open(&path).unwrap();
    let mode: String = conn
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "delete", "its journal mode was left alone");
    drop(conn);
    // Unversioned but not empty: not ours to add tables to either.
    let (_dir, path) = temp_db();
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch("CREATE TABLE notes (x TEXT);").unwrap();
    drop(conn);
    let message = unavailable(SqliteStore::open(&path, sealer()));
    assert!(message.contains("not a token-broker store"), "{message}");
    let conn = Connection::open(&path).unwrap();
    let tables: i64 = conn
        .query_row("SELECT COUNT(*) FROM sqlite_master", [], |r| r.get(0))
        .unwrap();
    assert_eq!(tables, 1, "nothing was added");
}

#[test]
fn files_that_cannot_be_a_store_are_refused() {
    let (dir, path) = temp_db();
    std::fs::write(&path, b"not a database ".repeat(300)).unwrap();
    assert!(SqliteStore::open(&path, sealer()).is_err());
    let missing = dir.path().join("no/such/dir/store.db");
    let message = unavailable(SqliteStore::open(&missing, sealer()));
    assert!(message.contains("no/such/dir"), "{message}");
}

#[cfg(unix)]
#[test]
fn the_file_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let (_dir, path) = temp_db();
    drop(reopen(&path));
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}
