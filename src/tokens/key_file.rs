//! `tokens.key_file`: the broker's signing keys in a JSON file (mode 0600, written
//! atomically). The `memory` store keeps its keys here; a durable store imports them
//! once (see `key_store`).

use std::io::Write;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use super::keypair::{KeyPair, SigningAlg};
use super::signing::{Entry, KeySet, SigningError};
use crate::clock::UnixSeconds;

#[derive(Serialize, Deserialize)]
struct KeyFile {
    version: u32,
    keys: Vec<FileKey>,
}

#[derive(Serialize, Deserialize)]
struct FileKey {
    kid: String,
    alg: String,
    /// PKCS#8 DER, base64.
    private_key: String,
    created_at: UnixSeconds,
    activates_at: UnixSeconds,
}

/// `token-broker rotate-keys` on a key file: adds a key of `alg` to the file at
/// `path`, active from `activates_at`, and drops keys retired for longer than `grace`.
/// Returns the new `kid`.
pub fn rotate_file(
    path: &Path,
    alg: SigningAlg,
    now: UnixSeconds,
    activates_at: UnixSeconds,
    grace: u64,
) -> Result<String, SigningError> {
    let existing = KeySet::new(read(path)?, grace);
    let fresh = KeyPair::generate(alg)?;
    let mut keep: Vec<Entry> = existing.published_entries(now).cloned().collect();
    keep.push(Entry {
        pair: fresh.clone(),
        created_at: now,
        activates_at,
    });
    write(path, &keep)?;
    Ok(fresh.kid)
}

fn file_error(path: &Path, reason: impl ToString) -> SigningError {
    SigningError::File {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

/// The keys in the file, oldest activation first; an empty file is an error.
pub fn read(path: &Path) -> Result<Vec<Entry>, SigningError> {
    let text =
        zeroize::Zeroizing::new(std::fs::read_to_string(path).map_err(|e| file_error(path, e))?);
    let file: KeyFile = serde_json::from_str(&text).map_err(|e| file_error(path, e))?;
    if file.version != 1 {
        return Err(file_error(
            path,
            format!("unknown version {}", file.version),
        ));
    }
    let mut keys = Vec::new();
    for key in file.keys {
        let alg = SigningAlg::parse(&key.alg).map_err(|e| file_error(path, e))?;
        let der = STANDARD
            .decode(key.private_key.as_bytes())
            .map_err(|e| file_error(path, format!("key {}: {e}", key.kid)))?;
        let pair = KeyPair::from_pkcs8(alg, der)?;
        if pair.kid != key.kid {
            return Err(file_error(
                path,
                format!("key {} does not match its private key", key.kid),
            ));
        }
        keys.push(Entry {
            pair,
            created_at: key.created_at,
            activates_at: key.activates_at,
        });
    }
    if keys.is_empty() {
        return Err(file_error(path, "holds no keys"));
    }
    keys.sort_by_key(|k| k.activates_at);
    Ok(keys)
}

/// Writes the file through a temporary file in the same directory and a rename, so
/// a crash leaves either the old file or the new one; readable by the owner only.
pub fn write(path: &Path, keys: &[Entry]) -> Result<(), SigningError> {
    let file = KeyFile {
        version: 1,
        keys: keys
            .iter()
            .map(|entry| FileKey {
                kid: entry.pair.kid.clone(),
                alg: entry.pair.alg.name().to_owned(),
                private_key: STANDARD.encode(entry.pair.pkcs8()),
                created_at: entry.created_at,
                activates_at: entry.activates_at,
            })
            .collect(),
    };
    let text = zeroize::Zeroizing::new(
        serde_json::to_string_pretty(&file).map_err(|e| file_error(path, e))?,
    );
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut out = options.open(&tmp).map_err(|e| file_error(&tmp, e))?;
    out.write_all(text.as_bytes())
        .and_then(|()| out.sync_all())
        .map_err(|e| file_error(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| file_error(path, e))
}
