//! `[store]` and `[store.encryption]`: where clients, grants and refresh tokens live,
//! and the keys that seal the provider's tokens and upstream client credentials at
//! rest (see `store::seal`).
//!
//! `backend = "redis"` takes `url` (a secret reference: the URL may carry a password)
//! and `key_prefix` (default `token-broker:`), so several brokers — or several
//! deployments — can share one Redis without reading each other's keys.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use base64::Engine;
use base64::alphabet::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde::Deserialize;
use url::Url;
use zeroize::Zeroizing;

use super::sections::Checker;
use super::{Environment, Problem, Secret};

/// The variable that may hold the current encryption key (base64), so the key need not
/// appear in the file at all.
pub const STORE_KEY_ENV: &str = "TOKEN_BROKER_STORE_KEY";

/// What every Redis key of the broker starts with unless `store.key_prefix` says otherwise.
pub const DEFAULT_KEY_PREFIX: &str = "token-broker:";

/// Standard base64 (`openssl rand -base64 32`), padding optional.
const KEY_BASE64: GeneralPurpose = GeneralPurpose::new(
    &STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// `[store]` as written.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawStore {
    pub backend: Option<String>,
    pub path: Option<String>,
    pub url: Option<String>,
    pub key_prefix: Option<String>,
    pub encryption: Option<RawEncryption>,
}

/// `[store.encryption]` as written. Key values are secret references.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawEncryption {
    pub key_id: Option<String>,
    pub keys: Option<BTreeMap<String, String>>,
}

/// `[store]`
#[derive(Debug, Clone, Default)]
pub struct StoreConfig {
    /// `backend` (with `path`, or `url` and `key_prefix`): where state lives (default
    /// `memory`).
    pub backend: StoreBackend,
    /// `[store.encryption]`: required by durable backends.
    pub encryption: Option<EncryptionConfig>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum StoreBackend {
    /// In the process: lost on restart, not shared between replicas (tests, demo).
    #[default]
    Memory,
    /// One sqlite file at `path`, kept across restarts; one broker process at a time.
    Sqlite { path: PathBuf },
    /// A Redis server shared by every replica: `url` (`redis://[user:password@]host[:port][/db]`)
    /// and `key_prefix`, which starts every key and the invalidation channel's name.
    Redis { url: RedisUrl, key_prefix: String },
}

/// A `redis://` URL. It may carry a password, so `Debug` shows only where it points.
#[derive(Clone)]
pub struct RedisUrl(Secret);

impl RedisUrl {
    /// Checks that `text` is a plain-TCP Redis URL with a host.
    pub fn parse(text: &str) -> Result<Self, String> {
        // The text is never echoed: it may hold a password.
        let url = Url::parse(text).map_err(|e| format!("is not a URL ({e})"))?;
        match url.scheme() {
            "redis" => {}
            "rediss" => {
                return Err("rediss:// (TLS) is not supported yet: use redis://".to_owned());
            }
            other => return Err(format!("scheme `{other}` is not redis://")),
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err("names no host".to_owned());
        }
        Ok(Self(Secret::new(text)))
    }

    /// The URL itself, password included, for the Redis client only.
    pub fn expose(&self) -> &str {
        self.0.expose()
    }
}

impl PartialEq for RedisUrl {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl Eq for RedisUrl {}

impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match Url::parse(self.expose()) {
            Ok(mut url) => {
                // Only the host, port and database: the user and password stay out of logs.
                let _ = url.set_username("");
                let _ = url.set_password(None);
                write!(f, "RedisUrl({url})")
            }
            Err(_) => f.write_str("RedisUrl(<unparsable>)"),
        }
    }
}

/// `[store.encryption]`
#[derive(Debug, Clone)]
pub struct EncryptionConfig {
    /// `key_id`: the key new values are sealed with. Its key comes from `keys` or from
    /// `TOKEN_BROKER_STORE_KEY`.
    pub key_id: String,
    /// `keys`: key id → base64 of 32 random bytes (inline, `env:NAME` or `file:PATH`).
    /// Keep a retired key here until no value sealed with it is left.
    pub keys: BTreeMap<String, StoreKey>,
}

/// A 256-bit store encryption key: wiped on drop, never shown by `Debug`.
#[derive(Clone)]
pub struct StoreKey(Zeroizing<[u8; 32]>);

impl StoreKey {
    pub fn new(bytes: [u8; 32]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// The key itself, for the sealer only.
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }

    fn parse(text: &str) -> Result<Self, String> {
        let bytes = Zeroizing::new(
            KEY_BASE64
                .decode(text.trim())
                .map_err(|_| "is not base64 (make one with `openssl rand -base64 32`)")?,
        );
        let key = <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| {
            format!(
                "decodes to {} bytes, not 32 (make one with `openssl rand -base64 32`)",
                bytes.len()
            )
        })?;
        Ok(Self::new(key))
    }
}

impl PartialEq for StoreKey {
    fn eq(&self, other: &Self) -> bool {
        super::constant_time_eq(self.expose(), other.expose())
    }
}

impl fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StoreKey(<redacted>)")
    }
}

