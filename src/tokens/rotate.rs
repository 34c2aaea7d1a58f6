//! `token-broker rotate-keys`: adds a signing key that activates later, where the
//! configuration keeps the keys — the store (sqlite, Redis), or `tokens.key_file`
//! with the `memory` store.

use std::time::Duration;

use super::key_file::rotate_file;
use super::key_store;
use super::keypair::SigningAlg;
use super::signing::{MIN_ACTIVATION_DELAY, RELOAD_INTERVAL, SigningKeys};
use crate::clock::UnixSeconds;
use crate::config::{Config, StoreBackend};

/// Why no key was added.
#[derive(Debug, thiserror::Error)]
pub enum RotateError {
    /// The configuration or the arguments do not allow a rotation.
    #[error("{0}")]
    Refused(String),
    /// The keys could not be read or written.
    #[error("{0}")]
    Failed(String),
}

/// Adds a key active `activate_in` from `now`; returns its `kid`.
pub fn rotate_keys(
    config: &Config,
    now: UnixSeconds,
    activate_in: Duration,
) -> Result<String, RotateError> {
    if activate_in < MIN_ACTIVATION_DELAY {
        return Err(RotateError::Refused(format!(
            "--activate-in must be at least {}: every broker re-reads its keys every {} and \
             /jwks.json may be cached for the rest, and a key must be published everywhere \
             before it signs",
            humantime::format_duration(MIN_ACTIVATION_DELAY),
            humantime::format_duration(RELOAD_INTERVAL),
        )));
    }
    let activates_at = now + activate_in.as_secs();
    let failed = |e: &dyn std::fmt::Display| RotateError::Failed(e.to_string());
    if config.store.backend == StoreBackend::Memory {
        let Some(path) = &config.tokens.key_file else {
            return Err(RotateError::Refused(
                "the memory store without tokens.key_file keeps the signing keys in the \
                 broker's memory: there is nothing to rotate"
                    .to_owned(),
            ));
        };
        let alg = SigningAlg::parse(&config.tokens.algorithm).map_err(RotateError::Refused)?;
        // A first rotation before the first start creates the file with its first key.
        SigningKeys::load_or_create(&config.tokens, now).map_err(|e| failed(&e))?;
        return rotate_file(
            path,
            alg,
            now,
            activates_at,
            config.tokens.key_grace.as_secs(),
        )
        .map_err(|e| failed(&e));
    }
    let store = crate::store::open(&config.store).map_err(|e| failed(&e))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| failed(&e))?;
    runtime
        .block_on(key_store::rotate(
            store.as_ref(),
            &config.tokens,
            now,
            activates_at,
        ))
        .map_err(|e| failed(&e))
}
