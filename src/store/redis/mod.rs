//! The shared store: one Redis that every broker replica uses, so a client registered
//! on one replica, a grant made on another and a refresh token rotated on a third
//! are the same records.
//!
//! - Records are hashes under `store.key_prefix` (see `keys`); refresh tokens expire
//!   natively with the token (`EXPIRE`, counted on the broker's clock from when they
//!   are written), grants and clients go through the sweep and the clean-up as in
//!   the other backends.
//! - Every write that must be atomic across replicas — rotating a refresh token,
//!   revoking a grant, storing a token only while its grant is live — is one Lua
//!   script (`scripts`, `lua/`); plain multi-key writes are one `MULTI`. Rust never
//!   reads and then writes.
//! - The provider's tokens and proxied clients' upstream credentials are sealed as
//!   the sqlite backend seals them (same associated data), so a dump of Redis yields
//!   no usable token; codes, refresh tokens and client secrets are only hashes.
//! - Every connection comes from one client (`connect`): plain or TLS (`rediss://`,
//!   `[store.tls]`), checked once at start-up (`first_contact`).
//! - Connections come from a `ConnectionManager`, which reconnects with backoff when
//!   Redis restarts; while Redis is away every call fails fast with
//!   `StoreError::Unavailable` (answered 503). All Redis I/O runs on the store's own
//!   thread (`runtime`).
//! - `peers` carries invalidations between replicas over pub/sub.
//! - `rate_limits` keeps rate-limit counters, so replicas share one budget;
//!   `recent_clients` registration's de-duplication memory, so they answer a
//!   repeated public registration alike.
//! - `exchange_lock` lets one replica call the provider for identical exchange
//!   misses on all of them; `refresh_lock` one replica refresh a grant's provider
//!   tokens for all of them.

mod clients;
mod codec;
mod connect;
mod exchange_lock;
mod grants;
mod keys;
mod listing;
mod login_state;
mod passthrough;
mod peers;
mod rate_limits;
mod recent_clients;
mod refresh_lock;
mod rotate;
mod runtime;
mod scripts;
mod secrets;
mod signing_keys;
mod undo;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use ::redis::Client;
use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use async_trait::async_trait;

pub use self::connect::{client, system_roots_readable};
pub use self::peers::RedisPeers;

use self::keys::Keys;
use self::runtime::IoThread;
use self::scripts::Scripts;
use super::seal::Sealer;
use super::{
    Grant, GrantFilter, GrantRow, Listing, Page, PassthroughToken, RefreshRecord, RotateOutcome,
    Store, StoreError, StoredClient, StoredSigningKey, UpstreamTokens,
};
use crate::clock::UnixSeconds;
use crate::store::signing_keys::CONSENT_COOKIE_KEY;

/// How long to wait for a connection, and for a reply, before calling Redis away. A
/// request waits at most a few of these while Redis is down, never indefinitely.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
/// Reconnection attempts behind one failing call (exponential backoff from the
/// minimum delay, jittered): few, so a request during an outage is answered 503
/// quickly; the next call tries again.
const RECONNECT_RETRIES: usize = 2;
const RECONNECT_MIN_DELAY: Duration = Duration::from_millis(50);
const RECONNECT_MAX_DELAY: Duration = Duration::from_secs(1);

#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    conn: ConnectionManager,
    client: Client,
    keys: Keys,
    sealer: Sealer,
    scripts: Scripts,
    /// The admin listing's indexes are known backfilled (`listing::ensure_indexed`).
    indexed: std::sync::atomic::AtomicBool,
    /// Where undone rotations are counted (`count_with`); none in most tests.
    metrics: std::sync::OnceLock<crate::telemetry::metrics::Metrics>,
    /// Last: the connection is dropped before its runtime stops.
    io: Arc<IoThread>,
}

impl RedisStore {
    /// A store on the Redis at `url` (`redis://…`, no TLS settings), its keys under
    /// `key_prefix`. Does not connect (see [`RedisStore::with_client`]).
    pub fn open(url: &str, key_prefix: &str, sealer: Sealer) -> Result<Self, StoreError> {
        Self::with_client(client(url, None, None)?, key_prefix, sealer)
    }

