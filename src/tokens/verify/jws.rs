//! A compact JWS as verification reads it: its shape, its header (trusted for
//! nothing but the choice of key) and the issuer that picks the key set.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

use super::super::rejection::Rejection;
use crate::upstream::jws::{self, HeaderError};

/// Whether `token` has a JWS's three dot-separated parts (else it is an API key or an
/// opaque token). memchr: a token is a kilobyte, and this runs on every request.
pub(super) fn is_jws(token: &str) -> bool {
    memchr::memchr_iter(b'.', token.as_bytes()).take(3).count() == 2
}

/// `at+jwt` or its full media type, in any case (RFC 9068 §2.1).
pub(super) fn is_access_token_type(typ: &str) -> bool {
    typ.eq_ignore_ascii_case("at+jwt") || typ.eq_ignore_ascii_case("application/at+jwt")
}

/// The `iss` of a compact JWS's payload, read without trusting it: it only decides
/// which keys may verify the token.
pub(in crate::tokens) fn unverified_issuer(token: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    #[derive(Deserialize)]
    struct Iss {
        iss: Option<String>,
    }
    serde_json::from_slice::<Iss>(&bytes).ok()?.iss
}

/// The parts of a JWS header verification looks at.
pub(in crate::tokens) use crate::upstream::jws::Header as JwtHeader;

/// [`jws::read_header`](crate::upstream::jws::read_header) with the verifier's reasons.
pub(in crate::tokens) fn read_header(token: &str) -> Result<JwtHeader, Rejection> {
    jws::read_header(token).map_err(|e| match e {
        HeaderError::Malformed(_) => Rejection::Malformed,
        HeaderError::Algorithm(_) => Rejection::AlgNotAllowed,
    })
}
