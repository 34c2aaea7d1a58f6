//! The broker's own access tokens: published keys, and every way a forged or stale
//! one is refused by `/auth/verify`. Also `tokens.mode = "passthrough"`.

use std::time::Duration;

use serde_json::Value;
use token_broker::domain::scope::Scopes;
use token_broker::tokens::issue::{Minting, mint};
use token_broker::tokens::keypair::{KeyPair, SigningAlg};

use crate::login_consent::register;
use crate::login_flow::{login, redeem};
use crate::support::{TestBroker, config_text, http};

fn minted(broker: &TestBroker, audience: &str) -> String {
    mint(
        &broker.state.signing,
        &Minting {
            issuer: broker.state.config.server.public_url.as_str(),
            subject: "alice",
            client_id: "c1",
            audience,
            scopes: &Scopes::of(["notes:read"]),
            grant_id: "g1",
            now: broker.clock.unix(),
            ttl: Duration::from_secs(900),
        },
    )
    .unwrap()
    .0
}

async fn verify(broker: &TestBroker, token: &str) -> u16 {
    http()
        .get(broker.at("/auth/verify"))
        .header("x-forwarded-uri", "/mcp")
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[actix_web::test]
async fn jwks_publishes_the_public_key_that_verifies_issued_tokens() {
    let broker = TestBroker::start().await;
    let token = minted(&broker, "http://127.0.0.1:9/mcp");
    let kid = jsonwebtoken::decode_header(&token).unwrap().kid.unwrap();
    let jwks: Value = http()
        .get(broker.at("/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert!(keys.iter().any(|k| k["kid"] == kid.as_str()));
    assert!(
        keys.iter()
            .all(|k| k.get("d").is_none() && k["use"] == "sig")
    );
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    assert_eq!(verify(&broker, &token).await, 200);
}

#[actix_web::test]
async fn forged_swapped_stale_and_misdirected_tokens_are_refused() {
    let broker = TestBroker::start().await;
    let good = minted(&broker, "http://127.0.0.1:9/mcp");
    let kid = jsonwebtoken::decode_header(&good).unwrap().kid.unwrap();
    let claims: Value = {
        let payload = good.split('.').nth(1).unwrap();
        serde_json::from_slice(
            &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload)
                .unwrap(),
        )
        .unwrap()
    };
    // Signed by another key that claims the broker's kid.
    let other = KeyPair::generate(SigningAlg::Rs256).unwrap();
    let mut header = other.header("at+jwt");
    header.kid = Some(kid.clone());
    let forged = jsonwebtoken::encode(&header, &claims, other.encoding()).unwrap();
    assert_eq!(verify(&broker, &forged).await, 401);
    // The right kid with another algorithm.
    let es = KeyPair::generate(SigningAlg::Es256).unwrap();
    let mut header = es.header("at+jwt");
    header.kid = Some(kid);
    let swapped = jsonwebtoken::encode(&header, &claims, es.encoding()).unwrap();
    assert_eq!(verify(&broker, &swapped).await, 401);
    // For another resource.
    assert_eq!(
        verify(&broker, &minted(&broker, "https://other.example/mcp")).await,
        401
    );
    // Expired, on the broker's clock, past the leeway.
    assert_eq!(verify(&broker, &good).await, 200);
    broker.clock.advance(Duration::from_secs(900 + 31));
    assert_eq!(verify(&broker, &good).await, 401);
}

#[actix_web::test]
async fn passthrough_hands_out_the_providers_access_token() {
    let text = format!("{}\n[tokens]\nmode = \"passthrough\"\n", config_text());
    let broker = TestBroker::start_live(&text, Default::default(), |_| {}).await;
    let client = register(&broker, "Passthrough").await;
    let code = login(&broker, &client, &[]).await;
    let (status, body) = redeem(&broker, &client, &code).await;
    assert_eq!(status, 200, "{body}");
    let access = body["access_token"].as_str().unwrap();
    let payload = access.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        claims["iss"],
        broker.idp.url.as_str(),
        "the provider's token"
    );
    assert_eq!(verify(&broker, access).await, 200);
    assert!(
        body["refresh_token"].is_string(),
        "the broker's own refresh token"
    );
}
