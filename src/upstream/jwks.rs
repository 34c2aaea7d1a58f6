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

/// The usable keys of one JWKS.
#[derive(Clone, Default)]
pub struct KeySet {
    by_kid: HashMap<String, VerifyKey>,
    without_kid: Vec<VerifyKey>,
    /// How many published keys were skipped, for logs.
    pub skipped: usize,
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
            match serde_json::from_value::<Jwk>(raw.clone())
                .ok()
                .and_then(|jwk| usable(&jwk, raw.get("alg").and_then(Value::as_str)))
            {
                Some(key) => match key.kid.clone() {
                    Some(kid) => {
                        set.by_kid.insert(kid, key);
                    }
                    None => set.without_kid.push(key),
                },
                None => set.skipped += 1,
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

/// The key `jwk` publishes, with what it may verify; `alg` is its `alg` member as
/// published (jsonwebtoken reads names it does not know, ES512 among them, as unknown).
fn usable(jwk: &Jwk, alg: Option<&str>) -> Option<VerifyKey> {
    if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
        return None;
    }
    let by_type: Vec<Alg> = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => vec![
            Alg::RS256,
            Alg::RS384,
            Alg::RS512,
            Alg::PS256,
            Alg::PS384,
            Alg::PS512,
        ],
        AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
            EllipticCurve::P256 => vec![Alg::ES256],
            EllipticCurve::P384 => vec![Alg::ES384],
            EllipticCurve::P521 => vec![Alg::ES512],
            _ => return None,
        },
        AlgorithmParameters::OctetKeyPair(okp) if okp.curve == EllipticCurve::Ed25519 => {
            vec![Alg::EdDSA]
        }
        // Symmetric keys are never accepted from a JWKS.
        _ => return None,
    };
    let algorithms = match alg {
        None => by_type,
        Some(named) => {
            let named: Alg = named.parse().ok()?;
            by_type.contains(&named).then(|| vec![named])?
        }
    };
    Some(VerifyKey {
        kid: jwk.common.key_id.clone(),
        key: PublicKey::from_jwk(jwk)?,
        algorithms,
    })
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
        assert_eq!(set.skipped, 3);
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
