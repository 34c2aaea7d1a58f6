//! The IdP's signing keys: generated at start, rotated on demand. A rotated-out key
//! stays in the JWKS for a grace period so tokens it signed still verify, then goes.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::jwk::{Jwk, JwkSet, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use serde::Deserialize;

use crate::clock::UnixSeconds;

/// The algorithm new keys use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum SigningAlg {
    #[serde(rename = "RS256")]
    Rs256,
    #[serde(rename = "ES256")]
    Es256,
    #[serde(rename = "EdDSA")]
    EdDsa,
}

impl SigningAlg {
    pub fn algorithm(self) -> Algorithm {
        match self {
            Self::Rs256 => Algorithm::RS256,
            Self::Es256 => Algorithm::ES256,
            Self::EdDsa => Algorithm::EdDSA,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Es256 => "ES256",
            Self::EdDsa => "EdDSA",
        }
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "RS256" => Ok(Self::Rs256),
            "ES256" => Ok(Self::Es256),
            "EdDSA" => Ok(Self::EdDsa),
            other => Err(format!("`{other}` is not one of RS256, ES256, EdDSA")),
        }
    }
}

/// One key pair with its public JWK.
pub struct SigningKey {
    pub kid: String,
    pub alg: SigningAlg,
    encoding: EncodingKey,
    pub jwk: Jwk,
    decoding: DecodingKey,
    /// When a rotated-out key leaves the JWKS; `None` while current.
    retire_at: Option<UnixSeconds>,
}

/// Why a key could not be made.
#[derive(Debug, thiserror::Error)]
#[error("cannot generate a {alg} key: {reason}")]
pub struct KeyError {
    alg: &'static str,
    reason: String,
}

impl SigningKey {
    pub fn generate(alg: SigningAlg) -> Result<Self, KeyError> {
        let fail = |reason: String| KeyError {
            alg: alg.name(),
            reason,
        };
        let encoding = match alg {
            SigningAlg::Rs256 => {
                let pair =
                    RsaKeyPair::generate(KeySize::Rsa2048).map_err(|e| fail(e.to_string()))?;
                let der = pair.as_der().map_err(|e| fail(e.to_string()))?;
                let pem = pem_wrap("PRIVATE KEY", der.as_ref());
                EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(|e| fail(e.to_string()))?
            }
            SigningAlg::Es256 => {
                let doc = EcdsaKeyPair::generate_pkcs8(
                    &ECDSA_P256_SHA256_FIXED_SIGNING,
                    &SystemRandom::new(),
                )
                .map_err(|e| fail(e.to_string()))?;
                EncodingKey::from_ec_der(doc.as_ref())
            }
            SigningAlg::EdDsa => {
                let doc = Ed25519KeyPair::generate_pkcs8v1(&SystemRandom::new())
                    .map_err(|e| fail(e.to_string()))?;
                EncodingKey::from_ed_der(doc.as_ref())
            }
        };
        let mut jwk =
            Jwk::from_encoding_key(&encoding, alg.algorithm()).map_err(|e| fail(e.to_string()))?;
        let kid = jwk
            .thumbprint(jsonwebtoken::jwk::ThumbprintHash::SHA256)
            .map_err(|e| fail(e.to_string()))?;
        jwk.common.key_id = Some(kid.clone());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        jwk.common.key_algorithm = Some(match alg {
            SigningAlg::Rs256 => KeyAlgorithm::RS256,
            SigningAlg::Es256 => KeyAlgorithm::ES256,
            SigningAlg::EdDsa => KeyAlgorithm::EdDSA,
        });
        let decoding = DecodingKey::from_jwk(&jwk).map_err(|e| fail(e.to_string()))?;
        Ok(Self {
            kid,
            alg,
            encoding,
            jwk,
            decoding,
            retire_at: None,
        })
    }

    /// A JWT header for this key with the given `typ`.
    pub fn header(&self, typ: &str) -> Header {
        let mut header = Header::new(self.alg.algorithm());
        header.kid = Some(self.kid.clone());
        header.typ = Some(typ.to_owned());
        header
    }

    pub fn encoding(&self) -> &EncodingKey {
        &self.encoding
    }

    pub fn decoding(&self) -> &DecodingKey {
        &self.decoding
    }
}

fn pem_wrap(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut pem = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str(&format!("-----END {label}-----\n"));
    pem
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
                        encoding: k.encoding.clone(),
                        jwk: k.jwk.clone(),
                        decoding: k.decoding.clone(),
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
