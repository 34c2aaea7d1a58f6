//! Grants and their refresh tokens as rows, with the memory store's semantics: a
//! refresh token is visible only while its grant is live, revoking deletes the chain,
//! and the provider's tokens are sealed, bound to the grant id.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::codec::{corrupt, db_error, hash, opt_unix, scopes, seal_error, secs, unix};
use crate::clock::UnixSeconds;
use crate::store::seal::{Sealer, aad};
use crate::store::{
    Grant, GrantFilter, GrantRow, Listing, Page, PassthroughToken, RefreshRecord, Rotation,
    StoreError, UpstreamTokens,
};

const SEALED_UPSTREAM: &str = "grants.upstream";
const GRANT_COLUMNS: &str =
    "grant_id, subject, client_id, scopes, resource, upstream, created_at, revoked_at";
const REFRESH_COLUMNS: &str = "r.hash, r.grant_id, r.scopes, r.issued_at, r.expires_at, \
                               r.rotated_at, r.successor";

pub fn put_grant(conn: &Connection, sealer: &Sealer, grant: &Grant) -> Result<(), StoreError> {
    let upstream = seal_upstream(sealer, &grant.grant_id, &grant.upstream)?;
    // An upsert, not `INSERT OR REPLACE`: replacing would delete the row and, through
    // the foreign key, its refresh tokens.
    conn.prepare_cached(&format!(
        "INSERT INTO grants ({GRANT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
         ON CONFLICT (grant_id) DO UPDATE SET subject = excluded.subject, \
         client_id = excluded.client_id, scopes = excluded.scopes, \
         resource = excluded.resource, upstream = excluded.upstream, \
         created_at = excluded.created_at, revoked_at = excluded.revoked_at"
    ))
    .and_then(|mut s| {
        s.execute(params![
            grant.grant_id,
            grant.subject,
            grant.client_id,
            grant.scopes.to_string(),
            grant.resource,
            upstream,
            secs(grant.created_at),
            grant.revoked_at.map(secs),
        ])
    })
    .map_err(db_error)?;
    Ok(())
}

pub fn get_grant(
    conn: &Connection,
    sealer: &Sealer,
    grant_id: &str,
) -> Result<Option<Grant>, StoreError> {
    let raw = conn
        .prepare_cached(&format!(
            "SELECT {GRANT_COLUMNS} FROM grants WHERE grant_id = ?1"
        ))
        .and_then(|mut s| s.query_row([grant_id], RawGrant::read).optional())
        .map_err(db_error)?;
    raw.map(|r| r.decode(sealer)).transpose()
}

/// The latest rotation among the grant's kept refresh tokens, beside its columns.
const LAST_REFRESHED: &str =
    "(SELECT MAX(r.rotated_at) FROM refresh_tokens r WHERE r.grant_id = grants.grant_id)";

/// A page of grants in id order. Each filter given is one equality on an indexed
/// column (`grants_by_subject`, `…_by_client`, `…_by_resource`, each ending in the id).
pub fn list(
    conn: &Connection,
    sealer: &Sealer,
    filter: &GrantFilter,
    page: &Page,
) -> Result<Listing<GrantRow>, StoreError> {
    let mut clauses = Vec::new();
    let mut values: Vec<&dyn rusqlite::ToSql> = Vec::new();
    let limit = i64::try_from(page.size() + 1).unwrap_or(i64::MAX);
    for (column, value) in [
        ("subject", &filter.subject),
        ("client_id", &filter.client_id),
        ("resource", &filter.resource),
        ("grant_id >", &page.after),
    ] {
        if let Some(value) = value {
            values.push(value);
            let op = if column.ends_with('>') { "" } else { " =" };
            clauses.push(format!("{column}{op} ?{}", values.len()));
        }
    }
    values.push(&limit);
    let sql = format!(
        "SELECT {GRANT_COLUMNS}, {LAST_REFRESHED} FROM grants {} {} ORDER BY grant_id LIMIT ?{}",
        if clauses.is_empty() { "" } else { "WHERE" },
        clauses.join(" AND "),
        values.len()
    );
    let raws = conn
        .prepare_cached(&sql)
        .and_then(|mut s| {
            s.query_map(values.as_slice(), |row| {
                Ok((RawGrant::read(row)?, row.get::<_, Option<i64>>(8)?))
            })?
            .collect::<Result<Vec<_>, _>>()
        })
        .map_err(db_error)?;
    let rows = raws
        .into_iter()
        .map(|(raw, refreshed)| row(sealer, raw, refreshed))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(page.cut(rows, |r: &GrantRow| &r.grant.grant_id))
}

