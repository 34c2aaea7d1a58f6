//! Persistent state behind one trait, so backends can change without the actors
//! noticing: `memory` (tests, the default demo), `sqlite` (one durable file) and
//! `redis` (shared by several replicas, which also tell each other of invalidations
//! through it). Codes, refresh tokens and client secrets reach the store as hashes;
//! what must stay usable — the provider's tokens, a proxied client's upstream
//! credentials — a durable backend seals (`seal`). One behaviour suite (`suite`)
//! runs against every backend.

mod exchange_lock;
mod grants;
pub mod key_file;
mod listing;
mod login_state;
mod memory;
mod peers;
mod rate_limits;
mod recent_clients;
mod redis;
mod refresh_lock;
mod seal;
mod signing_keys;
mod sqlite;
#[cfg(test)]
mod suite;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use exchange_lock::{Claim, ExchangeLock, Lease, Shared};
pub use grants::{Grant, PassthroughToken, RefreshRecord, RotateOutcome, Rotation, UpstreamTokens};
pub use listing::{
    DEFAULT_PAGE, GrantFilter, GrantRow, Listing, MAX_PAGE, Page, SessionFilter, SessionRow,
};
pub use login_state::{
    Admission, CodeGrant, LoginSession, LoginState, LoginSweep, Redeemer, Redemption, Remember,
    SessionStep, StoredCode, UpstreamLeg,
};
pub use memory::{MemoryLoginState, MemoryRateLimits, MemoryRecentClients, MemoryStore};
pub use peers::Peers;
pub use rate_limits::{RateDecision, RateLimits};
pub use recent_clients::RecentClients;
pub use redis::{RedisPeers, RedisStore, system_roots_readable};
pub use refresh_lock::RefreshLock;
pub use seal::{SealError, Sealer};
pub use signing_keys::StoredSigningKey;
pub use sqlite::SqliteStore;

use crate::clock::UnixSeconds;
use crate::config::{EncryptionConfig, StoreBackend, StoreConfig};
use crate::redact::Redacted;

/// Opens the configured backend: a fresh memory store, the sqlite file (created
/// and migrated as needed) or a Redis store. Blocks on file I/O, so call it at
/// start-up; fails — with the reason — on an unreadable file, a newer schema or
/// missing keys. Redis is not contacted until the first call (see [`open_shared`]).
pub fn open(config: &StoreConfig) -> Result<Arc<dyn Store>, StoreError> {
    open_shared(config, None).map(|opened| opened.store)
}

/// The configured store and, when replicas share it, their invalidation channel.
pub struct OpenedStore {
    pub store: Arc<dyn Store>,
    /// `Some` for Redis: give it to the Invalidator (`with_peers`) and send it
    /// `Listen(peers.subscribe())`, so a revoke on one replica reaches the others.
    pub peers: Option<RedisPeers>,
    /// Login sessions and proxy codes: in Redis when replicas share it (a login may
    /// move between them), else in this process's memory.
    pub login_state: Arc<dyn LoginState>,
    /// Rate-limit counters: in Redis when replicas share it (one budget for all of
    /// them), else in this process's memory.
    pub rate_limits: Arc<dyn RateLimits>,
    /// Registration's de-duplication memory: likewise.
    pub recent_clients: Arc<dyn RecentClients>,
    /// `Some` for Redis: give it to the Exchanger (`with_replicas`), so identical
    /// exchange misses on several replicas are one provider call.
    pub exchange_lock: Option<Arc<dyn ExchangeLock>>,
    /// `Some` for Redis: give it to `RefreshOnce` (`with_lock`), so concurrent
    /// refreshes of one grant's provider tokens on several replicas are one call.
    pub refresh_lock: Option<Arc<dyn RefreshLock>>,
}

