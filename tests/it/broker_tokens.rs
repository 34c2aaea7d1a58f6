//! The broker's own access tokens: published keys, and every way a forged, stale,
//! revoked or withdrawn one is refused by `/auth/verify`. Also
//! `tokens.mode = "passthrough"`.

use std::time::Duration;

use serde_json::{Value, json};
use token_broker::domain::invalidation::Invalidation;
use token_broker::domain::scope::Scopes;
use token_broker::store::{Grant, UpstreamTokens};
use token_broker::tokens::issue::{Minting, mint};
use token_broker::tokens::key_file::rotate_file;
use token_broker::tokens::keypair::{KeyPair, SigningAlg};
use token_broker::tokens::signing::SigningKeys;

use crate::login_consent::register;
use crate::login_flow::{login, redeem};
use crate::support::{TestBroker, config_text, http, load};
use crate::verify::failures;

const RESOURCE: &str = "http://127.0.0.1:9/mcp";

/// A token for `audience` of grant `grant`, issued now, living `ttl`.
/// A token the broker signed, of a grant it holds (stored here when new).
async fn minted_for(broker: &TestBroker, audience: &str, grant: &str, ttl: Duration) -> String {
    if broker.state.store.get_grant(grant).await.unwrap().is_none() {
        broker
            .state
            .store
            .put_grant(Grant {
                grant_id: grant.to_owned(),
                subject: "alice".to_owned(),
                client_id: "c1".to_owned(),
                scopes: Scopes::of(["notes:read"]),
                resource: None,
                upstream: UpstreamTokens {
                    access_token: "upstream".to_owned(),
                    refresh_token: None,
                    expires_at: None,
                    scope: None,
                    obtained_at: None,
                    identity: None,
                },
                created_at: broker.clock.unix(),
                revoked_at: None,
            })
            .await
            .unwrap();
    }
    mint(
        &broker.state.signing,
        &Minting {
            issuer: broker.state.config.server.public_url.as_str(),
            subject: "alice",
            client_id: "c1",
            audience,
            scopes: &Scopes::of(["notes:read"]),
            grant_id: grant,
            now: broker.clock.unix(),
            ttl,
            identity: None,
        },
    )
    .unwrap()
    .0
}

async fn minted(broker: &TestBroker, audience: &str) -> String {
    minted_for(broker, audience, "g1", Duration::from_secs(900)).await
}

