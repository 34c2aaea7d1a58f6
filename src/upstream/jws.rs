//! A compact JWS as the broker verifies it — the provider's tokens, clients'
//! assertions, ID-JAGs and its own tokens alike: the algorithms it accepts (the
//! asymmetric ones of RFC 7518 §3.1 and RFC 8037, never `none`, never an HMAC: a
//! published key is no shared secret), the public keys, and the signature over the
//! first two parts. jsonwebtoken verifies all but ES512 (ECDSA P-521, which Keycloak
//! and ORY Hydra can sign with); that one aws-lc verifies directly.

use aws_lc_rs::signature::{ECDSA_P521_SHA512_FIXED, ParsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::de::DeserializeOwned;

pub use crate::domain::jws::Alg;

/// jsonwebtoken's name for `alg`; none for ES512, which it does not know.
fn jsonwebtoken(alg: Alg) -> Option<Algorithm> {
    Some(match alg {
        Alg::RS256 => Algorithm::RS256,
        Alg::RS384 => Algorithm::RS384,
        Alg::RS512 => Algorithm::RS512,
        Alg::PS256 => Algorithm::PS256,
        Alg::PS384 => Algorithm::PS384,
        Alg::PS512 => Algorithm::PS512,
        Alg::ES256 => Algorithm::ES256,
        Alg::ES384 => Algorithm::ES384,
        Alg::EdDSA => Algorithm::EdDSA,
        Alg::ES512 => return None,
    })
}

/// A key that verifies signatures.
#[derive(Clone)]
pub enum PublicKey {
    /// RSA, P-256, P-384 and Ed25519 keys, through jsonwebtoken.
    Jwt(DecodingKey),
    /// A P-521 key (ES512), parsed and checked to lie on the curve.
    P521(ParsedPublicKey),
}

/// The size of one P-521 coordinate, as a JWK must give it (RFC 7518 §6.2.1.2).
const P521_COORDINATE: usize = 66;

impl PublicKey {
    /// The key a JWK publishes; none for a key that cannot verify anything the broker
    /// accepts (symmetric keys among them: the caller filters those by type first).
    pub fn from_jwk(jwk: &Jwk) -> Option<Self> {
        if let AlgorithmParameters::EllipticCurve(ec) = &jwk.algorithm
            && ec.curve == EllipticCurve::P521
        {
            let coordinate = |text: &str| {
                URL_SAFE_NO_PAD
                    .decode(text)
                    .ok()
                    .filter(|bytes| bytes.len() == P521_COORDINATE)
            };
            let (x, y) = (coordinate(&ec.x)?, coordinate(&ec.y)?);
            // The uncompressed point; one off the curve is refused here.
            let point = [&[4u8][..], &x, &y].concat();
            return ParsedPublicKey::new(&ECDSA_P521_SHA512_FIXED, point)
                .ok()
                .map(Self::P521);
        }
        DecodingKey::from_jwk(jwk).ok().map(Self::Jwt)
    }

    /// Whether `signature` (base64url, as the third part of a compact JWS) is `alg`'s
    /// signature of `message` by this key. A key of another type never verifies.
    pub fn verifies(&self, alg: Alg, message: &[u8], signature: &str) -> bool {
        match (self, jsonwebtoken(alg)) {
            (Self::Jwt(key), Some(alg)) => {
                jsonwebtoken::crypto::verify(signature, message, key, alg).unwrap_or(false)
            }
            (Self::P521(key), None) => URL_SAFE_NO_PAD
                .decode(signature)
                .is_ok_and(|sig| key.verify_sig(message, &sig).is_ok()),
            _ => false,
        }
    }
}

/// What a JWS header says, trusted for nothing but the choice of key and the type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub alg: Alg,
    pub kid: Option<String>,
    pub typ: Option<String>,
}

/// Why a compact JWS's header was not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// Not three parts, or a header that is not base64url JSON with a string `alg`.
    #[error("{0}")]
    Malformed(&'static str),
    /// `none`, an HMAC or an unknown name: nothing the broker verifies.
    #[error("{0}")]
    Algorithm(String),
}

/// Reads `alg`, `kid` and `typ` from a compact JWS of exactly three parts, without
/// trusting anything else in it.
pub fn read_header(token: &str) -> Result<Header, HeaderError> {
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HeaderError::Malformed("not three dot-separated parts"));
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| HeaderError::Malformed("the header is not base64url"))?;
    let header: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|_| HeaderError::Malformed("the header is not JSON"))?;
    let text = |name: &str| header.get(name).and_then(serde_json::Value::as_str);
    let alg = text("alg").ok_or(HeaderError::Malformed("the header has no alg"))?;
    if alg == "none" {
        return Err(HeaderError::Algorithm("the token is unsigned".to_owned()));
    }
    let alg: Alg = alg.parse().map_err(|_| {
        HeaderError::Algorithm(format!("`{alg}` is not a known asymmetric algorithm"))
    })?;
    Ok(Header {
        alg,
        kid: text("kid").map(str::to_owned),
        typ: text("typ").map(str::to_owned),
    })
}

/// Why a compact JWS's payload was not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JwsError {
    /// Not three base64url parts.
    #[error("not a compact JWS")]
    Malformed,
    /// The signature does not hold for this key and algorithm.
    #[error("the signature does not verify")]
    BadSignature,
}

/// The payload of the compact JWS `token`, decoded, once `key`'s `alg` signature over
/// its first two parts holds. The caller has chosen `alg` and `key` from the header
/// and its allow-lists; nothing here trusts the header.
pub fn verified_payload(token: &str, alg: Alg, key: &PublicKey) -> Result<Vec<u8>, JwsError> {
    let (signed, signature) = token.rsplit_once('.').ok_or(JwsError::Malformed)?;
    let (_, payload) = signed.split_once('.').ok_or(JwsError::Malformed)?;
    if payload.contains('.') {
        return Err(JwsError::Malformed);
    }
    if !key.verifies(alg, signed.as_bytes(), signature) {
        return Err(JwsError::BadSignature);
    }
    URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| JwsError::Malformed)
}

/// Why a compact JWS's claims were not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ClaimsError {
    #[error(transparent)]
    Jws(JwsError),
    /// The signature holds, but the payload is not the claims expected.
    #[error("the payload is not the claims expected")]
    Claims,
}

/// The claims of the compact JWS `token` as `T`, once its signature holds
/// ([`verified_payload`]).
pub fn verified_claims<T: DeserializeOwned>(
    token: &str,
    alg: Alg,
    key: &PublicKey,
) -> Result<T, ClaimsError> {
    let payload = verified_payload(token, alg, key).map_err(ClaimsError::Jws)?;
    serde_json::from_slice(&payload).map_err(|_| ClaimsError::Claims)
}

#[cfg(test)]
pub(crate) mod tests;
