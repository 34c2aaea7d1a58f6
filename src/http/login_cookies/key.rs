//! The key that signs remembered approvals (and from which the gateway's session
//! binding key is derived): `consent.cookie_key` when set; else, with a durable store,
//! the key kept in the store (created there once, sealed, so a remembered approval or
//! a bound session survives a restart and holds on every replica); else a random key
//! of this process.

use std::sync::Arc;

use rand::Rng;
use zeroize::Zeroizing;

use crate::config::{Config, StoreBackend};
use crate::store::{Store, StoreError};

/// The key's bytes. Blocks on the store: call it at start-up.
pub(super) fn load(config: &Config, store: &Arc<dyn Store>) -> Zeroizing<Vec<u8>> {
    if let Some(secret) = &config.consent.cookie_key {
        return Zeroizing::new(secret.expose().as_bytes().to_vec());
    }
    let random = random_key();
    // The gateway binds sessions with a key derived from this one: replicas share it.
    let unshared = config.consent.remember_for.is_zero() && config.gateways.is_empty();
    if config.store.backend == StoreBackend::Memory || unshared {
        return random;
    }
    let store = store.clone();
    match run_to_completion(async move { store.consent_cookie_key(random.clone()).await }) {
        Ok(kept) => kept,
        Err(error) => {
            // The store is down at start-up: approvals remembered until the next
            // restart hold only on this process.
            tracing::warn!(%error, "cannot read the consent cookie key from the store: this process uses its own until it restarts");
            random_key()
        }
    }
}

pub(super) fn random_key() -> Zeroizing<Vec<u8>> {
    let mut bytes = Zeroizing::new(vec![0u8; 32]);
    rand::rng().fill_bytes(&mut bytes);
    bytes
}

/// Runs `work` on a runtime of its own, on a thread of its own, and waits: the
/// start-up load happens before the broker's own runtime serves anything.
fn run_to_completion<T: Send>(
    work: impl std::future::Future<Output = Result<T, StoreError>> + Send,
) -> Result<T, StoreError> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| StoreError::Unavailable(format!("cannot start a runtime: {e}")))
                    .and_then(|runtime| runtime.block_on(work))
            })
            .join()
            .unwrap_or_else(|_| Err(StoreError::Unavailable("loading panicked".to_owned())))
    })
}
