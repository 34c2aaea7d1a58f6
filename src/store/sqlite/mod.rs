//! The durable store: one sqlite file (WAL, `synchronous = FULL`), its schema
//! migrated at start-up, the provider's tokens and proxied clients' upstream
//! credentials sealed (see `store::seal`).
//!
//! rusqlite blocks, so every call runs on tokio's blocking pool, never on an async
//! worker. One connection behind a mutex serves them all: each operation is a few
//! indexed statements, and one writer is all sqlite allows anyway.

mod clients;
mod codec;
mod connection;
mod grants;
mod migrations;
mod rotate;
mod secrets;
mod signing_keys;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, TransactionBehavior};

use self::codec::db_error;
use super::seal::Sealer;
use super::{
    Grant, GrantFilter, GrantRow, Listing, Page, PassthroughToken, RefreshRecord, RotateOutcome,
    Store, StoreError, StoredClient, StoredSigningKey, UpstreamTokens,
};
use crate::clock::UnixSeconds;
use crate::store::signing_keys::CONSENT_COOKIE_KEY;

pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    conn: Mutex<Connection>,
    sealer: Sealer,
    path: PathBuf,
}

impl SqliteStore {
    /// Opens (creating when absent) the store at `path` and migrates its schema. This
    /// blocks on file I/O: call it at start-up, or from a blocking thread. Fails on a
    /// file another program owns or one a newer broker has migrated.
    pub fn open(path: &Path, sealer: Sealer) -> Result<Self, StoreError> {
        let mut conn = connection::open(path)?;
        // Refuse a foreign or newer file before changing anything in it.
        migrations::check_file(&conn)?;
        connection::configure(&conn)?;
        migrations::migrate(&mut conn)?;
        Ok(Self {
            inner: Arc::new(Inner {
                conn: Mutex::new(conn),
                sealer,
                path: path.to_owned(),
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs `op` on the connection on the blocking pool.
    async fn run<T, F>(&self, op: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection, &Sealer) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            // A panic inside `op` rolled back its transaction while unwinding, so the
            // connection is consistent: keep serving rather than fail forever.
            let mut conn = inner.conn.lock().unwrap_or_else(PoisonError::into_inner);
            op(&mut conn, &inner.sealer)
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("store task failed: {e}")))?
    }

    /// Runs `op` inside one `IMMEDIATE` transaction.
    async fn write<T, F>(&self, op: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &Sealer) -> Result<T, StoreError> + Send + 'static,
    {
        self.run(|conn, sealer| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db_error)?;
            let out = op(&tx, sealer)?;
            tx.commit().map_err(db_error)?;
            Ok(out)
        })
        .await
    }
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.inner.path)
            .field("sealer", &self.inner.sealer)
            .finish()
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn put_client(&self, client: StoredClient) -> Result<(), StoreError> {
        self.run(move |c, s| clients::put(c, s, &client)).await
    }

    async fn get_client(&self, client_id: &str) -> Result<Option<StoredClient>, StoreError> {
        let id = client_id.to_owned();
        self.run(move |c, s| clients::get(c, s, &id)).await
    }

    async fn delete_client(&self, client_id: &str) -> Result<bool, StoreError> {
        let id = client_id.to_owned();
        self.run(move |c, _| clients::delete(c, &id)).await
    }

    async fn touch_client(&self, client_id: &str, at: UnixSeconds) -> Result<(), StoreError> {
        let id = client_id.to_owned();
        self.run(move |c, _| clients::touch(c, &id, at)).await
    }

    async fn stale_clients(
        &self,
        unused_before: UnixSeconds,
        idle_before: UnixSeconds,
    ) -> Result<Vec<StoredClient>, StoreError> {
        self.run(move |c, s| clients::stale(c, s, unused_before, idle_before))
            .await
    }

    async fn count_clients(&self) -> Result<u64, StoreError> {
        self.run(|c, _| clients::count(c)).await
    }

    async fn list_clients(&self, page: &Page) -> Result<Listing<StoredClient>, StoreError> {
        let page = page.clone();
        self.run(move |c, s| clients::list(c, s, &page)).await
    }

    async fn put_grant(&self, grant: Grant) -> Result<(), StoreError> {
        self.run(move |c, s| grants::put_grant(c, s, &grant)).await
    }

    async fn list_grants(
        &self,
        filter: &GrantFilter,
        page: &Page,
    ) -> Result<Listing<GrantRow>, StoreError> {
        let (filter, page) = (filter.clone(), page.clone());
        self.run(move |c, s| grants::list(c, s, &filter, &page))
            .await
    }

    async fn grant_row(&self, grant_id: &str) -> Result<Option<GrantRow>, StoreError> {
        let id = grant_id.to_owned();
        self.run(move |c, s| grants::get_row(c, s, &id)).await
    }

    async fn get_grant(&self, grant_id: &str) -> Result<Option<Grant>, StoreError> {
        let id = grant_id.to_owned();
        self.run(move |c, s| grants::get_grant(c, s, &id)).await
    }

    async fn set_upstream_tokens(
        &self,
        grant_id: &str,
        tokens: UpstreamTokens,
    ) -> Result<(), StoreError> {
        let id = grant_id.to_owned();
        self.run(move |c, s| grants::set_upstream(c, s, &id, &tokens))
            .await
    }

    async fn revoke_grant(
        &self,
        grant_id: &str,
        now: UnixSeconds,
    ) -> Result<Option<Grant>, StoreError> {
        let id = grant_id.to_owned();
        self.write(move |tx, s| {
            grants::revoke(tx, &id, now)?;
            grants::get_grant(tx, s, &id)
        })
        .await
    }

    async fn put_refresh(&self, record: RefreshRecord) -> Result<(), StoreError> {
        self.run(move |c, _| grants::put_refresh(c, &record)).await
    }

    async fn find_refresh(&self, hash: &[u8; 32]) -> Result<Option<RefreshRecord>, StoreError> {
        let hash = *hash;
        self.run(move |c, _| grants::find_refresh(c, &hash)).await
    }

    async fn delete_refresh(&self, hash: &[u8; 32]) -> Result<bool, StoreError> {
        let hash = *hash;
        self.run(move |c, _| grants::delete_refresh(c, &hash)).await
    }

    async fn rotate_refresh(
        &self,
        presented: [u8; 32],
        successor: RefreshRecord,
        now: UnixSeconds,
        grace: Duration,
    ) -> Result<RotateOutcome, StoreError> {
        self.run(move |c, _| rotate::rotate(c, presented, successor, now, grace))
            .await
    }

    async fn put_passthrough(
        &self,
        token: PassthroughToken,
        _now: UnixSeconds,
    ) -> Result<(), StoreError> {
        self.run(move |c, _| grants::put_passthrough(c, &token))
            .await
    }

    async fn find_passthrough(
        &self,
        digest: &[u8; 32],
        now: UnixSeconds,
    ) -> Result<Option<PassthroughToken>, StoreError> {
        let digest = *digest;
        self.run(move |c, _| grants::find_passthrough(c, &digest, now))
            .await
    }

    async fn spend_assertion(
        &self,
        digest: [u8; 32],
        until: UnixSeconds,
        now: UnixSeconds,
    ) -> Result<bool, StoreError> {
        self.write(move |tx, _| grants::spend_assertion(tx, &digest, until, now))
            .await
    }

    async fn sweep_grants(
        &self,
        now: UnixSeconds,
        revoked_before: UnixSeconds,
        idle_before: UnixSeconds,
    ) -> Result<u64, StoreError> {
        self.write(move |tx, _| grants::sweep(tx, now, revoked_before, idle_before))
            .await
    }

    async fn signing_keys(&self) -> Result<Vec<StoredSigningKey>, StoreError> {
        self.run(|c, s| signing_keys::list(c, s)).await
    }

    async fn add_signing_keys_if_none(
        &self,
        keys: Vec<StoredSigningKey>,
    ) -> Result<bool, StoreError> {
        self.write(move |tx, s| signing_keys::add_if_none(tx, s, &keys))
            .await
    }

    async fn add_signing_key(&self, key: StoredSigningKey) -> Result<(), StoreError> {
        self.run(move |c, s| signing_keys::put(c, s, &key)).await
    }

    async fn delete_signing_keys(&self, kids: &[String]) -> Result<u64, StoreError> {
        let kids = kids.to_vec();
        self.write(move |tx, _| signing_keys::delete(tx, &kids))
            .await
    }

    async fn consent_cookie_key(
        &self,
        candidate: zeroize::Zeroizing<Vec<u8>>,
    ) -> Result<zeroize::Zeroizing<Vec<u8>>, StoreError> {
        self.write(move |tx, s| secrets::get_or_insert(tx, s, CONSENT_COOKIE_KEY, &candidate))
            .await
    }

    async fn probe(&self) -> Result<(), StoreError> {
        self.run(|conn, _| {
            // Dropping the transaction uncommitted rolls it back.
            conn.transaction_with_behavior(TransactionBehavior::Immediate)
                .map(drop)
                .map_err(db_error)
        })
        .await
    }
}

#[cfg(test)]
mod tests;