pub fn get_row(
    conn: &Connection,
    sealer: &Sealer,
    grant_id: &str,
) -> Result<Option<GrantRow>, StoreError> {
    let raw = conn
        .prepare_cached(&format!(
            "SELECT {GRANT_COLUMNS}, {LAST_REFRESHED} FROM grants WHERE grant_id = ?1"
        ))
        .and_then(|mut s| {
            s.query_row([grant_id], |row| {
                Ok((RawGrant::read(row)?, row.get::<_, Option<i64>>(8)?))
            })
            .optional()
        })
        .map_err(db_error)?;
    raw.map(|(raw, refreshed)| row(sealer, raw, refreshed))
        .transpose()
}

fn row(sealer: &Sealer, raw: RawGrant, refreshed: Option<i64>) -> Result<GrantRow, StoreError> {
    Ok(GrantRow {
        grant: raw.decode(sealer)?,
        last_refreshed_at: opt_unix(refreshed)?,
    })
}

pub fn set_upstream(
    conn: &Connection,
    sealer: &Sealer,
    grant_id: &str,
    tokens: &UpstreamTokens,
) -> Result<(), StoreError> {
    let upstream = seal_upstream(sealer, grant_id, tokens)?;
    conn.execute(
        "UPDATE grants SET upstream = ?1 WHERE grant_id = ?2 AND revoked_at IS NULL",
        params![upstream, grant_id],
    )
    .map_err(db_error)?;
    Ok(())
}

/// Deletes the grant's refresh tokens and marks it revoked (keeping an earlier
/// revocation time). Callers run it inside a transaction.
pub fn revoke(conn: &Connection, grant_id: &str, now: UnixSeconds) -> Result<(), StoreError> {
    conn.execute("DELETE FROM refresh_tokens WHERE grant_id = ?1", [grant_id])
        .map_err(db_error)?;
    conn.execute(
        "UPDATE grants SET revoked_at = COALESCE(revoked_at, ?1) WHERE grant_id = ?2",
        params![secs(now), grant_id],
    )
    .map_err(db_error)?;
    Ok(())
}

/// Stores a refresh token when its grant is live (a token for a revoked or unknown
/// grant is silently dropped, as in memory).
pub fn put_refresh(conn: &Connection, record: &RefreshRecord) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO refresh_tokens \
         (hash, grant_id, scopes, issued_at, expires_at, rotated_at, successor) \
         SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7 \
         WHERE EXISTS (SELECT 1 FROM grants WHERE grant_id = ?2 AND revoked_at IS NULL)",
    )
    .and_then(|mut s| {
        s.execute(params![
            record.hash,
            record.grant_id,
            record.scopes.to_string(),
            secs(record.issued_at),
            secs(record.expires_at),
            record.rotated.map(|r| secs(r.at)),
            record.rotated.map(|r| r.successor),
        ])
    })
    .map_err(db_error)?;
    Ok(())
}

/// A refresh token by hash, whether or not its grant is live, with the grant's
/// liveness.
pub fn refresh_with_liveness(
    conn: &Connection,
    hash: &[u8; 32],
) -> Result<Option<(RefreshRecord, bool)>, StoreError> {
    let found = conn
        .prepare_cached(&format!(
            "SELECT {REFRESH_COLUMNS}, \
             EXISTS (SELECT 1 FROM grants g WHERE g.grant_id = r.grant_id AND g.revoked_at IS NULL) \
             FROM refresh_tokens r WHERE r.hash = ?1"
        ))
        .and_then(|mut s| {
            s.query_row([hash], |row| Ok((RawRefresh::read(row)?, row.get::<_, bool>(7)?)))
                .optional()
        })
        .map_err(db_error)?;
    found
        .map(|(raw, live)| Ok((raw.decode()?, live)))
        .transpose()
}

pub fn find_refresh(
    conn: &Connection,
    hash: &[u8; 32],
) -> Result<Option<RefreshRecord>, StoreError> {
    Ok(refresh_with_liveness(conn, hash)?
        .filter(|(_, live)| *live)
        .map(|(record, _)| record))
}

pub fn delete_refresh(conn: &Connection, hash: &[u8; 32]) -> Result<bool, StoreError> {
    let n = conn
        .execute("DELETE FROM refresh_tokens WHERE hash = ?1", [hash])
        .map_err(db_error)?;
    Ok(n > 0)
}

pub fn put_passthrough(conn: &Connection, token: &PassthroughToken) -> Result<(), StoreError> {
    conn.execute(
        "INSERT OR REPLACE INTO passthrough_tokens (digest, grant_id, client_id, expires_at) \
         VALUES (?1, ?2, ?3, ?4)",
        params![
            &token.digest[..],
            token.grant_id,
            token.client_id,
            secs(token.expires_at)
        ],
    )
    .map_err(db_error)?;
    Ok(())
}

