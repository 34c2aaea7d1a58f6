//! The broker's own signing keys. Where they live depends on the store: a sqlite or
//! Redis store holds them as sealed records (`key_store`), shared by every replica on
//! it; the `memory` store keeps them in `tokens.key_file` (`key_file`) or, without
//! one, in the store's memory, so tokens do not survive a restart.
//!
//! Rotation (`token-broker rotate-keys`) adds a key that becomes active at a set
//! time. Every broker re-reads the key set from its store every [`RELOAD_INTERVAL`],
//! so each publishes the new key before any signs with it, provided the activation
//! is at least [`MIN_ACTIVATION_DELAY`] away; the key it replaces stays published for
//! `tokens.key_grace` after that, so tokens it signed keep verifying until they
//! expire. Keys retired for longer are pruned from the store.
//!
//! Verification reads the current [`KeySet`] through an `ArcSwap`: a reload swaps a
//! new immutable set in, readers never wait.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::{ArcSwap, Guard};
use serde::Serialize;
use serde_json::{Value, json};

use super::key_store;
use super::keypair::{KeyError, KeyPair, SigningAlg};
use crate::clock::{Clock, UnixSeconds};
use crate::config::{Config, StoreBackend, TokensConfig};
use crate::store::{Store, StoreError};

/// How often a broker re-reads its signing keys from the store.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(30);

/// How long `/jwks.json` may be cached (its `Cache-Control: max-age`).
pub const JWKS_MAX_AGE: Duration = Duration::from_secs(300);

/// The least time between a rotation and its key signing: every replica reloads
/// within [`RELOAD_INTERVAL`], and a resource server's cached `/jwks.json` is stale
/// for at most [`JWKS_MAX_AGE`].
pub const MIN_ACTIVATION_DELAY: Duration =
    Duration::from_secs(RELOAD_INTERVAL.as_secs() + JWKS_MAX_AGE.as_secs());

/// How soon to try again when the store could not be read at start-up.
const RETRY_EMPTY: Duration = Duration::from_secs(1);

/// Why the keys could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    #[error("signing key file {path}: {reason}")]
    File { path: String, reason: String },
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("signing keys in the store: {0}")]
    Store(#[from] StoreError),
    #[error("stored signing key {kid}: {reason}")]
    Stored { kid: String, reason: String },
    /// No key could be loaded yet (the store was unreachable at start-up).
    #[error("no signing key loaded yet")]
    NoKey,
    #[error("cannot sign: {0}")]
    Sign(String),
}

/// One key with its times.
#[derive(Clone)]
pub struct Entry {
    pub pair: KeyPair,
    pub created_at: UnixSeconds,
    /// From when it signs; it is published from the moment it exists.
    pub activates_at: UnixSeconds,
}

/// The keys at one moment, oldest activation first. Immutable: a reload builds a new
/// one.
pub struct KeySet {
    keys: Vec<Entry>,
    grace: u64,
}

impl KeySet {
    pub fn new(mut keys: Vec<Entry>, grace: u64) -> Self {
        keys.sort_by(|a, b| (a.activates_at, &a.pair.kid).cmp(&(b.activates_at, &b.pair.kid)));
        Self { keys, grace }
    }

    /// The key that signs at `now`: the newest one already active.
    fn active(&self, now: UnixSeconds) -> Option<&Entry> {
        self.keys
            .iter()
            .rev()
            .find(|k| k.activates_at <= now)
            .or(self.keys.first())
    }

    /// When the key at `index` leaves `/jwks.json`: the grace after its successor
    /// activates (`None`: it has no successor yet).
    fn published_until(&self, index: usize) -> Option<UnixSeconds> {
        self.keys
            .get(index + 1)
            .map(|next| next.activates_at.saturating_add(self.grace))
    }

    /// Whether the key at `index` is still published at `now`.
    fn published(&self, index: usize, now: UnixSeconds) -> bool {
        self.published_until(index).is_none_or(|until| now < until)
    }

    /// Signs `claims` with the active key; the header names its `kid` and `typ`.
    pub fn sign<T: Serialize>(
        &self,
        typ: &str,
        claims: &T,
        now: UnixSeconds,
    ) -> Result<String, SigningError> {
        let key = self.active(now).ok_or(SigningError::NoKey)?;
        jsonwebtoken::encode(&key.pair.header(typ), claims, key.pair.encoding())
            .map_err(|e| SigningError::Sign(e.to_string()))
    }

    /// The published key named `kid`, for verification, with the time it stops being
    /// published (`None`: not scheduled), after which nothing it signed is accepted.
    pub fn find(&self, kid: &str, now: UnixSeconds) -> Option<(&KeyPair, Option<UnixSeconds>)> {
        self.keys
            .iter()
            .enumerate()
            .find(|(i, k)| k.pair.kid == kid && self.published(*i, now))
            .map(|(i, k)| (&k.pair, self.published_until(i)))
    }

    /// `/jwks.json`: the public halves of the published keys.
    pub fn jwks(&self, now: UnixSeconds) -> Value {
        let keys: Vec<Value> = self
            .published_entries(now)
            .filter_map(|k| serde_json::to_value(&k.pair.jwk).ok())
            .collect();
        json!({ "keys": keys })
    }

    /// The keys still published at `now`.
    pub fn published_entries(&self, now: UnixSeconds) -> impl Iterator<Item = &Entry> {
        self.keys
            .iter()
            .enumerate()
            .filter(move |(i, _)| self.published(*i, now))
            .map(|(_, k)| k)
    }

