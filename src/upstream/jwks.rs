//! The provider's signing keys, parsed for verification. Each key gets the algorithms
//! its type allows (never `none`, never an HMAC algorithm against a public key), or
//! only the one its `alg` names. Keys that cannot be used (encryption keys, unknown
//! types) are skipped one by one rather than failing the whole set.

use std::collections::HashMap;

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use serde_json::Value;

use super::UpstreamError;
use super::http::UpstreamHttp;
use super::jws::{Alg, PublicKey};
use crate::telemetry::upstream::Operation;

/// One usable verification key.
#[derive(Clone)]
pub struct VerifyKey {
    pub kid: Option<String>,
    pub key: PublicKey,
    /// The algorithms a token signed by this key may declare.
    pub algorithms: Vec<Alg>,
}

/// A published signing key the broker cannot use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub kid: Option<String>,
    pub why: String,
}

impl std::fmt::Display for Skipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.kid {
            Some(kid) => write!(f, "{kid}: {}", self.why),
            None => write!(f, "(no kid): {}", self.why),
        }
    }
}

/// The usable keys of one JWKS.
#[derive(Clone, Default)]
pub struct KeySet {
    by_kid: HashMap<String, VerifyKey>,
    without_kid: Vec<VerifyKey>,
    /// The published keys that cannot verify anything, and why (encryption keys are
    /// not among them: they are meant for something else).
    pub skipped: Vec<Skipped>,
    /// The document as published (whether a `kid` is published at all, usable or
    /// not, decides whether a refetch can help).
    pub document: Value,
}

impl KeySet {
    /// Parses a JWKS document.
    pub fn parse(doc: &Value) -> Result<Self, String> {
        let keys = doc
            .get("keys")
            .and_then(Value::as_array)
            .ok_or("the document has no `keys` array")?;
        let mut set = Self {
            document: doc.clone(),
            ..Self::default()
        };
        for raw in keys {
            let key = serde_json::from_value::<Jwk>(raw.clone())
                .map_err(|_| Unusable::Other("not a JWK the broker reads".to_owned()))
                .and_then(|jwk| usable(&jwk, raw));
            match key {
                Ok(key) => match key.kid.clone() {
                    Some(kid) => {
                        set.by_kid.insert(kid, key);
                    }
                    None => set.without_kid.push(key),
                },
                Err(Unusable::Encryption) => {}
                Err(Unusable::Other(why)) => set.skipped.push(Skipped {
                    kid: raw.get("kid").and_then(Value::as_str).map(str::to_owned),
                    why,
                }),
            }
        }
        Ok(set)
    }

    /// The key for a token's `kid`; a token without `kid` may use a key without one.
    pub fn find(&self, kid: Option<&str>) -> Option<&VerifyKey> {
        match kid {
            Some(kid) => self.by_kid.get(kid),
            None if self.by_kid.is_empty() && self.without_kid.len() == 1 => {
                self.without_kid.first()
            }
            None => None,
        }
    }

    /// The set's one key, whatever its `kid`: a client assertion without `kid` (the
    /// MCP SDK signs them so) is verified by a client that publishes a single key.
    pub fn only(&self) -> Option<&VerifyKey> {
        match (self.by_kid.len(), self.without_kid.len()) {
            (1, 0) => self.by_kid.values().next(),
            (0, 1) => self.without_kid.first(),
            _ => None,
        }
    }

    pub fn len(&self) -> usize {
        self.by_kid.len() + self.without_kid.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn kids(&self) -> Vec<&str> {
        let mut kids: Vec<&str> = self.by_kid.keys().map(String::as_str).collect();
        kids.sort_unstable();
        kids
    }
}

/// Why a published key is not used.
enum Unusable {
    /// `use: enc`: not a signing key at all.
    Encryption,
    Other(String),
}

/// The key `jwk` publishes, with what it may verify. `raw` is the JWK as published:
/// jsonwebtoken reads names it does not know (ES512, curves, key types) as unknown.
fn usable(jwk: &Jwk, raw: &Value) -> Result<VerifyKey, Unusable> {
    let member = |name: &str| raw.get(name).and_then(Value::as_str);
    let alg = member("alg");
    if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
        return Err(Unusable::Encryption);
    }
    let unusable = |why: String| Err(Unusable::Other(why));
    let by_type: Vec<Alg> = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Alg::ALL.into_iter().filter(|a| a.is_rsa()).collect(),
        AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => {
            vec![Alg::ES256]
        }
        AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P384 => {
            vec![Alg::ES384]
        }
        AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P521 => {
            vec![Alg::ES512]
        }
        AlgorithmParameters::OctetKeyPair(okp) if okp.curve == EllipticCurve::Ed25519 => {
            vec![Alg::EdDSA]
        }
        // Symmetric keys are never accepted from a JWKS.
        AlgorithmParameters::OctetKey(_) => {
            return unusable("a symmetric key, never accepted from a JWKS".to_owned());
        }
        _ => return unusable(not_supported(member("kty"), member("crv"))),
    };
    let algorithms = match alg {
        None => by_type,
        Some(named) => match named.parse::<Alg>() {
            Ok(named) if by_type.contains(&named) => vec![named],
            Ok(named) => return unusable(format!("its alg {named} does not fit its key type")),
            Err(_) => return unusable(format!("its alg `{named}` is not one the broker verifies")),
        },
    };
    let Some(key) = PublicKey::from_jwk(jwk) else {
        return unusable("its key material is not valid".to_owned());
    };
    Ok(VerifyKey {
        kid: jwk.common.key_id.clone(),
        key,
        algorithms,
    })
}

/// The reason for a key of a type or curve the broker does not verify with.
fn not_supported(kty: Option<&str>, crv: Option<&str>) -> String {
    let kty = kty.unwrap_or("(none)");
    match crv {
        Some(crv) => format!("its key type {kty} with curve {crv} is not supported"),
        None => format!("its key type {kty} is not supported"),
    }
}

/// Fetches and parses the JWKS at `uri`.
pub async fn fetch(http: &UpstreamHttp, uri: &str) -> Result<KeySet, UpstreamError> {
    let doc: Value = http.get_json(Operation::Jwks, uri).await?;
    KeySet::parse(&doc).map_err(|reason| UpstreamError::Invalid {
        url: uri.to_owned(),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn encryption_symmetric_and_unknown_keys_are_skipped() {
        let doc = json!({"keys": [
            {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
            {"kty": "RSA", "use": "enc", "kid": "enc", "n": "sXch", "e": "AQAB", "alg": "RSA-OAEP"},
            {"kty": "weird", "kid": "x"},
            {"kty": "EC", "crv": "P-256", "kid": "ec",
             "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
             "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}
        ]});
        let set = KeySet::parse(&doc).unwrap();
        assert_eq!(set.kids(), ["ec"]);
        // The encryption key is meant for something else: not reported.
        let skipped: Vec<String> = set.skipped.iter().map(ToString::to_string).collect();
        assert_eq!(
            skipped,
            [
                "hmac: a symmetric key, never accepted from a JWKS",
                "x: its key type weird is not supported"
            ]
        );
        assert_eq!(set.find(Some("ec")).unwrap().algorithms, [Alg::ES256]);
        assert!(set.find(Some("hmac")).is_none());
    }

    #[test]
    fn a_named_alg_narrows_the_allowed_list() {
        let doc = json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": "k", "alg": "ES256",
            "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
            "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]});
        let set = KeySet::parse(&doc).unwrap();
        assert_eq!(set.find(Some("k")).unwrap().algorithms, [Alg::ES256]);
        assert!(KeySet::parse(&json!({"nokeys": []})).is_err());
    }
}
