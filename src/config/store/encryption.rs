//! `[store.encryption]`: the keys that seal values at rest, as configured (inline,
//! `env:`, `file:`, or the current one in `TOKEN_BROKER_STORE_KEY`).

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine;
use base64::alphabet::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde::Deserialize;
use zeroize::Zeroizing;

use super::super::sections::Checker;
use super::super::{Environment, Secret};

/// The variable that may hold the current encryption key (base64), so the key need not
/// appear in the file at all.
pub const STORE_KEY_ENV: &str = "TOKEN_BROKER_STORE_KEY";

/// Standard base64 (`openssl rand -base64 32`), padding optional.
const KEY_BASE64: GeneralPurpose = GeneralPurpose::new(
    &STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// `[store.encryption]` as written. Key values are secret references.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawEncryption {
    pub key_id: Option<String>,
    pub keys: Option<BTreeMap<String, String>>,
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
        super::super::constant_time_eq(self.expose(), other.expose())
    }
}

impl fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StoreKey(<redacted>)")
    }
}

pub(super) fn encryption(
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