/// [`open`], with the peers of a shared store (and its counters in `metrics`). Synchronous: a Redis store connects
/// lazily, and a broker started while Redis is down answers 503 until it is up; one
/// first contact (a few seconds at most) refuses a Redis that rejects the broker's
/// TLS or credentials.
pub fn open_shared(
    config: &StoreConfig,
    metrics: Option<&crate::telemetry::metrics::Metrics>,
) -> Result<OpenedStore, StoreError> {
    let sealed = |backend: &str| match (&config.encryption, &config.key_file) {
        (Some(keys), _) => sealer(keys),
        (None, Some(path)) => generated_sealer(path),
        (None, None) => Err(StoreError::Unavailable(format!(
            "the {backend} store needs [store.encryption]"
        ))),
    };
    match &config.backend {
        StoreBackend::Memory => Ok(OpenedStore {
            store: Arc::new(MemoryStore::new()),
            peers: None,
            login_state: Arc::new(MemoryLoginState::new()),
            rate_limits: Arc::new(MemoryRateLimits::new()),
            recent_clients: Arc::new(MemoryRecentClients::new()),
            exchange_lock: None,
            refresh_lock: None,
        }),
        StoreBackend::Sqlite { path } => Ok(OpenedStore {
            store: Arc::new(SqliteStore::open(path, sealed("sqlite")?)?),
            peers: None,
            login_state: Arc::new(MemoryLoginState::new()),
            rate_limits: Arc::new(MemoryRateLimits::new()),
            recent_clients: Arc::new(MemoryRecentClients::new()),
            exchange_lock: None,
            refresh_lock: None,
        }),
        StoreBackend::Redis {
            url,
            password,
            key_prefix,
            tls,
        } => {
            let client = redis::client(url.expose(), password.as_ref(), tls.as_ref())?;
            let store = RedisStore::with_client(client, key_prefix, sealed("redis")?)?;
            if let Some(metrics) = metrics {
                store.count_with(metrics.clone());
            }
            store.first_contact()?;
            Ok(OpenedStore {
                peers: Some(store.peers()),
                login_state: Arc::new(store.clone()),
                rate_limits: Arc::new(store.clone()),
                recent_clients: Arc::new(store.clone()),
                exchange_lock: Some(Arc::new(store.clone())),
                refresh_lock: Some(Arc::new(store.clone())),
                store: Arc::new(store),
            })
        }
    }
}

/// The sealer for the key the broker keeps in `path` (created on the first start).
fn generated_sealer(path: &std::path::Path) -> Result<Sealer, StoreError> {
    let loaded =
        key_file::load_or_create(path).map_err(|e| StoreError::Unavailable(e.to_string()))?;
    if loaded.created {
        tracing::info!(
            path = %path.display(),
            key_id = %loaded.key_id,
            "created the store key file: back it up with the database, which cannot be read without it"
        );
    }
    Sealer::new(&loaded.key_id, [(loaded.key_id.clone(), loaded.key)])
        .map_err(|e| StoreError::Unavailable(e.to_string()))
}

/// The sealer for the configured keys.
pub fn sealer(config: &EncryptionConfig) -> Result<Sealer, StoreError> {
    Sealer::new(
        &config.key_id,
        config
            .keys
            .iter()
            .map(|(id, key)| (id.clone(), zeroize::Zeroizing::new(*key.expose()))),
    )
    .map_err(|e| StoreError::Unavailable(e.to_string()))
}

/// Where a registered client came from. `Debug` hides the upstream secret and the
/// registration access token.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ClientOrigin {
    /// Registered at the broker (`registration.mode = "local"`).
    Local,
    /// Registered at the broker, which registered a client upstream for it.
    Proxied {
        upstream_client_id: String,
        /// The upstream secret. Kept in the clear in memory; sealed at rest.
        upstream_client_secret: Option<String>,
        /// RFC 7592 management, when the provider offered it (the token sealed at rest).
        registration_client_uri: Option<String>,
        registration_access_token: Option<String>,
        /// When the upstream secret expires (RFC 7591 §3.2.1), unix seconds; `None` or
        /// 0: never. Past it, the next login registers the client afresh.
        #[serde(default)]
        upstream_secret_expires_at: Option<u64>,
    },
    /// A Client ID Metadata Document (never stored, listed for completeness).
    MetadataDocument,
    /// A `[[clients]]` entry of the configuration (never stored: registration
    /// management cannot delete it).
    Configured,
}