    /// A store on `client`'s Redis (see [`client`]), its keys under `key_prefix`. Does
    /// not connect: the first call does, so a broker starts (and answers 503) while
    /// Redis is still coming up. Fails only when the store's thread cannot start.
    pub fn with_client(
        client: Client,
        key_prefix: &str,
        sealer: Sealer,
    ) -> Result<Self, StoreError> {
        let io = Arc::new(IoThread::start()?);
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(RECONNECT_RETRIES)
            .set_min_delay(RECONNECT_MIN_DELAY)
            .set_max_delay(RECONNECT_MAX_DELAY);
        let conn = {
            // The manager spawns its helpers on the runtime it is built in.
            let _inside = io.handle().enter();
            ConnectionManager::new_lazy_with_config(client.clone(), config).map_err(|e| {
                StoreError::Unavailable(format!("cannot set up the redis connection: {e}"))
            })?
        };
        Ok(Self {
            inner: Arc::new(Inner {
                conn,
                client,
                keys: Keys::new(key_prefix),
                sealer,
                scripts: Scripts::new(),
                indexed: std::sync::atomic::AtomicBool::new(false),
                metrics: std::sync::OnceLock::new(),
                io,
            }),
        })
    }

    /// Counts what becomes of undone rotations in `metrics`
    /// (`token_broker_refresh_rotation_undos_total`). The first call sticks.
    pub fn count_with(&self, metrics: crate::telemetry::metrics::Metrics) {
        let _ = self.inner.metrics.set(metrics);
    }

    /// Connects once, at start-up: an error when Redis is there and refuses the
    /// broker's TLS or credentials; `Ok` when it answers or is away (see `connect`).
    pub fn first_contact(&self) -> Result<(), StoreError> {
        connect::first_contact(&self.inner.io, &self.inner.client)
    }

    /// The prefix every key starts with.
    pub fn key_prefix(&self) -> &str {
        self.inner.keys.prefix()
    }

    /// This replica's link to the others on the same Redis and prefix: publishes
    /// local invalidations and subscribes to theirs (see [`RedisPeers`]).
    pub fn peers(&self) -> RedisPeers {
        RedisPeers::start(
            self.inner.io.clone(),
            self.inner.client.clone(),
            self.inner.conn.clone(),
            self.inner.keys.channel(),
        )
    }

    /// Runs `op` on the store's runtime.
    async fn call<T, F, Fut>(&self, op: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(Arc<Inner>) -> Fut,
        Fut: Future<Output = Result<T, StoreError>> + Send + 'static,
    {
        self.inner.io.run(op(self.inner.clone())).await
    }
}

impl Inner {
    /// A handle on the shared connection (cheap: the manager is reference counted).
    fn conn(&self) -> ConnectionManager {
        self.conn.clone()
    }
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("key_prefix", &self.inner.keys.prefix())
            .field("sealer", &self.inner.sealer)
            .finish()
    }
}

#[async_trait]
impl Store for RedisStore {
    async fn put_client(&self, client: StoredClient) -> Result<(), StoreError> {
        self.call(|s| async move { clients::put(&s, &client).await })
            .await
    }

    async fn get_client(&self, client_id: &str) -> Result<Option<StoredClient>, StoreError> {
        let id = client_id.to_owned();
        self.call(|s| async move { clients::get(&s, &id).await })
            .await
    }

    async fn delete_client(&self, client_id: &str) -> Result<bool, StoreError> {
        let id = client_id.to_owned();
        self.call(|s| async move { clients::delete(&s, &id).await })
            .await
    }

    async fn touch_client(&self, client_id: &str, at: UnixSeconds) -> Result<(), StoreError> {
        let id = client_id.to_owned();
        self.call(move |s| async move { clients::touch(&s, &id, at).await })
            .await
    }

    async fn stale_clients(
        &self,
        unused_before: UnixSeconds,
        idle_before: UnixSeconds,
    ) -> Result<Vec<StoredClient>, StoreError> {
        self.call(move |s| async move { clients::stale(&s, unused_before, idle_before).await })
            .await
    }

    async fn count_clients(&self) -> Result<u64, StoreError> {
        self.call(|s| async move { clients::count(&s).await }).await
    }

    async fn list_clients(&self, page: &Page) -> Result<Listing<StoredClient>, StoreError> {
        let page = page.clone();
        self.call(|s| async move { listing::list_clients(&s, &page).await })
            .await
    }

    async fn put_grant(&self, grant: Grant) -> Result<(), StoreError> {
        self.call(|s| async move { grants::put_grant(&s, &grant).await })
            .await
    }

    async fn list_grants(
        &self,
        filter: &GrantFilter,
        page: &Page,
    ) -> Result<Listing<GrantRow>, StoreError> {
        let (filter, page) = (filter.clone(), page.clone());
        self.call(|s| async move { listing::list_grants(&s, &filter, &page).await })
            .await
    }

