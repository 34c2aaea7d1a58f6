//! The IdP's signing keys: generated at start, rotated on demand. A rotated-out key
//! stays in the JWKS for a grace period so tokens it signed still verify, then goes.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{DecodingKey, EncodingKey, Header};

use crate::clock::UnixSeconds;
use crate::tokens::keypair::KeyPair;
pub use crate::tokens::keypair::{KeyError, SigningAlg};

/// One key pair with its public JWK, and when it leaves the JWKS.
pub struct SigningKey {
    pub kid: String,
    pub alg: SigningAlg,
    pub jwk: Jwk,
    pair: Arc<KeyPair>,
    /// When a rotated-out key leaves the JWKS; `None` while current.
    retire_at: Option<UnixSeconds>,
}

impl SigningKey {
    pub fn generate(alg: SigningAlg) -> Result<Self, KeyError> {
        let pair = KeyPair::generate(alg)?;
        Ok(Self {
            kid: pair.kid.clone(),
            alg,
            jwk: pair.jwk.clone(),
            pair: Arc::new(pair),
            retire_at: None,
        })
    }

    /// A JWT header for this key with the given `typ`.
    pub fn header(&self, typ: &str) -> Header {
        self.pair.header(typ)
    }

    pub fn encoding(&self) -> &EncodingKey {
        self.pair.encoding()
    }

    pub fn decoding(&self) -> &DecodingKey {
        self.pair.decoding()
    }
}

/// The current key first, then rotated-out keys still within their grace.
pub struct KeyRing {
    alg: SigningAlg,
    grace: Duration,
    keys: RwLock<Vec<Arc<SigningKey>>>,
}

impl KeyRing {
    pub fn new(alg: SigningAlg, grace: Duration) -> Result<Self, KeyError> {
        Ok(Self {
            alg,
            grace,
            keys: RwLock::new(vec![Arc::new(SigningKey::generate(alg)?)]),
        })
    }

    pub fn alg(&self) -> SigningAlg {
        self.alg
    }

    /// The key that signs new tokens.
    pub fn current(&self) -> Option<Arc<SigningKey>> {
        self.keys.read().ok()?.first().cloned()
    }

    /// A key by `kid`, if it is still published at `now`.
    pub fn find(&self, kid: &str, now: UnixSeconds) -> Option<Arc<SigningKey>> {
        self.keys
            .read()
            .ok()?
            .iter()
            .find(|k| k.kid == kid && k.retire_at.is_none_or(|t| now < t))
            .cloned()
    }

    /// Makes a new current key (optionally of another algorithm); the old one is
    /// kept until `now + grace`. Returns the new `kid`.
    pub fn rotate(&self, alg: Option<SigningAlg>, now: UnixSeconds) -> Result<String, KeyError> {
        let fresh = SigningKey::generate(alg.unwrap_or(self.alg))?;
        let kid = fresh.kid.clone();
        let retire_at = now + self.grace.as_secs();
        if let Ok(mut keys) = self.keys.write() {
            keys.retain(|k| k.retire_at.is_none_or(|t| now < t));
            let rotated: Vec<Arc<SigningKey>> = keys
                .drain(..)
                .map(|k| match k.retire_at {
                    Some(_) => k,
                    None => Arc::new(SigningKey {
                        kid: k.kid.clone(),
                        alg: k.alg,
                        jwk: k.jwk.clone(),
                        pair: k.pair.clone(),
                        retire_at: Some(retire_at),
                    }),
                })
                .collect();
            keys.push(Arc::new(fresh));
            keys.extend(rotated);
        }
        Ok(kid)
    }

    /// The algorithms of the keys published at `now`, the current key's first: after a
    /// rotation to another algorithm, tokens of both are in circulation.
    pub fn algs(&self, now: UnixSeconds) -> Vec<&'static str> {
        let mut algs: Vec<&'static str> = Vec::new();
        if let Ok(keys) = self.keys.read() {
            for key in keys.iter().filter(|k| k.retire_at.is_none_or(|t| now < t)) {
                if !algs.contains(&key.alg.name()) {
                    algs.push(key.alg.name());
                }
            }
        }
        algs
    }

    /// The published keys at `now`.
    pub fn jwks(&self, now: UnixSeconds) -> JwkSet {
        let keys = self
            .keys
            .read()
            .map(|keys| {
                keys.iter()
                    .filter(|k| k.retire_at.is_none_or(|t| now < t))
                    .map(|k| k.jwk.clone())
                    .collect()
            })
            .unwrap_or_default();
        JwkSet { keys }
    }
}

/// base64url without padding, for `at_hash` and thumbprints.
pub fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}