pub fn store(raw: RawStore, env: &Environment, problems: &mut Vec<Problem>) -> Option<StoreConfig> {
    let mut c = Checker::new("store", problems);
    let backend_name = raw.backend.unwrap_or_else(|| "memory".to_owned());
    let redis_keys = [
        ("url", raw.url.is_some()),
        ("key_prefix", raw.key_prefix.is_some()),
    ];
    if backend_name != "redis" {
        // A URL without `backend = "redis"` would leave each replica on its own store.
        for (key, given) in redis_keys {
            if given {
                c.report(key, "only used with backend = \"redis\"");
            }
        }
    }
    let backend = match backend_name.as_str() {
        "memory" => Some(StoreBackend::Memory),
        "sqlite" => match raw.path {
            Some(path) if !path.trim().is_empty() => Some(StoreBackend::Sqlite {
                path: PathBuf::from(path),
            }),
            Some(_) => {
                c.report("path", "must not be empty");
                None
            }
            None => {
                c.report("path", "missing (required for backend = \"sqlite\")");
                None
            }
        },
        "redis" => redis(&mut c, raw.url, raw.key_prefix, env),
        other => {
            c.report(
                "backend",
                format!("`{other}` is not one of memory, sqlite, redis"),
            );
            None
        }
    };
    let durable = matches!(backend_name.as_str(), "sqlite" | "redis");
    let encryption = match raw.encryption {
        Some(raw) => encryption(&mut c, raw, env),
        None if durable => {
            c.report(
                "encryption.key_id",
                format!(
                    "missing (required for backend = \"{backend_name}\": the provider's tokens are sealed at rest)"
                ),
            );
            None
        }
        None => None,
    };
    if !c.ok() {
        return None;
    }
    Some(StoreConfig {
        backend: backend?,
        encryption,
    })
}

/// `url` (required, a secret reference) and `key_prefix` of a Redis store.
fn redis(
    c: &mut Checker<'_>,
    url: Option<String>,
    key_prefix: Option<String>,
    env: &Environment,
) -> Option<StoreBackend> {
    let url = match url {
        Some(spec) => Secret::resolve(&spec, env)
            .and_then(|secret| RedisUrl::parse(secret.expose()))
            .map_err(|message| c.report("url", message))
            .ok(),
        None => {
            c.report("url", "missing (required for backend = \"redis\")");
            None
        }
    };
    let key_prefix = key_prefix.unwrap_or_else(|| DEFAULT_KEY_PREFIX.to_owned());
    let plain = key_prefix
        .chars()
        .all(|ch| ch.is_ascii_graphic() && !matches!(ch, '*' | '?' | '[' | ']' | '\\'));
    if key_prefix.is_empty() || key_prefix.len() > 64 || !plain {
        // Glob characters would make patterns over the prefix (an operator's
        // `SCAN MATCH <prefix>*`) match other deployments' keys.
        c.report(
            "key_prefix",
            "must be 1 to 64 printable ASCII characters without spaces or * ? [ ] \\",
        );
        return None;
    }
    Some(StoreBackend::Redis {
        url: url?,
        key_prefix,
    })
}

fn encryption(
    c: &mut Checker<'_>,
    raw: RawEncryption,
    env: &Environment,
) -> Option<EncryptionConfig> {
    let mut keys = BTreeMap::new();
    for (id, spec) in raw.keys.unwrap_or_default() {
        let field = format!("encryption.keys.{id}");
        if let Err(message) = check_key_id(&id) {
            c.report(&field, message);
            continue;
        }
        match Secret::resolve(&spec, env).and_then(|s| StoreKey::parse(s.expose())) {
            Ok(key) => {
                keys.insert(id, key);
            }
            Err(message) => c.report(&field, message),
        }
    }
    let from_env = env.get(STORE_KEY_ENV).map(|text| {
        StoreKey::parse(text)
            .map_err(|message| c.report("encryption.key_id", format!("{STORE_KEY_ENV} {message}")))
    });
    let Some(key_id) = raw.key_id else {
        c.report("encryption.key_id", "missing (required)");
        return None;
    };
    if let Err(message) = check_key_id(&key_id) {
        c.report("encryption.key_id", message);
        return None;
    }
    match (from_env, keys.get(&key_id)) {
        (Some(Ok(key)), None) => {
            keys.insert(key_id.clone(), key);
        }
        (Some(Ok(key)), Some(listed)) if key != *listed => c.report(
            &format!("encryption.keys.{key_id}"),
            format!("differs from {STORE_KEY_ENV}: give the current key in one place"),
        ),
        (Some(Err(())), _) | (_, Some(_)) => {}
        (None, None) => c.report(
            "encryption.key_id",
            format!("no key `{key_id}` in store.encryption.keys, and {STORE_KEY_ENV} is not set"),
        ),
    }
    Some(EncryptionConfig { key_id, keys })
}

/// Key ids are recorded beside every sealed value: short and plain.
fn check_key_id(id: &str) -> Result<(), String> {
    let plain = id
        .chars()
        .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '-' | '_' | '.'));
    if id.is_empty() || id.len() > 64 || !plain {
        return Err(format!(
            "key id `{id}` must be 1 to 64 letters, digits, `-`, `_` or `.`"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
