//! How a JWS header and an access token's type are read.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;

use super::jws::{JwtHeader, is_access_token_type, read_header};
use crate::tokens::Rejection;

fn b64(s: &str) -> String {
    URL_SAFE_NO_PAD.encode(s)
}

#[test]
fn headers_are_read_strictly() {
    let token = |h: &str| format!("{}.{}.sig", b64(h), b64("{}"));
    assert_eq!(
        read_header(&token(r#"{"alg":"RS256","kid":"k","typ":"at+jwt"}"#)),
        Ok(JwtHeader {
            alg: Algorithm::RS256,
            kid: Some("k".into()),
            typ: Some("at+jwt".into()),
        })
    );
    assert_eq!(
        read_header(&token(r#"{"alg":"none"}"#)),
        Err(Rejection::AlgNotAllowed)
    );
    assert_eq!(
        read_header(&token(r#"{"alg":"HS256"}"#)),
        Err(Rejection::AlgNotAllowed)
    );
    assert_eq!(
        read_header(&token(r#"{"kid":"k"}"#)),
        Err(Rejection::Malformed)
    );
    assert_eq!(read_header("a.b"), Err(Rejection::Malformed));
    assert_eq!(read_header("!!.b.c"), Err(Rejection::Malformed));
    assert_eq!(read_header("a.b.c.d"), Err(Rejection::Malformed));
}

#[test]
fn access_token_types_are_recognised() {
    assert!(is_access_token_type("at+jwt"));
    assert!(is_access_token_type("AT+JWT"));
    assert!(is_access_token_type("application/at+jwt"));
    assert!(!is_access_token_type("JWT"));
    assert!(!is_access_token_type("at+jwt2"));
}
