//! The verification path's reading of a token, for the fuzz targets in `fuzz/`: built
//! only under `cfg(fuzzing)` (set by `cargo fuzz`), never part of the product. The
//! steps are the ones `Verifier` takes once its key set has named the key.

use super::super::principal::CredentialKind;
use super::super::rejection::Rejection;
use super::Verified;
use super::claims::{check, decode_claims};
use super::jws::{is_jws, read_header, unverified_issuer};
use crate::clock::UnixSeconds;
use crate::upstream::jws::{Alg, PublicKey};

/// A provider token checked against `key`, which allows `algorithms`: header, algorithm,
/// signature, then the claims at `now` with `leeway` (`Verifier::verify_signed`).
pub fn upstream(
    token: &str,
    key: &PublicKey,
    algorithms: &[Alg],
    issuer: &str,
    now: UnixSeconds,
    leeway: u64,
) -> Result<Verified, Rejection> {
    if !is_jws(token) {
        return Err(Rejection::Malformed);
    }
    let header = read_header(token)?;
    if !algorithms.contains(&header.alg) {
        return Err(Rejection::AlgNotAllowed);
    }
    let claims = decode_claims(token, header.alg, key)?;
    check(
        claims,
        issuer,
        CredentialKind::UpstreamJwt,
        now,
        leeway,
        None,
    )
}

/// The `iss` a token's unverified payload names (what picks the key set).
pub fn issuer(token: &str) -> Option<String> {
    unverified_issuer(token)
}