pub fn find_passthrough(
    conn: &Connection,
    digest: &[u8; 32],
    now: UnixSeconds,
) -> Result<Option<PassthroughToken>, StoreError> {
    conn.query_row(
        "SELECT grant_id, client_id, expires_at FROM passthrough_tokens \
         WHERE digest = ?1 AND expires_at > ?2",
        params![&digest[..], secs(now)],
        |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, i64>(2)?,
            ))
        },
    )
    .optional()
    .map_err(db_error)?
    .map(|(grant_id, client_id, expires_at)| {
        Ok(PassthroughToken {
            digest: *digest,
            grant_id,
            client_id,
            expires_at: unix(expires_at)?,
        })
    })
    .transpose()
}

/// Spends an assertion: the record of an earlier presentation that lived past `now`
/// keeps it spent. Callers run it inside a transaction.
pub fn spend_assertion(
    conn: &Connection,
    digest: &[u8; 32],
    until: UnixSeconds,
    now: UnixSeconds,
) -> Result<bool, StoreError> {
    conn.execute(
        "DELETE FROM spent_assertions WHERE digest = ?1 AND expires_at <= ?2",
        params![&digest[..], secs(now)],
    )
    .map_err(db_error)?;
    let inserted = conn
        .execute(
            "INSERT OR IGNORE INTO spent_assertions (digest, expires_at) VALUES (?1, ?2)",
            params![&digest[..], secs(until)],
        )
        .map_err(db_error)?;
    Ok(inserted == 1)
}

/// Drops expired refresh tokens, then dead grants; returns how many grants went.
/// Callers run it inside a transaction.
pub fn sweep(
    conn: &Connection,
    now: UnixSeconds,
    revoked_before: UnixSeconds,
    idle_before: UnixSeconds,
) -> Result<u64, StoreError> {
    conn.execute(
        "DELETE FROM refresh_tokens WHERE expires_at <= ?1",
        [secs(now)],
    )
    .map_err(db_error)?;
    conn.execute(
        "DELETE FROM passthrough_tokens WHERE expires_at <= ?1",
        [secs(now)],
    )
    .map_err(db_error)?;
    conn.execute(
        "DELETE FROM spent_assertions WHERE expires_at <= ?1",
        [secs(now)],
    )
    .map_err(db_error)?;
    let gone = conn
        .execute(
            "DELETE FROM grants WHERE \
             (revoked_at IS NOT NULL AND revoked_at < ?1) OR \
             (revoked_at IS NULL AND created_at < ?2 AND NOT EXISTS \
                (SELECT 1 FROM refresh_tokens r WHERE r.grant_id = grants.grant_id))",
            params![secs(revoked_before), secs(idle_before)],
        )
        .map_err(db_error)?;
    Ok(gone as u64)
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

struct RawGrant {
    grant_id: String,
    subject: String,
    client_id: String,
    scopes: String,
    resource: Option<String>,
    upstream: Vec<u8>,
    created_at: i64,
    revoked_at: Option<i64>,
}

impl RawGrant {
    fn read(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            grant_id: row.get(0)?,
            subject: row.get(1)?,
            client_id: row.get(2)?,
            scopes: row.get(3)?,
            resource: row.get(4)?,
            upstream: row.get(5)?,
            created_at: row.get(6)?,
            revoked_at: row.get(7)?,
        })
    }

    fn decode(self, sealer: &Sealer) -> Result<Grant, StoreError> {
        let plain = sealer
            .open(&aad(SEALED_UPSTREAM, &self.grant_id), &self.upstream)
            .map_err(seal_error)?;
        let upstream: UpstreamTokens =
            serde_json::from_slice(&plain).map_err(|e| corrupt(format!("upstream tokens: {e}")))?;
        Ok(Grant {
            scopes: scopes(&self.scopes)?,
            created_at: unix(self.created_at)?,
            revoked_at: opt_unix(self.revoked_at)?,
            grant_id: self.grant_id,
            subject: self.subject,
            client_id: self.client_id,
            resource: self.resource,
            upstream,
        })
    }
}

struct RawRefresh {
    hash: Vec<u8>,
    grant_id: String,
    scopes: String,
    issued_at: i64,
    expires_at: i64,
    rotated_at: Option<i64>,
    successor: Option<Vec<u8>>,
}

impl RawRefresh {
    fn read(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            hash: row.get(0)?,
            grant_id: row.get(1)?,
            scopes: row.get(2)?,
            issued_at: row.get(3)?,
            expires_at: row.get(4)?,
            rotated_at: row.get(5)?,
            successor: row.get(6)?,
        })
    }

    fn decode(self) -> Result<RefreshRecord, StoreError> {
        let rotated = match (self.rotated_at, self.successor) {
            (Some(at), Some(successor)) => Some(Rotation {
                at: unix(at)?,
                successor: hash(successor)?,
            }),
            (None, None) => None,
            _ => return Err(corrupt("refresh token half rotated")),
        };
        Ok(RefreshRecord {
            hash: hash(self.hash)?,
            grant_id: self.grant_id,
            scopes: scopes(&self.scopes)?,
            issued_at: unix(self.issued_at)?,
            expires_at: unix(self.expires_at)?,
            rotated,
        })
    }
}
