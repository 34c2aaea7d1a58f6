//! The checks of `upstream::jws`, and (`es512.rs`) the ES512 signer the tests of
//! every verification path use.

#[path = "es512.rs"]
mod es512;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

pub(crate) use self::es512::Es512;
use super::*;
use crate::tokens::keypair::{KeyPair, SigningAlg};
use crate::upstream::jwks::KeySet;

fn claims() -> Value {
    json!({"iss": "https://idp.example.com", "sub": "alice"})
}

#[test]
fn an_es512_token_verifies_with_its_published_key_and_nothing_else() {
    let key = Es512::generate("p521");
    let set = KeySet::parse(&key.jwks()).unwrap();
    assert_eq!(set.kids(), ["p521"]);
    let published = set.find(Some("p521")).unwrap();
    assert_eq!(published.algorithms, [Alg::ES512]);
    let token = key.sign(json!({"typ": "JWT"}), &claims());
    let read: Value = verified_claims(&token, Alg::ES512, &published.key).unwrap();
    assert_eq!(read, claims());

    // Another P-521 key, the same key under another algorithm, a changed payload, a
    // changed signature: refused.
    let other = Es512::generate("p521");
    let other = KeySet::parse(&other.jwks()).unwrap();
    let other = &other.find(Some("p521")).unwrap().key;
    assert_eq!(
        verified_payload(&token, Alg::ES512, other),
        Err(JwsError::BadSignature)
    );
    for alg in Alg::ALL.into_iter().filter(|alg| *alg != Alg::ES512) {
        assert_eq!(
            verified_payload(&token, alg, &published.key),
            Err(JwsError::BadSignature),
            "{alg}"
        );
    }
    let (signed, signature) = token.rsplit_once('.').unwrap();
    let (header, _) = signed.split_once('.').unwrap();
    let forged = format!(
        "{header}.{}.{signature}",
        URL_SAFE_NO_PAD.encode(r#"{"iss":"https://idp.example.com","sub":"mallory"}"#)
    );
    assert_eq!(
        verified_payload(&forged, Alg::ES512, &published.key),
        Err(JwsError::BadSignature)
    );
    let mut flipped = token.clone().into_bytes();
    let last = flipped.len() - 2;
    flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    assert_eq!(
        verified_payload(&flipped, Alg::ES512, &published.key),
        Err(JwsError::BadSignature)
    );
}

#[test]
fn a_key_of_another_type_never_verifies_es512_nor_es512_another_alg() {
    let ed = KeyPair::generate(SigningAlg::EdDsa).unwrap();
    let es512 = Es512::generate("p521");
    let token = es512.sign(json!({}), &claims());
    assert_eq!(
        verified_payload(&token, Alg::ES512, ed.public()),
        Err(JwsError::BadSignature)
    );
    // The broker's own keys still verify through the same path.
    let signed = jsonwebtoken::encode(&ed.header("JWT"), &claims(), ed.encoding()).unwrap();
    let read: Value = verified_claims(&signed, Alg::EdDSA, ed.public()).unwrap();
    assert_eq!(read["sub"], "alice");
    let p521 = KeySet::parse(&es512.jwks()).unwrap();
    let p521 = &p521.find(Some("p521")).unwrap().key;
    assert_eq!(
        verified_payload(&signed, Alg::EdDSA, p521),
        Err(JwsError::BadSignature)
    );
}

#[test]
fn p521_keys_that_cannot_be_used_are_skipped() {
    let key = Es512::generate("k");
    let jwk = key.jwk(json!({}));
    let short = |member: &str| {
        let mut jwk = jwk.clone();
        let bytes = URL_SAFE_NO_PAD
            .decode(jwk[member].as_str().unwrap())
            .unwrap();
        jwk[member] = json!(URL_SAFE_NO_PAD.encode(&bytes[1..]));
        jwk
    };
    let mut off_curve = jwk.clone();
    let mut y = URL_SAFE_NO_PAD.decode(jwk["y"].as_str().unwrap()).unwrap();
    y[P521_COORDINATE - 1] ^= 1;
    off_curve["y"] = json!(URL_SAFE_NO_PAD.encode(&y));
    let mut named_otherwise = jwk.clone();
    named_otherwise["alg"] = json!("ES256");
    let mut named_unknown = jwk.clone();
    named_unknown["alg"] = json!("ES521");
    for (bad, why) in [
        (short("x"), "its key material is not valid"),
        (short("y"), "its key material is not valid"),
        (off_curve, "its key material is not valid"),
        (named_otherwise, "its alg ES256 does not fit its key type"),
        (
            named_unknown,
            "its alg `ES521` is not one the broker verifies",
        ),
    ] {
        let set = KeySet::parse(&json!({"keys": [bad]})).unwrap();
        assert!(set.is_empty(), "{bad}");
        assert_eq!(set.skipped.len(), 1);
        assert_eq!(set.skipped[0].why, why);
        assert_eq!(set.skipped[0].kid.as_deref(), Some("k"));
    }
    // An encryption key is meant for something else: not usable, not reported.
    let mut encryption = jwk.clone();
    encryption["use"] = json!("enc");
    let set = KeySet::parse(&json!({"keys": [encryption]})).unwrap();
    assert!(set.is_empty() && set.skipped.is_empty());
    // Without `alg`, the curve decides.
    let set = KeySet::parse(&json!({"keys": [jwk]})).unwrap();
    assert_eq!(set.find(Some("k")).unwrap().algorithms, [Alg::ES512]);
}

#[test]
fn only_three_parts_are_a_compact_jws() {
    let key = Es512::generate("k");
    let set = KeySet::parse(&key.jwks()).unwrap();
    let public = &set.find(Some("k")).unwrap().key;
    let token = key.sign(json!({}), &claims());
    let (signed, signature) = token.rsplit_once('.').unwrap();
    for malformed in [
        signed.to_owned(),
        format!("{token}.{signature}"),
        format!("{signed}.{signature}.x"),
        "".to_owned(),
        "..".to_owned(),
    ] {
        assert!(
            verified_payload(&malformed, Alg::ES512, public).is_err(),
            "{malformed}"
        );
    }
    let not_claims = key.sign(json!({}), &json!("a string"));
    assert_eq!(
        verified_claims::<serde_json::Map<String, Value>>(&not_claims, Alg::ES512, public),
        Err(ClaimsError::Claims)
    );
}