impl std::fmt::Debug for ClientOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Local => f.write_str("Local"),
            Self::Proxied {
                upstream_client_id,
                upstream_client_secret,
                registration_client_uri,
                registration_access_token,
                upstream_secret_expires_at,
            } => f
                .debug_struct("Proxied")
                .field("upstream_client_id", upstream_client_id)
                .field(
                    "upstream_client_secret",
                    &Redacted::option(upstream_client_secret),
                )
                .field("registration_client_uri", registration_client_uri)
                .field(
                    "registration_access_token",
                    &Redacted::option(registration_access_token),
                )
                .field("upstream_secret_expires_at", upstream_secret_expires_at)
                .finish(),
            Self::MetadataDocument => f.write_str("MetadataDocument"),
            Self::Configured => f.write_str("Configured"),
        }
    }
}

/// A registered client as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredClient {
    pub client_id: String,
    /// SHA-256 of the client secret (secrets are 256-bit random, so a fast hash
    /// suffices); `None` for public clients.
    pub secret_hash: Option<[u8; 32]>,
    /// The registered metadata as the registration response echoed it.
    pub metadata: serde_json::Value,
    /// SHA-256 of the canonical metadata, for de-duplicating identical registrations.
    pub fingerprint: [u8; 32],
    pub issued_at: UnixSeconds,
    /// When the client last completed a login or used a token; `None` until then.
    pub last_used_at: Option<UnixSeconds>,
    pub origin: ClientOrigin,
}

/// Why the store could not answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The backend is unreachable or failed; nothing was written.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The stored bytes could not be read back.
    #[error("corrupt record: {0}")]
    Corrupt(String),
}