async fn forward(broker: &TestBroker, token: &str) -> reqwest::Response {
    http()
        .get(broker.at("/auth/verify"))
        .header("x-original-uri", "/mcp")
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

async fn verify(broker: &TestBroker, token: &str) -> u16 {
    forward(broker, token).await.status().as_u16()
}

async fn jwks(broker: &TestBroker) -> Value {
    http()
        .get(broker.at("/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

#[actix_web::test]
async fn jwks_publishes_the_public_key_that_verifies_issued_tokens() {
    let broker = TestBroker::start().await;
    let token = minted(&broker, RESOURCE).await;
    let kid = kid_of(&token);
    let jwks = jwks(&broker).await;
    assert_eq!(jwks, broker.state.signing.jwks(broker.clock.unix()));
    let keys = jwks["keys"].as_array().unwrap();
    assert!(keys.iter().any(|k| k["kid"] == kid.as_str()));
    assert!(
        keys.iter()
            .all(|k| k.get("d").is_none() && k["use"] == "sig")
    );
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    let response = forward(&broker, &token).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-auth-subject"], "alice");
    assert_eq!(response.headers()["x-auth-scopes"], "notes:read");
    assert_eq!(response.headers()["x-auth-client-id"], "c1");
    // The same key verifies it outside the broker, as a resource server would.
    let published = keys.iter().find(|k| k["kid"] == kid.as_str()).unwrap();
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(published.clone()).unwrap();
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.set_audience(&[RESOURCE]);
    jsonwebtoken::decode::<Value>(
        &token,
        &jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap(),
        &validation,
    )
    .unwrap();
}

#[actix_web::test]
async fn forged_swapped_stale_and_misdirected_tokens_are_refused() {
    let broker = TestBroker::start().await;
    let good = minted(&broker, RESOURCE).await;
    let kid = kid_of(&good);
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
    assert_eq!(failures(&broker, "bad_signature").await, 1);
    // The right kid with another algorithm.
    let es = KeyPair::generate(SigningAlg::Es256).unwrap();
    let mut header = es.header("at+jwt");
    header.kid = Some(kid);
    let swapped = jsonwebtoken::encode(&header, &claims, es.encoding()).unwrap();
    assert_eq!(verify(&broker, &swapped).await, 401);
    assert_eq!(failures(&broker, "alg_not_allowed").await, 1);
    // The broker's own key, but not an access token, or without a grant.
    let now = broker.clock.unix();
    let typed_jwt = broker.state.signing.sign("JWT", &claims, now).unwrap();
    assert_eq!(verify(&broker, &typed_jwt).await, 401);
    assert_eq!(failures(&broker, "wrong_type").await, 1);
    let mut no_sid = claims.clone();
    no_sid.as_object_mut().unwrap().remove("sid");
    let no_sid = broker.state.signing.sign("at+jwt", &no_sid, now).unwrap();
    assert_eq!(verify(&broker, &no_sid).await, 401);
    assert_eq!(failures(&broker, "missing_claims").await, 1);
    // For another resource.
    assert_eq!(
        verify(&broker, &minted(&broker, "https://other.example/mcp").await).await,
        401
    );
    // Expired, on the broker's clock, past the leeway.
    assert_eq!(verify(&broker, &good).await, 200);
    broker.clock.advance(Duration::from_secs(900 + 31));
    assert_eq!(verify(&broker, &good).await, 401);
    assert_eq!(failures(&broker, "expired").await, 1);
}

#[actix_web::test]
async fn a_revoked_grant_is_refused_on_the_next_request_even_after_a_cached_success() {
    let broker = TestBroker::start().await;
    let ttl = Duration::from_secs(900);
    let doomed = minted_for(&broker, RESOURCE, "g-doomed", ttl).await;
    let other = minted_for(&broker, RESOURCE, "g-other", ttl).await;
    // Twice: the second answer comes from the verified-token cache.
    assert_eq!(verify(&broker, &doomed).await, 200);
    assert_eq!(verify(&broker, &doomed).await, 200);
    assert_eq!(verify(&broker, &other).await, 200);
    broker
        .state
        .store
        .revoke_grant("g-doomed", broker.clock.unix())
        .await
        .unwrap();
    broker
        .state
        .grant_flow
        .invalidate(Invalidation::GrantId("g-doomed".into()))
        .await;
    assert_eq!(verify(&broker, &doomed).await, 401);
    assert_eq!(failures(&broker, "revoked").await, 1);
    // A new token of the same grant is refused too; other grants are untouched.
    let fresh = minted_for(&broker, RESOURCE, "g-doomed", ttl).await;
    assert_eq!(verify(&broker, &fresh).await, 401);
    assert_eq!(verify(&broker, &other).await, 200);
}

#[actix_web::test]
async fn a_retired_key_verifies_within_its_grace_and_not_after() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("signing-keys.json");
    let text = format!(
        "{}\n[tokens]\nkey_file = {}\nkey_grace = \"1h\"\n",
        config_text(),
        json!(path.to_str().unwrap())
    );
    // The file as `rotate-keys --activate-in 60s` leaves it: the old key signs for
    // another minute, the new one is already published.
    let tokens = load(&text).tokens;
    let now = token_broker::clock::Clock::system().unix();
    SigningKeys::load_or_create(&tokens, now).unwrap();
    let new_kid = rotate_file(&path, SigningAlg::Rs256, now, now + 60, 3_600).unwrap();
    let broker = TestBroker::start_with(&text, |_| {}).await;
    assert_eq!(jwks(&broker).await["keys"].as_array().unwrap().len(), 2);

    // Long-lived so that only the key's withdrawal can end them.
    let long = Duration::from_secs(3 * 3_600);
    let old = minted_for(&broker, RESOURCE, "g1", long).await;
    let old_unused = minted_for(&broker, RESOURCE, "g1", long).await;
    assert_ne!(kid_of(&old), new_kid, "not active yet");
    assert_eq!(verify(&broker, &old).await, 200);

    broker.clock.advance(Duration::from_secs(60));
    let new = minted_for(&broker, RESOURCE, "g1", long).await;
    assert_eq!(kid_of(&new), new_kid, "active now");
    assert_eq!(
        verify(&broker, &old).await,
        200,
        "retired, within the grace"
    );
    assert_eq!(verify(&broker, &new).await, 200);

    broker.clock.advance(Duration::from_secs(3_600));
    assert_eq!(verify(&broker, &old).await, 401, "cached, key withdrawn");
    assert_eq!(verify(&broker, &old_unused).await, 401, "never seen");
    assert_eq!(failures(&broker, "unknown_kid").await, 2);
    assert_eq!(verify(&broker, &new).await, 200);
    let keys = jwks(&broker).await;
    assert_eq!(keys["keys"].as_array().unwrap().len(), 1);
    assert_eq!(keys["keys"][0]["kid"], new_kid.as_str());
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