    async fn grant_row(&self, grant_id: &str) -> Result<Option<GrantRow>, StoreError> {
        let id = grant_id.to_owned();
        self.call(|s| async move { listing::grant_row(&s, &id).await })
            .await
    }

    async fn get_grant(&self, grant_id: &str) -> Result<Option<Grant>, StoreError> {
        let id = grant_id.to_owned();
        self.call(|s| async move { grants::get_grant(&s, &id).await })
            .await
    }

    async fn set_upstream_tokens(
        &self,
        grant_id: &str,
        tokens: UpstreamTokens,
    ) -> Result<(), StoreError> {
        let id = grant_id.to_owned();
        self.call(|s| async move { grants::set_upstream(&s, &id, &tokens).await })
            .await
    }

    async fn revoke_grant(
        &self,
        grant_id: &str,
        now: UnixSeconds,
    ) -> Result<Option<Grant>, StoreError> {
        let id = grant_id.to_owned();
        self.call(move |s| async move { grants::revoke(&s, &id, now).await })
            .await
    }

    async fn put_refresh(&self, record: RefreshRecord) -> Result<(), StoreError> {
        self.call(|s| async move { grants::put_refresh(&s, &record).await })
            .await
    }

    async fn find_refresh(&self, hash: &[u8; 32]) -> Result<Option<RefreshRecord>, StoreError> {
        let hash = *hash;
        self.call(move |s| async move { grants::find_refresh(&s, &hash).await })
            .await
    }

    async fn delete_refresh(&self, hash: &[u8; 32]) -> Result<bool, StoreError> {
        let hash = *hash;
        self.call(move |s| async move { grants::delete_refresh(&s, &hash).await })
            .await
    }

    async fn rotate_refresh(
        &self,
        presented: [u8; 32],
        successor: RefreshRecord,
        now: UnixSeconds,
        grace: Duration,
    ) -> Result<RotateOutcome, StoreError> {
        self.call(
            move |s| async move { rotate::rotate(&s, presented, &successor, now, grace).await },
        )
        .await
    }

    async fn put_passthrough(
        &self,
        token: PassthroughToken,
        now: UnixSeconds,
    ) -> Result<(), StoreError> {
        self.call(move |s| async move { passthrough::put(&s, &token, now).await })
            .await
    }

    async fn find_passthrough(
        &self,
        digest: &[u8; 32],
        now: UnixSeconds,
    ) -> Result<Option<PassthroughToken>, StoreError> {
        let digest = *digest;
        self.call(move |s| async move { passthrough::find(&s, &digest, now).await })
            .await
    }

    async fn spend_assertion(
        &self,
        digest: [u8; 32],
        until: UnixSeconds,
        now: UnixSeconds,
    ) -> Result<bool, StoreError> {
        self.call(
            move |s| async move { passthrough::spend_assertion(&s, &digest, until, now).await },
        )
        .await
    }

    async fn sweep_grants(
        &self,
        now: UnixSeconds,
        revoked_before: UnixSeconds,
        idle_before: UnixSeconds,
    ) -> Result<u64, StoreError> {
        self.call(move |s| async move { grants::sweep(&s, now, revoked_before, idle_before).await })
            .await
    }

    async fn signing_keys(&self) -> Result<Vec<StoredSigningKey>, StoreError> {
        self.call(|s| async move { signing_keys::list(&s).await })
            .await
    }

    async fn add_signing_keys_if_none(
        &self,
        keys: Vec<StoredSigningKey>,
    ) -> Result<bool, StoreError> {
        self.call(|s| async move { signing_keys::add_if_none(&s, &keys).await })
            .await
    }

    async fn add_signing_key(&self, key: StoredSigningKey) -> Result<(), StoreError> {
        self.call(|s| async move { signing_keys::put(&s, &key).await })
            .await
    }

    async fn delete_signing_keys(&self, kids: &[String]) -> Result<u64, StoreError> {
        let kids = kids.to_vec();
        self.call(|s| async move { signing_keys::delete(&s, &kids).await })
            .await
    }

    async fn consent_cookie_key(
        &self,
        candidate: zeroize::Zeroizing<Vec<u8>>,
    ) -> Result<zeroize::Zeroizing<Vec<u8>>, StoreError> {
        self.call(move |s| async move {
            secrets::get_or_insert(&s, CONSENT_COOKIE_KEY, &candidate).await
        })
        .await
    }

    async fn probe(&self) -> Result<(), StoreError> {
        self.call(|s| async move {
            ::redis::cmd("PING")
                .query_async::<()>(&mut s.conn())
                .await
                .map_err(codec::redis_error)
        })
        .await
    }
}

#[cfg(test)]
mod tests;
