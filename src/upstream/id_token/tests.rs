//! The rules openidconnect leaves to the broker: which algorithms, how much skew,
//! when a refetch helps, and how a refusal is named.

use std::time::Duration;

use chrono::TimeDelta;
use openidconnect::core::CoreJwsSigningAlgorithm;
use openidconnect::{ClaimsVerificationError, SignatureVerificationError};

use super::error::refusal;
use super::*;

#[test]
fn only_advertised_asymmetric_algorithms_are_allowed() {
    let names = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    assert_eq!(
        allowed_algs(&names(&["RS256", "HS256", "none", "ES256"])),
        vec![
            CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
            CoreJwsSigningAlgorithm::EcdsaP256Sha256
        ]
    );
    assert!(allowed_algs(&names(&["HS256", "HS512", "none", "XX999"])).is_empty());
    let all = allowed_algs(&[]);
    assert_eq!(all.len(), ASYMMETRIC.len());
    assert!(!all.contains(&CoreJwsSigningAlgorithm::HmacSha256));
    assert!(!all.contains(&CoreJwsSigningAlgorithm::None));
}

#[test]
fn the_leeway_is_bounded() {
    assert_eq!(skew(Duration::from_secs(30)), TimeDelta::seconds(30));
    assert_eq!(skew(Duration::from_secs(86_400)), TimeDelta::seconds(300));
    assert_eq!(skew(Duration::MAX), TimeDelta::seconds(300));
}

#[test]
fn a_refetch_is_only_worth_it_for_an_unpublished_kid() {
    let doc = serde_json::json!({"keys": [{"kty": "RSA", "kid": "k1"}, {"kty": "EC"}]});
    assert!(publishes_kid(&doc, "k1"));
    assert!(!publishes_kid(&doc, "k2"));
    assert!(!publishes_kid(&serde_json::json!({}), "k1"));
}

#[test]
fn signature_failures_are_told_apart() {
    let kid = Some("k9".to_owned());
    let sig = ClaimsVerificationError::SignatureVerification;
    assert_eq!(
        refusal(sig(SignatureVerificationError::NoMatchingKey), kid.clone()),
        IdTokenError::UnknownKey { kid: kid.clone() }
    );
    assert_eq!(
        refusal(
            sig(SignatureVerificationError::DisallowedAlg("HS256".into())),
            None
        )
        .reason(),
        "algorithm"
    );
    assert_eq!(
        refusal(
            sig(SignatureVerificationError::CryptoError("bad".into())),
            None
        )
        .reason(),
        "signature"
    );
    assert_eq!(
        refusal(ClaimsVerificationError::InvalidNonce("x".into()), None).reason(),
        "nonce"
    );
}
