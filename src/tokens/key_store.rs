//! Signing keys kept in the store (sqlite or Redis; `memory` without a key file):
//! the first start creates one, atomically, so replicas starting together end up with
//! one key; a `tokens.key_file` left from before is imported once; a rotation adds a
//! key; retired keys are pruned.

use std::collections::BTreeSet;

use zeroize::Zeroizing;

use super::key_file;
use super::keypair::{KeyPair, SigningAlg};
use super::signing::{Entry, KeySet, SigningError};
use crate::clock::UnixSeconds;
use crate::config::TokensConfig;
use crate::store::{Store, StoredSigningKey};

/// The keys at start-up: the store's; when it has none, those of `tokens.key_file`
/// (imported once) or a new one. If both hold keys and they differ, the store's win.
pub async fn load(
    store: &dyn Store,
    config: &TokensConfig,
    now: UnixSeconds,
) -> Result<Vec<Entry>, SigningError> {
    let alg = SigningAlg::parse(&config.algorithm).map_err(SigningError::Sign)?;
    let held = store.signing_keys().await?;
    let file = match &config.key_file {
        Some(path) if path.exists() => Some((path, key_file::read(path)?)),
        _ => None,
    };
    match (held.is_empty(), file) {
        (true, Some((path, keys))) => {
            let imported = store
                .add_signing_keys_if_none(keys.iter().map(stored).collect())
                .await?;
            if imported {
                tracing::info!(
                    path = %path.display(),
                    keys = keys.len(),
                    "imported the signing keys of tokens.key_file into the store: the file is no longer read and can be removed"
                );
            }
        }
        (true, None) => return ensure(store, alg, now).await,
        (false, Some((path, keys))) => {
            let in_file: BTreeSet<&str> = keys.iter().map(|k| k.pair.kid.as_str()).collect();
            let in_store: BTreeSet<&str> = held.iter().map(|k| k.kid.as_str()).collect();
            if in_file.is_subset(&in_store) {
                tracing::info!(path = %path.display(), "tokens.key_file was imported into the store earlier: it can be removed");
            } else {
                tracing::warn!(
                    path = %path.display(),
                    "tokens.key_file holds signing keys the store does not: the store's keys are used; remove the file"
                );
            }
        }
        (false, None) => {}
    }
    store.signing_keys().await?.iter().map(entry).collect()
}

/// The store's keys, after creating one if it has none (a first start, or a store
/// that lost its data).
pub async fn ensure(
    store: &dyn Store,
    alg: SigningAlg,
    now: UnixSeconds,
) -> Result<Vec<Entry>, SigningError> {
    let mut held = store.signing_keys().await?;
    if held.is_empty() {
        let first = Entry {
            pair: KeyPair::generate(alg)?,
            created_at: now,
            activates_at: 0,
        };
        if store.add_signing_keys_if_none(vec![stored(&first)]).await? {
            tracing::info!(kid = %first.pair.kid, "created the first signing key in the store");
        }
        // Another replica may have stored its key first: use whatever is there.
        held = store.signing_keys().await?;
    }
    held.iter().map(entry).collect()
}

/// `token-broker rotate-keys` on a store: adds a new key active from `activates_at`
/// and prunes retired ones. Returns the new `kid`.
pub async fn rotate(
    store: &dyn Store,
    config: &TokensConfig,
    now: UnixSeconds,
    activates_at: UnixSeconds,
) -> Result<String, SigningError> {
    let alg = SigningAlg::parse(&config.algorithm).map_err(SigningError::Sign)?;
    let held = load(store, config, now).await?;
    let fresh = Entry {
        pair: KeyPair::generate(alg)?,
        created_at: now,
        activates_at,
    };
    store.add_signing_key(stored(&fresh)).await?;
    prune(store, &KeySet::new(held, config.key_grace.as_secs()), now).await?;
    Ok(fresh.pair.kid)
}

/// Deletes the keys of `set` retired for longer than the grace.
pub async fn prune(store: &dyn Store, set: &KeySet, now: UnixSeconds) -> Result<(), SigningError> {
    let retired = set.retired(now);
    if !retired.is_empty() {
        let deleted = store.delete_signing_keys(&retired).await?;
        if deleted > 0 {
            tracing::info!(kids = ?retired, "pruned retired signing keys from the store");
        }
    }
    Ok(())
}

fn stored(entry: &Entry) -> StoredSigningKey {
    StoredSigningKey {
        kid: entry.pair.kid.clone(),
        alg: entry.pair.alg.name().to_owned(),
        private_key: Zeroizing::new(entry.pair.pkcs8().to_vec()),
        created_at: entry.created_at,
        activates_at: entry.activates_at,
    }
}

fn entry(key: &StoredSigningKey) -> Result<Entry, SigningError> {
    let fail = |reason: String| SigningError::Stored {
        kid: key.kid.clone(),
        reason,
    };
    let alg = SigningAlg::parse(&key.alg).map_err(fail)?;
    let pair = KeyPair::from_pkcs8(alg, key.private_key.to_vec())?;
    if pair.kid != key.kid {
        return Err(fail("does not match its private key".to_owned()));
    }
    Ok(Entry {
        pair,
        created_at: key.created_at,
        activates_at: key.activates_at,
    })
}
