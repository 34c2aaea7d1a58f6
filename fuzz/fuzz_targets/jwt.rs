//! A bearer JWT on the verification path (RFC 7515 compact form, RFC 9068 claims),
//! header and claims chosen by the fuzzer and signed with a key the verifier trusts
//! (so parsing past the signature is reached) — an Ed25519 key through jsonwebtoken,
//! or a P-521 key (ES512) through the broker's own aws-lc path, as the fuzzer picks: a token passes only when its header
//! names an allowed algorithm and its claims carry the issuer, a subject, an audience
//! and an expiry the clock has not passed; what it establishes is what the claims say;
//! any change to a signed token refuses it; arbitrary text is refused, never a crash.
#![no_main]

use std::sync::LazyLock;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use token_broker::tokens::keypair::{KeyPair, SigningAlg};
use token_broker::tokens::verify::fuzzing::{issuer, upstream};
use token_broker::upstream::jws::{Alg, PublicKey};
use token_broker_fuzz::parts;

// Its JWKS and claim-signing helpers serve the broker's tests, not this target.
#[allow(dead_code)]
#[path = "../../src/upstream/jws/es512.rs"]
mod es512;

use self::es512::Es512;

const ISSUER: &str = "https://idp.example.com";
const NOW: u64 = 1_780_000_000;
const LEEWAY: u64 = 30;

static KEY: LazyLock<KeyPair> =
    LazyLock::new(|| KeyPair::generate(SigningAlg::EdDsa).expect("an Ed25519 key"));
static P521: LazyLock<(Es512, PublicKey)> = LazyLock::new(|| {
    let key = Es512::generate("p521");
    let jwk = serde_json::from_value(key.jwk(serde_json::json!({}))).expect("a JWK");
    let public = PublicKey::from_jwk(&jwk).expect("a P-521 key");
    (key, public)
});

/// The signer the fuzzer picked: the trusted key and the one algorithm it allows.
fn signer(p521: bool) -> (&'static PublicKey, [Alg; 1]) {
    if p521 {
        (&P521.1, [Alg::ES512])
    } else {
        (KEY.public(), [Alg::EdDSA])
    }
}

fn signed(header: &[u8], payload: &[u8], p521: bool) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let signature = if p521 {
        P521.0.signature(input.as_bytes())
    } else {
        jsonwebtoken::crypto::sign(input.as_bytes(), KEY.encoding(), Algorithm::EdDSA)
            .expect("signing")
    };
    format!("{input}.{signature}")
}

fuzz_target!(|data: &[u8]| {
    // Arbitrary text as a token: refused or not, never a crash.
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = issuer(text);
        for p521 in [false, true] {
            let (key, allowed) = signer(p521);
            let _ = upstream(text, key, &allowed, ISSUER, NOW, LEEWAY);
        }
    }
    let pieces = parts(data);
    let (Some(header), Some(payload)) = (pieces.first(), pieces.get(1)) else {
        return;
    };
    let p521 = pieces
        .get(3)
        .and_then(|part| part.first())
        .is_some_and(|byte| byte & 1 == 1);
    let (key, allowed) = signer(p521);
    let token = signed(header, payload, p521);
    let outcome = upstream(&token, key, &allowed, ISSUER, NOW, LEEWAY);
    let header: Option<Value> = serde_json::from_slice(header).ok();
    let claims: Option<Value> = serde_json::from_slice(payload).ok();
    if let Ok(verified) = &outcome {
        let header = header.expect("a passing token's header is JSON");
        assert_eq!(header["alg"], allowed[0].as_str());
        let claims = claims.expect("a passing token's claims are JSON");
        assert_eq!(claims["iss"], ISSUER);
        assert_eq!(
            claims["sub"].as_str(),
            Some(verified.principal.subject.as_str())
        );
        let exp = claims["exp"].as_u64().expect("exp");
        assert_eq!(verified.expires_at, exp);
        assert!(
            u128::from(NOW) < u128::from(exp) + u128::from(LEEWAY),
            "expired passes"
        );
        for time in ["nbf", "iat"] {
            if let Some(t) = claims.get(time).and_then(Value::as_u64) {
                assert!(
                    u128::from(t) <= u128::from(NOW) + u128::from(LEEWAY),
                    "{time} in the future"
                );
            }
        }
        let audiences: Vec<&str> = match &claims["aud"] {
            Value::String(one) => vec![one.as_str()],
            Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
            other => panic!("aud {other} passes"),
        };
        assert_eq!(verified.audiences, audiences);
        assert_eq!(issuer(&token).as_deref(), Some(ISSUER));
    }
    // One byte changed anywhere in a signed token refuses it.
    if outcome.is_ok() {
        let mut bytes = token.clone().into_bytes();
        let at = usize::from(pieces.get(2).and_then(|p| p.first()).copied().unwrap_or(0))
            * bytes.len()
            / 256;
        bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
        if let Ok(tampered) = String::from_utf8(bytes) {
            if tampered != token {
                assert!(
                    upstream(&tampered, key, &allowed, ISSUER, NOW, LEEWAY).is_err(),
                    "a changed token passes: {tampered}"
                );
            }
        }
    }
});
