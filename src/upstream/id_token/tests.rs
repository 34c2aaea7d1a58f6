//! The rules around the library calls: which algorithms, which key, how much skew,
//! when a refetch helps, `at_hash`, and how a refusal is named. Each algorithm the
//! broker's own keys use is signed and checked here through the jsonwebtoken path.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::TimeDelta;
use openidconnect::ClaimsVerificationError;
use serde_json::{Value, json};

use super::error::refusal;
use super::signature::access_token_hash;
use super::*;
use crate::tokens::keypair::{KeyPair, SigningAlg};
use crate::upstream::jws::tests::Es512;
use crate::upstream::jws::{self, Alg};

const ISSUER: &str = "https://idp.example";

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

fn key_set(pairs: &[&KeyPair]) -> KeySet {
    let keys: Vec<Value> = pairs
        .iter()
        .map(|p| serde_json::to_value(&p.jwk).unwrap())
        .collect();
    KeySet::parse(&json!({ "keys": keys })).unwrap()
}

const ACCESS_TOKEN: &str = "the-access-token";

/// Good claims for a token signed with `alg`, bound to [`ACCESS_TOKEN`].
fn claims(clock: &Clock, alg: Alg) -> Value {
    let now = clock.unix();
    json!({"iss": ISSUER, "sub": "alice", "aud": "broker", "nonce": "n-1",
           "iat": now, "exp": now + 300,
           "at_hash": access_token_hash(alg, ACCESS_TOKEN)})
}

fn sign(pair: &KeyPair, claims: &Value) -> String {
    jsonwebtoken::encode(&pair.header("JWT"), claims, pair.encoding()).unwrap()
}

fn run(keys: &KeySet, advertised: &[String], token: &str) -> Result<IdClaims, IdTokenError> {
    run_for(keys, advertised, token, ACCESS_TOKEN)
}

fn run_for(
    keys: &KeySet,
    advertised: &[String],
    token: &str,
    access_token: &str,
) -> Result<IdClaims, IdTokenError> {
    let issuer = Issuer::parse_upstream(ISSUER, false).unwrap();
    let expected = Expected {
        issuer: &issuer,
        client_id: "broker",
        nonce: Some("n-1"),
        access_token: Some(access_token),
        leeway: Duration::from_secs(30),
    };
    check(keys, advertised, &expected, token, &Clock::system())
}

#[test]
fn only_advertised_asymmetric_algorithms_are_allowed() {
    assert_eq!(
        allowed_algs(&names(&[
            "RS256", "HS256", "none", "ES256", "ES512", "es384"
        ])),
        vec![Alg::RS256, Alg::ES256, Alg::ES512]
    );
    assert!(allowed_algs(&names(&["HS256", "HS512", "none", "XX999"])).is_empty());
    let all = allowed_algs(&[]);
    assert_eq!(all, Alg::ALL.to_vec());
}

#[test]
fn every_key_type_verifies_through_jsonwebtoken() {
    let clock = Clock::system();
    for alg in [SigningAlg::Rs256, SigningAlg::Es256, SigningAlg::EdDsa] {
        let pair = KeyPair::generate(alg).unwrap();
        let token = sign(&pair, &claims(&clock, alg.jws()));
        let keys = key_set(&[&pair]);
        let claims = run(&keys, &[], &token).unwrap();
        assert_eq!(claims.subject, "alice", "{alg:?}");
        // at_hash with the algorithm's hash (SHA-512 for Ed25519) binds the access token.
        let result = run_for(&keys, &[], &token, "another-access-token");
        assert!(
            matches!(result, Err(IdTokenError::AccessTokenHash(_))),
            "{result:?}"
        );
        // A key the provider does not publish (same kid, another key) never verifies.
        let mut other = KeyPair::generate(alg).unwrap();
        other.jwk.common.key_id = Some(pair.kid.clone());
        let result = run(&key_set(&[&other]), &[], &token);
        assert!(
            matches!(result, Err(IdTokenError::Signature(_))),
            "{result:?}"
        );
    }
}

#[test]
fn an_es512_id_token_verifies_with_a_p521_key() {
    // Keycloak and ORY Hydra can sign ID tokens with ES512, which jsonwebtoken does
    // not verify: `upstream::jws` does, with aws-lc.
    let clock = Clock::system();
    let key = Es512::generate("p521");
    let keys = KeySet::parse(&key.jwks()).unwrap();
    let token = key.sign(json!({"typ": "JWT"}), &claims(&clock, Alg::ES512));
    let verified = run(&keys, &names(&["RS256", "ES512"]), &token).unwrap();
    assert_eq!(verified.subject, "alice");
    // at_hash with SHA-512 binds the access token.
    let result = run_for(&keys, &[], &token, "another-access-token");
    assert!(
        matches!(result, Err(IdTokenError::AccessTokenHash(_))),
        "{result:?}"
    );
    // Not advertised: refused before any key.
    let result = run(&keys, &names(&["RS256"]), &token);
    assert!(
        matches!(result, Err(IdTokenError::Algorithm(_))),
        "{result:?}"
    );
    // Another P-521 key under the same kid never verifies.
    let other = KeySet::parse(&Es512::generate("p521").jwks()).unwrap();
    let result = run(&other, &[], &token);
    assert!(
        matches!(result, Err(IdTokenError::Signature(_))),
        "{result:?}"
    );
}

