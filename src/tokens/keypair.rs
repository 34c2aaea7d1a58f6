//! Asymmetric signing key pairs (RS256, ES256, EdDSA) for JWTs: generated with
//! aws-lc-rs, kept as PKCS#8 so they can be written and read back, with their public
//! JWK (`kid` = RFC 7638 thumbprint). Used by the broker's own token signing and by
//! the development IdP.

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::jwk::{Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::upstream::jws::{Alg, PublicKey};

/// The algorithm of a key.
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

    /// The algorithm verification knows it as.
    pub fn jws(self) -> Alg {
        match self {
            Self::Rs256 => Alg::RS256,
            Self::Es256 => Alg::ES256,
            Self::EdDsa => Alg::EdDSA,
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

/// Why a key could not be made or read.
#[derive(Debug, thiserror::Error)]
#[error("{alg} key: {reason}")]
pub struct KeyError {
    alg: &'static str,
    reason: String,
}

/// A private key with everything needed to sign and to publish it. `Debug` shows
/// only the `kid` and algorithm.
#[derive(Clone)]
pub struct KeyPair {
    pub kid: String,
    pub alg: SigningAlg,
    pub jwk: Jwk,
    encoding: EncodingKey,
    decoding: DecodingKey,
    public: PublicKey,
    pkcs8: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyPair({} {})", self.alg.name(), self.kid)
    }
}

impl KeyPair {
    /// A new random key.
    pub fn generate(alg: SigningAlg) -> Result<Self, KeyError> {
        let fail = |reason: String| KeyError {
            alg: alg.name(),
            reason,
        };
        let rng = SystemRandom::new();
        let pkcs8: Vec<u8> = match alg {
            SigningAlg::Rs256 => {
                let pair =
                    RsaKeyPair::generate(KeySize::Rsa2048).map_err(|e| fail(e.to_string()))?;
                let der: Pkcs8V1Der<'static> = pair.as_der().map_err(|e| fail(e.to_string()))?;
                der.as_ref().to_vec()
            }
            SigningAlg::Es256 => {
                EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                    .map_err(|e| fail(e.to_string()))?
                    .as_ref()
                    .to_vec()
            }
            SigningAlg::EdDsa => Ed25519KeyPair::generate_pkcs8v1(&rng)
                .map_err(|e| fail(e.to_string()))?
                .as_ref()
                .to_vec(),
        };
        Self::from_pkcs8(alg, pkcs8)
    }

    /// A key from its PKCS#8 DER encoding.
    pub fn from_pkcs8(alg: SigningAlg, pkcs8: Vec<u8>) -> Result<Self, KeyError> {
        let pkcs8 = Zeroizing::new(pkcs8);
        let fail = |reason: String| KeyError {
            alg: alg.name(),
            reason,
        };
        let encoding = match alg {
            SigningAlg::Rs256 => {
                let pem = Zeroizing::new(pem_wrap("PRIVATE KEY", &pkcs8));
                EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(|e| fail(e.to_string()))?
            }
            SigningAlg::Es256 => EncodingKey::from_ec_der(&pkcs8),
            SigningAlg::EdDsa => EncodingKey::from_ed_der(&pkcs8),
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
        let public = PublicKey::Jwt(decoding.clone());
        Ok(Self {
            kid,
            alg,
            jwk,
            encoding,
            decoding,
            public,
            pkcs8,
        })
    }

    /// The private key, PKCS#8 DER (for the key file only).
    pub fn pkcs8(&self) -> &[u8] {
        &self.pkcs8
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

    /// The public key, as verification takes it.
    pub fn public(&self) -> &PublicKey {
        &self.public
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_algorithm_round_trips_through_pkcs8() {
        for alg in [SigningAlg::Rs256, SigningAlg::Es256, SigningAlg::EdDsa] {
            let key = KeyPair::generate(alg).unwrap();
            let again = KeyPair::from_pkcs8(alg, key.pkcs8().to_vec()).unwrap();
            assert_eq!(again.kid, key.kid, "{alg:?}");
            let token = jsonwebtoken::encode(
                &key.header("JWT"),
                &serde_json::json!({"sub": "x"}),
                key.encoding(),
            )
            .unwrap();
            let mut validation = jsonwebtoken::Validation::new(alg.algorithm());
            validation.required_spec_claims.clear();
            validation.validate_exp = false;
            jsonwebtoken::decode::<serde_json::Value>(&token, again.decoding(), &validation)
                .unwrap();
            assert!(!format!("{key:?}").contains(&STANDARD.encode(key.pkcs8())));
        }
    }

    #[test]
    fn garbage_is_not_a_key() {
        assert!(KeyPair::from_pkcs8(SigningAlg::Rs256, vec![1, 2, 3]).is_err());
    }
}