    /// The `kid`s of keys retired for longer than the grace at `now`.
    pub fn retired(&self, now: UnixSeconds) -> Vec<String> {
        self.keys
            .iter()
            .enumerate()
            .filter(|(i, _)| !self.published(*i, now))
            .map(|(_, k)| k.pair.kid.clone())
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn entries(&self) -> &[Entry] {
        &self.keys
    }
}

/// The broker's keys: the current [`KeySet`] and, when they live in a store, how to
/// re-read it.
pub struct SigningKeys {
    current: ArcSwap<KeySet>,
    store: Option<Arc<dyn Store>>,
    alg: SigningAlg,
    grace: u64,
}

impl SigningKeys {
    /// The keys `config` asks for: with the `memory` store and `tokens.key_file`, the
    /// file; otherwise the store's (sealed in a durable one).
    pub fn for_config(
        config: &Config,
        store: Arc<dyn Store>,
        now: UnixSeconds,
    ) -> Result<Self, SigningError> {
        let memory = config.store.backend == StoreBackend::Memory;
        if memory && config.tokens.key_file.is_some() {
            return Self::load_or_create(&config.tokens, now);
        }
        if memory {
            tracing::warn!(
                "the memory store keeps the signing keys in memory: issued tokens do not survive a restart"
            );
        }
        Self::in_store(store, &config.tokens, now)
    }

    /// Reads `tokens.key_file` (creating it with one key when absent) or, without a
    /// file, generates one key in memory. Never reloaded.
    pub fn load_or_create(config: &TokensConfig, now: UnixSeconds) -> Result<Self, SigningError> {
        let alg = SigningAlg::parse(&config.algorithm).map_err(SigningError::Sign)?;
        let grace = config.key_grace.as_secs();
        let keys = match &config.key_file {
            None => vec![Entry {
                pair: KeyPair::generate(alg)?,
                created_at: now,
                activates_at: 0,
            }],
            Some(path) => {
                if !path.exists() {
                    let pair = KeyPair::generate(alg)?;
                    let kid = pair.kid.clone();
                    super::key_file::write(
                        path,
                        &[Entry {
                            pair,
                            created_at: now,
                            activates_at: 0,
                        }],
                    )?;
                    tracing::info!(path = %path.display(), %kid, "created the signing key file");
                }
                super::key_file::read(path)?
            }
        };
        Ok(Self {
            current: ArcSwap::from_pointee(KeySet::new(keys, grace)),
            store: None,
            alg,
            grace,
        })
    }

    /// The keys held by `store`: created there on the first start (or imported from
    /// `tokens.key_file`), then re-read by [`reload`](Self::reload). Blocks on the
    /// store (call it at start-up). When the store is unreachable, the broker starts
    /// with no key — token requests answer 503 — and the reloads keep trying.
    pub fn in_store(
        store: Arc<dyn Store>,
        config: &TokensConfig,
        now: UnixSeconds,
    ) -> Result<Self, SigningError> {
        let alg = SigningAlg::parse(&config.algorithm).map_err(SigningError::Sign)?;
        let grace = config.key_grace.as_secs();
        let loaded = run_to_completion(key_store::load(store.as_ref(), config, now))?;
        let keys = match loaded {
            Err(SigningError::Store(StoreError::Unavailable(reason))) => {
                tracing::warn!(%reason, "cannot read the signing keys from the store yet: retrying");
                Vec::new()
            }
            other => other?,
        };
        Ok(Self {
            current: ArcSwap::from_pointee(KeySet::new(keys, grace)),
            store: Some(store),
            alg,
            grace,
        })
    }

    /// The current key set; cheap (no lock, usually no reference count).
    pub fn snapshot(&self) -> Guard<Arc<KeySet>> {
        self.current.load()
    }

    /// Signs `claims` with the key active at `now`.
    pub fn sign<T: Serialize>(
        &self,
        typ: &str,
        claims: &T,
        now: UnixSeconds,
    ) -> Result<String, SigningError> {
        self.snapshot().sign(typ, claims, now)
    }

    /// `/jwks.json` at `now`.
    pub fn jwks(&self, now: UnixSeconds) -> Value {
        self.snapshot().jwks(now)
    }

    /// Re-reads the keys from the store (creating one if it lost them all), makes
    /// them current, and prunes keys retired for longer than the grace. Does nothing
    /// for keys not kept in a store.
    pub async fn reload(&self, now: UnixSeconds) -> Result<(), SigningError> {
        let Some(store) = &self.store else {
            return Ok(());
        };
        let keys = key_store::ensure(store.as_ref(), self.alg, now).await?;
        let set = KeySet::new(keys, self.grace);
        key_store::prune(store.as_ref(), &set, now).await?;
        self.current.store(Arc::new(set));
        Ok(())
    }
}

/// Reloads `keys` every [`RELOAD_INTERVAL`] (every second while none could be read)
/// for as long as the broker runs.
pub async fn reload_periodically(keys: Arc<SigningKeys>, clock: Clock) {
    if keys.store.is_none() {
        return;
    }
    loop {
        let wait = if keys.snapshot().is_empty() {
            RETRY_EMPTY
        } else {
            RELOAD_INTERVAL
        };
        actix_web::rt::time::sleep(wait).await;
        if let Err(error) = keys.reload(clock.unix()).await {
            tracing::warn!(%error, "cannot reload the signing keys: keeping the current ones");
        }
    }
}

/// Runs `work` on a runtime of its own, on a thread of its own, and waits: the
/// start-up load happens before the broker's own runtime serves anything.
fn run_to_completion<T: Send>(work: impl Future<Output = T> + Send) -> Result<T, SigningError> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map(|runtime| runtime.block_on(work))
                    .map_err(|e| SigningError::Sign(format!("cannot start a runtime: {e}")))
            })
            .join()
            .unwrap_or_else(|_| Err(SigningError::Sign("key loading panicked".to_owned())))
    })
}

#[cfg(test)]
mod tests;
