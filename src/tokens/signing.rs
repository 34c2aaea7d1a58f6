//! The broker's own signing keys. With `tokens.key_file` they live in a JSON file
//! (mode 0600, written atomically), created with one key on first start; without it
//! one key is generated in memory and tokens do not survive a restart.
//!
//! Rotation (`token-broker rotate-keys`) adds a key that becomes active at a set
//! time, so every replica publishes it before any replica signs with it; the key it
//! replaces stays published for `tokens.key_grace` after that, so tokens it signed
//! keep verifying until they expire.

use std::io::Write;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::keypair::{KeyError, KeyPair, SigningAlg};
use crate::clock::UnixSeconds;
use crate::config::TokensConfig;

/// Why the keys could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    #[error("signing key file {path}: {reason}")]
    File { path: String, reason: String },
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("cannot sign: {0}")]
    Sign(String),
}

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

struct Entry {
    pair: KeyPair,
    activates_at: UnixSeconds,
}

/// The broker's keys, oldest activation first.
pub struct SigningKeys {
    keys: Vec<Entry>,
    grace: u64,
}

impl SigningKeys {
    /// Reads `tokens.key_file` (creating it with one key when absent) or, without a
    /// file, generates one key in memory.
    pub fn load_or_create(config: &TokensConfig, now: UnixSeconds) -> Result<Self, SigningError> {
        let alg = SigningAlg::parse(&config.algorithm).map_err(SigningError::Sign)?;
        let grace = config.key_grace.as_secs();
        let Some(path) = &config.key_file else {
            return Ok(Self {
                keys: vec![Entry {
                    pair: KeyPair::generate(alg)?,
                    activates_at: 0,
                }],
                grace,
            });
        };
        if !path.exists() {
            let pair = KeyPair::generate(alg)?;
            write_file(path, &[(&pair, now, 0)])?;
            tracing::info!(path = %path.display(), kid = %pair.kid, "created the signing key file");
        }
        Ok(Self {
            keys: read_file(path)?,
            grace,
        })
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
        let key = self
            .active(now)
            .ok_or_else(|| SigningError::Sign("no signing key".to_owned()))?;
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
            .keys
            .iter()
            .enumerate()
            .filter(|(i, _)| self.published(*i, now))
            .filter_map(|(_, k)| serde_json::to_value(&k.pair.jwk).ok())
            .collect();
        json!({ "keys": keys })
    }
}

/// `token-broker rotate-keys`: adds a key of `alg` to the file at `path`, active from
/// `activates_at`, and drops keys retired for longer than `grace`. Returns the new `kid`.
pub fn rotate_file(
    path: &Path,
    alg: SigningAlg,
    now: UnixSeconds,
    activates_at: UnixSeconds,
    grace: u64,
) -> Result<String, SigningError> {
    let existing = SigningKeys {
        keys: read_file(path)?,
        grace,
    };
    let fresh = KeyPair::generate(alg)?;
    let mut keep: Vec<(&KeyPair, UnixSeconds, UnixSeconds)> = existing
        .keys
        .iter()
        .enumerate()
        .filter(|(i, _)| existing.published(*i, now))
        .map(|(_, k)| (&k.pair, now, k.activates_at))
        .collect();
    keep.push((&fresh, now, activates_at));
    write_file(path, &keep)?;
    Ok(fresh.kid)
}

fn file_error(path: &Path, reason: impl ToString) -> SigningError {
    SigningError::File {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

fn read_file(path: &Path) -> Result<Vec<Entry>, SigningError> {
    let text = std::fs::read_to_string(path).map_err(|e| file_error(path, e))?;
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
fn write_file(
    path: &Path,
    keys: &[(&KeyPair, UnixSeconds, UnixSeconds)],
) -> Result<(), SigningError> {
    let file = KeyFile {
        version: 1,
        keys: keys
            .iter()
            .map(|(pair, created_at, activates_at)| FileKey {
                kid: pair.kid.clone(),
                alg: pair.alg.name().to_owned(),
                private_key: STANDARD.encode(pair.pkcs8()),
                created_at: *created_at,
                activates_at: *activates_at,
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn config(path: Option<&Path>) -> TokensConfig {
        TokensConfig {
            mode: crate::config::TokenMode::Issue,
            access_token_ttl: Duration::from_secs(900),
            algorithm: "ES256".to_owned(),
            key_file: path.map(Path::to_path_buf),
            key_grace: Duration::from_secs(3_600),
        }
    }

    #[test]
    fn the_key_file_is_created_once_private_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.json");
        let first = SigningKeys::load_or_create(&config(Some(&path)), 100).unwrap();
        let again = SigningKeys::load_or_create(&config(Some(&path)), 200).unwrap();
        assert_eq!(first.jwks(200), again.jwks(200));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let token = first.sign("at+jwt", &json!({"sub": "a"}), 200).unwrap();
        let kid = jsonwebtoken::decode_header(&token).unwrap().kid.unwrap();
        assert!(again.find(&kid, 200).is_some());
    }

    #[test]
    fn rotation_publishes_first_activates_later_and_retires_after_the_grace() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.json");
        let old = SigningKeys::load_or_create(&config(Some(&path)), 0).unwrap();
        let old_kid = jsonwebtoken::decode_header(old.sign("JWT", &json!({}), 0).unwrap())
            .unwrap()
            .kid
            .unwrap();
        let new_kid = rotate_file(&path, SigningAlg::Es256, 1_000, 2_000, 3_600).unwrap();
        let keys = SigningKeys::load_or_create(&config(Some(&path)), 1_000).unwrap();
        let signer = |now| {
            jsonwebtoken::decode_header(keys.sign("JWT", &json!({}), now).unwrap())
                .unwrap()
                .kid
                .unwrap()
        };
        assert_eq!(keys.jwks(1_000)["keys"].as_array().unwrap().len(), 2);
        assert_eq!(signer(1_999), old_kid, "not active before its time");
        assert_eq!(signer(2_000), new_kid);
        assert_eq!(keys.find(&old_kid, 5_599).unwrap().1, Some(5_600));
        assert_eq!(keys.find(&new_kid, 5_599).unwrap().1, None, "no successor");
        assert!(keys.find(&old_kid, 5_599).is_some(), "within the grace");
        assert!(keys.find(&old_kid, 5_600).is_none(), "after the grace");
        assert_eq!(keys.jwks(5_600)["keys"].as_array().unwrap().len(), 1);
        // A later rotation drops the long-retired key from the file.
        rotate_file(&path, SigningAlg::Es256, 10_000, 10_000, 3_600).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains(&old_kid));
    }

    #[test]
    fn a_damaged_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.json");
        std::fs::write(&path, "{\"version\":1,\"keys\":[]}").unwrap();
        let error = SigningKeys::load_or_create(&config(Some(&path)), 0)
            .err()
            .unwrap()
            .to_string();
        assert!(error.contains("holds no keys"), "{error}");
        std::fs::write(&path, "not json").unwrap();
        assert!(SigningKeys::load_or_create(&config(Some(&path)), 0).is_err());
    }

    #[test]
    fn without_a_file_one_key_lives_in_memory() {
        let keys = SigningKeys::load_or_create(&config(None), 0).unwrap();
        assert_eq!(keys.jwks(0)["keys"].as_array().unwrap().len(), 1);
        assert_eq!(keys.jwks(0)["keys"][0]["alg"], "ES256");
        assert!(keys.jwks(0)["keys"][0].get("d").is_none(), "public only");
    }
}
