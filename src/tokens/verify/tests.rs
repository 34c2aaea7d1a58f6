//! How a JWS header and an access token's type are read.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;

use super::claims::decode_claims;
use super::jws::{JwtHeader, is_access_token_type, read_header};
use crate::tokens::Rejection;
use crate::upstream::jwks::KeySet;
use crate::upstream::jws::Alg;
use crate::upstream::jws::tests::Es512;

fn b64(s: &str) -> String {
    URL_SAFE_NO_PAD.encode(s)
}

#[test]
fn headers_are_read_strictly() {
    let token = |h: &str| format!("{}.{}.sig", b64(h), b64("{}"));
    assert_eq!(
        read_header(&token(r#"{"alg":"RS256","kid":"k","typ":"at+jwt"}"#)),
        Ok(JwtHeader {
            alg: Alg::RS256,
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
    assert_eq!(
        read_header(&token(r#"{"alg":"ES512"}"#)).map(|h| h.alg),
        Ok(Alg::ES512)
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

#[test]
fn an_es512_access_token_is_read_with_its_p521_key_only() {
    let key = Es512::generate("p521");
    let keys = KeySet::parse(&key.jwks()).unwrap();
    let public = &keys.find(Some("p521")).unwrap().key;
    let token = key.sign(
        json!({"typ": "at+jwt"}),
        &json!({"iss": "https://idp.example", "sub": "alice", "aud": "api", "exp": 4_000_000_000u64}),
    );
    let header = read_header(&token).unwrap();
    assert_eq!(header.alg, Alg::ES512);
    let claims = decode_claims(&token, header.alg, public).unwrap();
    assert_eq!(claims.sub.as_deref(), Some("alice"));
    let other = KeySet::parse(&Es512::generate("p521").jwks()).unwrap();
    let other = &other.find(Some("p521")).unwrap().key;
    assert!(matches!(
        decode_claims(&token, Alg::ES512, other),
        Err(Rejection::BadSignature)
    ));
}
