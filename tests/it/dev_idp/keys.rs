//! Key rotation over `/_dev/keys/rotate`, and the grace period of rotated-out keys.

use std::time::Duration;

use serde_json::json;
use token_broker::dev_idp::DevIdpConfig;

use super::{TestIdp, verify};

fn kids(jwks: &jsonwebtoken::jwk::JwkSet) -> Vec<String> {
    jwks.keys
        .iter()
        .filter_map(|k| k.common.key_id.clone())
        .collect()
}

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

async fn rotate(idp: &TestIdp, body: serde_json::Value) -> String {
    let answer = idp.post_json("/_dev/keys/rotate", body).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.str("kid").to_owned()
}

/// Access tokens outliving the grace period, so expiry cannot hide what the key does.
fn long_lived() -> DevIdpConfig {
    DevIdpConfig {
        access_token_ttl: Duration::from_secs(3600),
        ..Default::default()
    }
}

#[actix_web::test]
async fn rotation_publishes_a_new_kid_and_keeps_the_old_one_for_old_tokens() {
    let idp = TestIdp::start().await;
    let old_token = idp.service_token(&[]).await;
    let old_kid = kid_of(&old_token);

    // A bare POST, as from curl, rotates too.
    let response = crate::support::http()
        .post(idp.at("/_dev/keys/rotate"))
        .send()
        .await
        .unwrap();
    let new_kid = super::Answer::of(response).await.str("kid").to_owned();
    assert_ne!(new_kid, old_kid);
    let jwks = idp.jwks().await;
    assert_eq!(
        kids(&jwks),
        vec![new_kid.clone(), old_kid.clone()],
        "current key first"
    );

    let new_token = idp.service_token(&[]).await;
    assert_eq!(kid_of(&new_token), new_kid);
    for token in [&old_token, &new_token] {
        assert_eq!(verify(token, &jwks, &idp.url).1["sub"], "demo-service");
        assert!(idp.active(token).await);
    }
    idp.stop().await;
}

#[actix_web::test]
async fn after_the_grace_period_the_old_kid_and_its_tokens_are_gone() {
    let idp = TestIdp::start_with(long_lived()).await;
    let old_token = idp.service_token(&[]).await;
    let old_kid = kid_of(&old_token);
    let new_kid = rotate(&idp, json!({})).await;
    let new_token = idp.service_token(&[]).await;

    idp.advance(590);
    assert_eq!(kids(&idp.jwks().await).len(), 2, "still within key_grace");
    assert!(idp.active(&old_token).await);

    idp.advance(20);
    let jwks = idp.jwks().await;
    assert_eq!(kids(&jwks), vec![new_kid], "{old_kid} must be gone");
    assert!(!idp.active(&old_token).await);
    assert!(idp.active(&new_token).await);
    idp.stop().await;
}

#[actix_web::test]
async fn repeated_rotation_retires_each_key_on_its_own_schedule() {
    let idp = TestIdp::start_with(long_lived()).await;
    let first = kid_of(&idp.service_token(&[]).await);
    let second = rotate(&idp, json!({})).await;
    idp.advance(300);
    let third = rotate(&idp, json!({})).await;
    assert_eq!(
        kids(&idp.jwks().await),
        vec![third.clone(), second.clone(), first]
    );
    idp.advance(310);
    assert_eq!(kids(&idp.jwks().await), vec![third.clone(), second]);
    idp.advance(300);
    assert_eq!(kids(&idp.jwks().await), vec![third]);
    idp.stop().await;
}

#[actix_web::test]
async fn rotation_can_switch_the_algorithm_and_discovery_follows() {
    let idp = TestIdp::start().await;
    let old_token = idp.service_token(&[]).await;
    rotate(&idp, json!({ "alg": "ES256" })).await;
    let token = idp.service_token(&[]).await;
    let jwks = idp.jwks().await;
    assert_eq!(
        format!("{:?}", jsonwebtoken::decode_header(&token).unwrap().alg),
        "ES256"
    );
    verify(&token, &jwks, &idp.url);
    verify(&old_token, &jwks, &idp.url);
    let doc = idp.get("/.well-known/openid-configuration").await.body;
    assert_eq!(
        doc["id_token_signing_alg_values_supported"],
        json!(["ES256", "RS256"])
    );

    for body in [json!({ "alg": "HS256" }), json!({ "colour": "red" })] {
        let refused = idp.post_json("/_dev/keys/rotate", body).await;
        refused.assert_error(400, "invalid_request");
    }
    idp.stop().await;
}
