//! ID token validation of the upstream login against the dev IdP's real keys: a good
//! token passes; each broken claim, a forged signature, HMAC and `none` are refused.

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

#[actix_web::test]
async fn a_good_id_token_passes_and_names_the_user() {
    let broker = TestBroker::start().await;
    let token = signed(&broker, &claims(&broker));
    let claims = check(&broker, &token).await.unwrap();
    assert_eq!(claims.subject, "alice");
    assert_eq!(claims.email.as_deref(), Some("alice@example.com"));
}

#[actix_web::test]
async fn each_broken_claim_is_refused() {
    let broker = TestBroker::start().await;
    let now = broker.clock.unix();
    let cases: [(&str, Value); 6] = [
        ("nonce", json!("another-nonce")),
        ("aud", json!("another-client")),
        ("iss", json!("https://evil.example")),
        ("exp", json!(now - 31)),
        ("iat", json!(now + 3_600)),
        ("sub", Value::Null),
    ];
    for (claim, value) in cases {
        let mut bad = claims(&broker);
        if value.is_null() {
            bad.as_object_mut().unwrap().remove(claim);
        } else {
            bad[claim] = value;
        }
        let result = check(&broker, &signed(&broker, &bad)).await;
        assert!(result.is_err(), "{claim} accepted");
    }
    // Expiry follows the broker's clock: a token valid now fails once time moves on.
    let token = signed(&broker, &claims(&broker));
    broker.clock.advance(Duration::from_secs(331));
    assert!(check(&broker, &token).await.is_err());
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
    assert!(check(&broker, &tampered).await.is_err());
    // `alg: none`.
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
        parts[1]
    );
    assert!(check(&broker, &none).await.is_err());
    // HS256 with the broker's client secret as the key: a public-client verifier
    // never accepts a shared-secret algorithm.
    let hs = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims(&broker),
        &jsonwebtoken::EncodingKey::from_secret(b"token-broker-secret"),
    )
    .unwrap();
    assert!(check(&broker, &hs).await.is_err());
    assert!(matches!(
        check(&broker, "not-a-jwt").await,
        Err(IdTokenError::Malformed(_))
    ));
}