/// The operations the broker needs. Every write is atomic.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    async fn put_client(&self, client: StoredClient) -> Result<(), StoreError>;
    async fn get_client(&self, client_id: &str) -> Result<Option<StoredClient>, StoreError>;
    /// Removes a client; `true` when it existed.
    async fn delete_client(&self, client_id: &str) -> Result<bool, StoreError>;
    /// Records a use of the client (a completed login, a token issued).
    async fn touch_client(&self, client_id: &str, at: UnixSeconds) -> Result<(), StoreError>;
    /// Clients with no use since `unused_before` (never used and issued before it) or
    /// last used before `idle_before`: the candidates for clean-up.
    async fn stale_clients(
        &self,
        unused_before: UnixSeconds,
        idle_before: UnixSeconds,
    ) -> Result<Vec<StoredClient>, StoreError>;
    async fn count_clients(&self) -> Result<u64, StoreError>;
    /// Stored clients in `client_id` order, a page after the cursor (`listing`).
    async fn list_clients(&self, page: &Page) -> Result<Listing<StoredClient>, StoreError>;

    async fn put_grant(&self, grant: Grant) -> Result<(), StoreError>;
    async fn get_grant(&self, grant_id: &str) -> Result<Option<Grant>, StoreError>;
    /// Grants matching `filter` (revoked ones too), in `grant_id` order, a page after
    /// the cursor (`listing`). On Redis the filters read index sets kept with the grants.
    async fn list_grants(
        &self,
        filter: &GrantFilter,
        page: &Page,
    ) -> Result<Listing<GrantRow>, StoreError>;
    /// One grant as the listing shows it.
    async fn grant_row(&self, grant_id: &str) -> Result<Option<GrantRow>, StoreError>;
    /// Replaces the provider's tokens of a live grant (after an upstream refresh).
    async fn set_upstream_tokens(
        &self,
        grant_id: &str,
        tokens: UpstreamTokens,
    ) -> Result<(), StoreError>;
    /// Marks the grant revoked and deletes every refresh token of it, atomically.
    /// Idempotent; returns the grant as it now is.
    async fn revoke_grant(
        &self,
        grant_id: &str,
        now: UnixSeconds,
    ) -> Result<Option<Grant>, StoreError>;
    async fn put_refresh(&self, record: RefreshRecord) -> Result<(), StoreError>;
    /// A refresh token by hash, when it exists and its grant is live. Spent tokens are
    /// kept (until they expire) to recognise replays: check `rotated` before honouring one.
    async fn find_refresh(&self, hash: &[u8; 32]) -> Result<Option<RefreshRecord>, StoreError>;
    /// Deletes one refresh token; `true` when it existed. Revoking a token the client
    /// holds goes through `revoke_grant` (RFC 7009: the whole grant goes).
    async fn delete_refresh(&self, hash: &[u8; 32]) -> Result<bool, StoreError>;
    /// Presents the token stored under `presented` (see `domain::refresh::decide`), all
    /// in one atomic step (sqlite: one `IMMEDIATE` transaction; Redis: one script), so
    /// concurrent presentations cannot both rotate: rotation marks it spent and stores
    /// `successor`; a retry within `grace` also marks the previous successor
    /// superseded (`Rotation::superseded`: kept as spent, so presenting it later is a
    /// replay); a replay revokes the grant as `revoke_grant` does. Expired, unknown and
    /// revoked-grant tokens change nothing. The successor always joins the presented
    /// token's grant, whatever its `grant_id` says.
    async fn rotate_refresh(
        &self,
        presented: [u8; 32],
        successor: RefreshRecord,
        now: UnixSeconds,
        grace: Duration,
    ) -> Result<RotateOutcome, StoreError>;
    /// Remembers a provider access token handed to a client at `now`, until
    /// `expires_at` (replacing an earlier record of the same digest).
    async fn put_passthrough(
        &self,
        token: PassthroughToken,
        now: UnixSeconds,
    ) -> Result<(), StoreError>;
    /// The record of a handed-out provider token, unless it expired by `now`.
    async fn find_passthrough(
        &self,
        digest: &[u8; 32],
        now: UnixSeconds,
    ) -> Result<Option<PassthroughToken>, StoreError>;
    /// Spends the assertion known by `digest` (an ID-JAG's issuer and `jti`,
    /// hashed) at `now`: `true` the first time, `false` while an earlier
    /// presentation's record lives (until `until`, the assertion's expiry plus the
    /// leeway). One atomic step, so of two replicas presented the same assertion at
    /// once exactly one gets `true`; sqlite keeps the record across a restart.
    async fn spend_assertion(
        &self,
        digest: [u8; 32],
        until: UnixSeconds,
        now: UnixSeconds,
    ) -> Result<bool, StoreError>;
    /// Drops refresh tokens (and passthrough records) expired before `now`, and grants revoked before
    /// `revoked_before` or left with no refresh token and created before
    /// `idle_before`. Returns how many grants went.
    async fn sweep_grants(
        &self,
        now: UnixSeconds,
        revoked_before: UnixSeconds,
        idle_before: UnixSeconds,
    ) -> Result<u64, StoreError>;

    // ---- The broker's signing keys (`tokens::signing`); durable backends seal the
    // private keys. ----

    /// Every signing key held, oldest activation first.
    async fn signing_keys(&self) -> Result<Vec<StoredSigningKey>, StoreError>;
    /// Stores `keys` only if the store holds no signing key yet, in one atomic step,
    /// so of replicas starting together on an empty store exactly one set is kept.
    /// `true` when these were stored.
    async fn add_signing_keys_if_none(
        &self,
        keys: Vec<StoredSigningKey>,
    ) -> Result<bool, StoreError>;
    /// Adds one key (a rotation), replacing a key with the same `kid`.
    async fn add_signing_key(&self, key: StoredSigningKey) -> Result<(), StoreError>;
    /// Deletes the keys named (retired ones); returns how many were there.
    async fn delete_signing_keys(&self, kids: &[String]) -> Result<u64, StoreError>;

    /// The key signing remembered consent approvals (`http::login_cookies`, when
    /// `consent.cookie_key` is unset): `candidate` is stored first if the store holds
    /// none, in one atomic step, so replicas starting together share one key. Durable
    /// backends seal it.
    async fn consent_cookie_key(
        &self,
        candidate: zeroize::Zeroizing<Vec<u8>>,
    ) -> Result<zeroize::Zeroizing<Vec<u8>>, StoreError>;

    /// Whether the store can take writes now, for `/readyz`: memory always; sqlite
    /// takes its write lock and lets it go (`BEGIN IMMEDIATE; ROLLBACK`: the file is
    /// writable and no other writer holds it); Redis answers `PING`. Changes nothing.
    /// Callers bound the wait.
    async fn probe(&self) -> Result<(), StoreError>;
}
