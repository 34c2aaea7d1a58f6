//! An ID token's signature, checked the way the broker checks the provider's access
//! tokens (`upstream::jws`: jsonwebtoken over aws-lc-rs, and aws-lc directly for
//! ES512), with the keys of the discovery snapshot's JWKS
//! ([`KeySet`]: each key with the algorithms its type allows, or only the one its
//! `alg` names). openidconnect still reads and judges the claims, but never the
//! signature, so its `rsa` dependency (RUSTSEC-2023-0071, see deny.toml) is not on
//! this path. `at_hash` is computed here too, with the hash the algorithm names.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256, Sha384, Sha512};

use super::IdTokenError;
use crate::upstream::jwks::KeySet;
use crate::upstream::jws::{Alg, Header, read_header};

/// The provider's advertised algorithms (`id_token_signing_alg_values_supported`)
/// that are asymmetric and known; all of those when it advertises none (the RFC 8414
/// fallback has no such field).
///
/// [`Alg`] holds every asymmetric algorithm the broker verifies; HMAC and `none` are
/// never among them (the broker verifies as a public client: an HMAC token could be
/// signed with any secret it was given).
pub fn allowed_algs(advertised: &[String]) -> Vec<Alg> {
    if advertised.is_empty() {
        return Alg::ALL.to_vec();
    }
    advertised
        .iter()
        .filter_map(|name| name.parse::<Alg>().ok())
        .collect()
}

/// Checks the signature of `token` with the key its `kid` names in `keys`, for an
/// algorithm in `allowed` that the key may sign with; the algorithm, once it holds.
/// [`IdTokenError::UnknownKey`] when no usable key has that `kid` (the caller may
/// refetch the JWKS once).
pub(super) fn verify(keys: &KeySet, allowed: &[Alg], token: &str) -> Result<Alg, IdTokenError> {
    let Header { alg, kid, .. } = read_header(token).map_err(IdTokenError::from)?;
    if !allowed.contains(&alg) {
        return Err(IdTokenError::Algorithm(format!(
            "{alg} is not one of the provider's asymmetric ID token algorithms"
        )));
    }
    let Some(key) = keys.find(kid.as_deref()) else {
        return Err(IdTokenError::UnknownKey { kid });
    };
    // The key's type (or its own `alg`) decides, never the header alone: an RSA key
    // never checks an ES256 signature, an EC key never an RS256 one.
    if !key.algorithms.contains(&alg) {
        return Err(IdTokenError::Algorithm(format!(
            "the key {} does not sign with {alg}",
            kid.as_deref().unwrap_or("without kid")
        )));
    }
    let (message, signature) = token
        .rsplit_once('.')
        .ok_or_else(|| IdTokenError::Malformed("no signature".to_owned()))?;
    if key.key.verifies(alg, message.as_bytes(), signature) {
        Ok(alg)
    } else {
        Err(IdTokenError::Signature(format!(
            "it does not verify with the key {}",
            kid.as_deref().unwrap_or("without kid")
        )))
    }
}

/// `at_hash` for `access_token` under `alg` (OIDC Core §3.1.3.6): the left half of its
/// hash with the algorithm's hash function, base64url. Ed25519 (the only EdDSA curve a
/// [`KeySet`] accepts) hashes with SHA-512, as OpenID Connect settled for EdDSA.
pub(super) fn access_token_hash(alg: Alg, access_token: &str) -> String {
    let bytes = access_token.as_bytes();
    let digest: Vec<u8> = match alg {
        Alg::RS256 | Alg::PS256 | Alg::ES256 => Sha256::digest(bytes).to_vec(),
        Alg::RS384 | Alg::PS384 | Alg::ES384 => Sha384::digest(bytes).to_vec(),
        Alg::RS512 | Alg::PS512 | Alg::ES512 | Alg::EdDSA => Sha512::digest(bytes).to_vec(),
    };
    URL_SAFE_NO_PAD.encode(&digest[..digest.len() / 2])
}