#[test]
fn the_key_type_and_the_advertised_list_decide_not_the_header() {
    let clock = Clock::system();
    let ec = KeyPair::generate(SigningAlg::Es256).unwrap();
    let token = sign(&ec, &claims(&clock, Alg::ES256));
    // The provider advertises RS256 only: an ES256 token is refused before any key.
    let result = run(&key_set(&[&ec]), &names(&["RS256"]), &token);
    assert!(
        matches!(result, Err(IdTokenError::Algorithm(_))),
        "{result:?}"
    );
    // A header claiming RS256 over an EC key's kid is refused on the key's type.
    let mut header = ec.header("JWT");
    header.alg = jsonwebtoken::Algorithm::RS256;
    let rsa = KeyPair::generate(SigningAlg::Rs256).unwrap();
    let forged =
        jsonwebtoken::encode(&header, &claims(&clock, Alg::RS256), rsa.encoding()).unwrap();
    let result = run(&key_set(&[&ec]), &[], &forged);
    assert!(
        matches!(result, Err(IdTokenError::Algorithm(_))),
        "{result:?}"
    );
    // An unknown kid is reported as such, so the caller may refetch.
    let result = run(&key_set(&[&rsa]), &[], &token);
    assert_eq!(
        result,
        Err(IdTokenError::UnknownKey {
            kid: Some(ec.kid.clone())
        })
    );
}

#[test]
fn a_header_is_read_for_alg_and_kid_only() {
    // The shared reader (`upstream::jws`), refusals in the ID token's reasons.
    let read_header = |token: &str| jws::read_header(token).map_err(IdTokenError::from);
    let b64 = |v: &str| URL_SAFE_NO_PAD.encode(v);
    let token = |h: &str| format!("{}.e30.c2ln", b64(h));
    assert_eq!(
        read_header(&token(r#"{"alg":"ES256","kid":"k1"}"#)).unwrap(),
        jws::Header {
            alg: Alg::ES256,
            kid: Some("k1".to_owned()),
            typ: None,
        }
    );
    for (header, reason) in [
        (r#"{"alg":"none"}"#, "algorithm"),
        (r#"{"alg":"HS256"}"#, "algorithm"),
        (r#"{"alg":"ES521"}"#, "algorithm"),
        (r#"{"kid":"k1"}"#, "malformed"),
        ("not json", "malformed"),
    ] {
        assert_eq!(read_header(&token(header)).unwrap_err().reason(), reason);
    }
    let four = format!("{}.e30.c2ln.c2ln", b64(r#"{"alg":"ES256"}"#));
    assert_eq!(read_header(&four).unwrap_err().reason(), "malformed");
    assert_eq!(read_header("").unwrap_err().reason(), "malformed");
}

#[test]
fn at_hash_uses_the_algorithms_hash() {
    // OpenID Connect Core 1.0, Appendix A.4's access token and its at_hash (RS256).
    let token = "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y";
    assert_eq!(
        access_token_hash(Alg::RS256, token),
        "77QmUPtjPfzWtF2AnpK9RQ"
    );
    assert_eq!(access_token_hash(Alg::ES384, token).len(), 32);
    assert_eq!(access_token_hash(Alg::EdDSA, token).len(), 43);
    assert_eq!(
        access_token_hash(Alg::EdDSA, token),
        access_token_hash(Alg::PS512, token)
    );
    assert_eq!(
        access_token_hash(Alg::ES512, token),
        access_token_hash(Alg::RS512, token)
    );
}

#[test]
fn the_leeway_is_bounded() {
    assert_eq!(skew(Duration::from_secs(30)), TimeDelta::seconds(30));
    assert_eq!(skew(Duration::from_secs(86_400)), TimeDelta::seconds(300));
    assert_eq!(skew(Duration::MAX), TimeDelta::seconds(300));
}

#[test]
fn a_refetch_is_only_worth_it_for_an_unpublished_kid() {
    let doc = json!({"keys": [{"kty": "RSA", "kid": "k1"}, {"kty": "EC"}]});
    assert!(publishes_kid(&doc, "k1"));
    assert!(!publishes_kid(&doc, "k2"));
    assert!(!publishes_kid(&json!({}), "k1"));
}

#[test]
fn claim_refusals_are_told_apart() {
    let cases = [
        (ClaimsVerificationError::InvalidNonce("x".into()), "nonce"),
        (
            ClaimsVerificationError::InvalidAudience("x".into()),
            "audience",
        ),
        (ClaimsVerificationError::InvalidIssuer("x".into()), "issuer"),
        (ClaimsVerificationError::Expired("x".into()), "expired"),
        (ClaimsVerificationError::Unsupported("x".into()), "invalid"),
    ];
    for (error, reason) in cases {
        assert_eq!(refusal(error).reason(), reason);
    }
}
