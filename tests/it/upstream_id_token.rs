//! ID token validation of the upstream login against the dev IdP's real keys: a good
//! token passes; each broken claim is refused for its own reason (so dropping any one
//! check fails here), the leeway holds both ways, and a forged signature, HMAC and
//! `none` are refused.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use token_broker::upstream::id_token::{self, IdTokenError};

use crate::support::TestBroker;

fn claims(broker: &TestBroker) -> Value {
    let now = broker.clock.unix();
    json!({
        "iss": broker.idp.url,
        "sub": "alice",
        "aud": "token-broker",
        "nonce": "the-nonce",
        "iat": now,
        "exp": now + 300,
        "email": "alice@example.com",
    })
}

async fn check(broker: &TestBroker, token: &str) -> Result<id_token::IdClaims, IdTokenError> {
    id_token::validate(
        &broker.state.discovery,
        &broker.state.config.upstream.issuer,
        "token-broker",
        "the-nonce",
        token,
        &broker.clock,
        Duration::from_secs(30),
    )
    .await
}

fn signed(broker: &TestBroker, claims: &Value) -> String {
    broker.idp.idp.sign("JWT", claims).unwrap()
}

/// The good claims with `changes` applied (`null` removes the claim).
fn with(broker: &TestBroker, changes: Value) -> String {
    let mut claims = claims(broker);
    for (name, value) in changes.as_object().unwrap() {
        if value.is_null() {
            claims.as_object_mut().unwrap().remove(name);
        } else {
            claims[name] = value.clone();
        }
    }
    signed(broker, &claims)
}

#[actix_web::test]
async fn a_good_id_token_passes_and_names_the_user() {
    let broker = TestBroker::start().await;
    let token = signed(&broker, &claims(&broker));
    let claims = check(&broker, &token).await.unwrap();
    assert_eq!(claims.subject, "alice");
    assert_eq!(claims.email.as_deref(), Some("alice@example.com"));
}

#[actix_web::test]
async fn each_broken_claim_is_refused_for_its_reason() {
    let broker = TestBroker::start().await;
    let now = broker.clock.unix();
    // exp and iat 40 s out: 10 s beyond the 30 s leeway, for a loaded machine.
    let cases = [
        (json!({"nonce": "another-nonce"}), "nonce"),
        (json!({"nonce": null}), "nonce"),
        (json!({"aud": "another-client"}), "audience"),
        (
            json!({"aud": ["token-broker", "another-client"]}),
            "audience",
        ),
        (json!({"azp": "another-client"}), "audience"),
        (json!({"iss": "https://evil.example"}), "issuer"),
        (json!({"exp": now - 40}), "expired"),
        (json!({"iat": now + 40}), "issued_in_future"),
        (json!({"sub": null}), "malformed"),
    ];
    for (changes, reason) in cases {
        let result = check(&broker, &with(&broker, changes.clone())).await;
        assert_eq!(result.map_err(|e| e.reason()), Err(reason), "{changes}");
    }
    // Expiry follows the broker's clock: a token valid now fails once time moves on.
    let token = signed(&broker, &claims(&broker));
    broker.clock.advance(Duration::from_secs(331));
    let result = check(&broker, &token).await;
    assert_eq!(result.map_err(|e| e.reason()), Err("expired"));
}

#[actix_web::test]
async fn the_leeway_forgives_small_skew_both_ways() {
    // The leeway is 30 s; the cases keep 10 s from it on either side, as the clock is
    // the system's (moved only by tests) and a loaded machine takes seconds.
    let broker = TestBroker::start().await;
    let now = broker.clock.unix();
    for changes in [
        json!({"exp": now - 20}),
        json!({"iat": now + 20}),
        json!({"azp": "token-broker"}),
    ] {
        let result = check(&broker, &with(&broker, changes.clone())).await;
        assert!(result.is_ok(), "{changes}: {result:?}");
    }
}

#[actix_web::test]
async fn forged_signatures_hmac_and_none_are_refused() {
    let broker = TestBroker::start().await;
    let good = signed(&broker, &claims(&broker));
    let parts: Vec<&str> = good.split('.').collect();
    // The payload changed under a valid signature.
    let mut evil = claims(&broker);
    evil["sub"] = json!("mallory");
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(evil.to_string()),
        parts[2]
    );
    let reason = |r: Result<id_token::IdClaims, IdTokenError>| r.map_err(|e| e.reason());
    assert_eq!(reason(check(&broker, &tampered).await), Err("signature"));
    // `alg: none`.
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
        parts[1]
    );
    assert_eq!(reason(check(&broker, &none).await), Err("algorithm"));
    // HS256 with the broker's client secret as the key: a public-client verifier
    // never accepts a shared-secret algorithm.
    let hs = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims(&broker),
        &jsonwebtoken::EncodingKey::from_secret(b"token-broker-secret"),
    )
    .unwrap();
    assert_eq!(reason(check(&broker, &hs).await), Err("algorithm"));
    assert!(matches!(
        check(&broker, "not-a-jwt").await,
        Err(IdTokenError::Malformed(_))
    ));
}
