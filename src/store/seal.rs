//! Secrets at rest: the provider's tokens and a proxied client's upstream credentials
//! are sealed with XChaCha20-Poly1305 before a durable backend writes them, so a copy
//! of the database file yields no usable token.
//!
//! A sealed value is self-describing: `[format][key id length][key id][nonce][sealed]`,
//! the last part being ciphertext and tag. The key id beside the ciphertext lets a
//! value sealed under a retired key still open after the current key changes
//! (rotation: add the new key, make it current, keep the old one until every record
//! was rewritten or expired). The nonce is random per value; 192 bits make collisions
//! negligible at any volume. The associated data binds a value to its table, column
//! and primary key, so a ciphertext moved to another row or column fails to open
//! instead of handing one user's tokens to another.

use std::collections::BTreeMap;
use std::fmt;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use rand::Rng;
use zeroize::Zeroizing;

/// The only layout so far; a new one gets a new byte.
const FORMAT_V1: u8 = 1;
const NONCE_LEN: usize = 24;

/// Why a value could not be sealed or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// The current key id is not among the keys.
    #[error("encryption key `{0}` is the current key but is not configured")]
    MissingCurrentKey(String),
    /// A key id is empty or too long to be recorded beside a ciphertext.
    #[error("encryption key id `{0}` must be 1 to 255 bytes")]
    BadKeyId(String),
    /// The value was sealed under a key that is no longer configured.
    #[error("value sealed with key `{0}`, which is not configured")]
    UnknownKey(String),
    /// The value is not a sealed value of a known format.
    #[error("sealed value is malformed")]
    Malformed,
    /// Authentication failed: wrong key, tampered bytes, or a value moved from
    /// another record.
    #[error("sealed value does not open (tampered, or moved from another record)")]
    Forged,
    /// The cipher refused to encrypt (a value beyond its length limit).
    #[error("value could not be sealed")]
    Encrypt,
}

/// Seals under the current key; opens under any configured key. Cheap to share.
#[derive(Clone)]
pub struct Sealer {
    current: String,
    keys: BTreeMap<String, Zeroizing<[u8; 32]>>,
}

impl Sealer {
    /// A sealer whose new values use `current`, one of `keys`.
    pub fn new(
        current: &str,
        keys: impl IntoIterator<Item = (String, Zeroizing<[u8; 32]>)>,
    ) -> Result<Self, SealError> {
        let keys: BTreeMap<_, _> = keys.into_iter().collect();
        if let Some(bad) = keys.keys().find(|id| id.is_empty() || id.len() > 255) {
            return Err(SealError::BadKeyId(bad.clone()));
        }
        if !keys.contains_key(current) {
            return Err(SealError::MissingCurrentKey(current.to_owned()));
        }
        Ok(Self {
            current: current.to_owned(),
            keys,
        })
    }

    /// The id new values are sealed under.
    pub fn current_key_id(&self) -> &str {
        &self.current
    }

    /// Seals `plaintext` for the record named by `aad` (see [`aad`]).
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, SealError> {
        let key = self
            .keys
            .get(&self.current)
            .ok_or_else(|| SealError::MissingCurrentKey(self.current.clone()))?;
        let id = self.current.as_bytes();
        let id_len =
            u8::try_from(id.len()).map_err(|_| SealError::BadKeyId(self.current.clone()))?;
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let ciphertext = cipher(key)
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .map_err(|_| SealError::Encrypt)?;
        let mut out = Vec::with_capacity(2 + id.len() + NONCE_LEN + ciphertext.len());
        out.push(FORMAT_V1);
        out.push(id_len);
        out.extend_from_slice(id);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        Ok(out)
    }

    /// Opens a value sealed for the record named by `aad`. The plaintext is wiped
    /// when dropped.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, SealError> {
        let (&format, rest) = sealed.split_first().ok_or(SealError::Malformed)?;
        if format != FORMAT_V1 {
            return Err(SealError::Malformed);
        }
        let (&id_len, rest) = rest.split_first().ok_or(SealError::Malformed)?;
        let (id, rest) = rest
            .split_at_checked(usize::from(id_len))
            .ok_or(SealError::Malformed)?;
        let (nonce, ciphertext) = rest
            .split_at_checked(NONCE_LEN)
            .ok_or(SealError::Malformed)?;
        let id = std::str::from_utf8(id).map_err(|_| SealError::Malformed)?;
        let key = self
            .keys
            .get(id)
            .ok_or_else(|| SealError::UnknownKey(id.to_owned()))?;
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| SealError::Malformed)?;
        cipher(key)
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| SealError::Forged)
    }

    /// The key id a sealed value names, if it is well formed (to find records still
    /// under a retired key).
    pub fn key_id_of(sealed: &[u8]) -> Option<&str> {
        let id_len = usize::from(*sealed.get(1)?);
        (sealed.first() == Some(&FORMAT_V1))
            .then(|| std::str::from_utf8(sealed.get(2..2 + id_len)?).ok())
            .flatten()
    }
}

/// The cipher for one key; it wipes its copy of the key when dropped.
fn cipher(key: &[u8; 32]) -> XChaCha20Poly1305 {
    XChaCha20Poly1305::new(<&Key>::from(key))
}

/// The associated data of a sealed column: table and column, then the record's
/// primary key, separated so that no two (place, key) pairs share bytes.
pub fn aad(place: &str, primary_key: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(place.len() + 1 + primary_key.len());
    out.extend_from_slice(place.as_bytes());
    out.push(0);
    out.extend_from_slice(primary_key.as_bytes());
    out
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealer")
            .field("current", &self.current)
            .field("keys", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

#[cfg(test)]
mod tests;
