//! `refresh.max_upstream_staleness` (default 1 h): the broker refreshes its own grant
//! only while the provider vouched for the session within the bound — past its
//! access token's expiry, a grant the provider cannot be asked about (no provider
//! refresh token) ends, and one whose provider fails is refused (503) but kept.
//! The dev IdP's access tokens live 5 min; the test clock moves both.

use std::time::Duration;

use serde_json::{Value, json};
use token_broker::dev_idp::DevIdpConfig;
use token_broker::store::Grant;

use crate::login_consent::register;
use crate::login_flow::{login, redeem, refresh, verify};
use crate::support::{TestBroker, config_text};

/// The provider token's life plus the default bound.
const PROVIDER_TOKEN: u64 = 300;
const BOUND: u64 = 3_600;

/// A client logged in: its first token answer and the grant behind it.
async fn logged_in(broker: &TestBroker) -> (String, Value, String) {
    let client = register(broker, "Staleness").await;
    let code = login(broker, &client, &[]).await;
    let (status, body) = redeem(broker, &client, &code).await;
    assert_eq!(status, 200, "{body}");
    let grant_id = broker
        .state
        .verifier
        .verify_broker(body["access_token"].as_str().unwrap())
        .await
        .unwrap()
        .principal
        .grant_id
        .clone()
        .unwrap();
    (client, body, grant_id)
}

async fn grant(broker: &TestBroker, grant_id: &str) -> Grant {
    broker
        .state
        .store
        .get_grant(grant_id)
        .await
        .unwrap()
        .unwrap()
}

fn refresh_token(body: &Value) -> &str {
    body["refresh_token"].as_str().unwrap()
}

#[actix_web::test]
async fn without_a_provider_refresh_token_the_grant_ends_once_the_bound_has_run() {
    let mut idp = DevIdpConfig::default();
    // The provider issues the broker no refresh token.
    idp.clients[0].grant_types.retain(|g| g != "refresh_token");
    let broker = TestBroker::start_live(&config_text(), idp, |_| {}).await;
    let (client, body, grant_id) = logged_in(&broker).await;
    assert!(
        grant(&broker, &grant_id)
            .await
            .upstream
            .refresh_token
            .is_none()
    );

    // Within the bound past the provider token's expiry (a minute's margin: real
    // time runs too), the broker still refreshes its grant.
    broker
        .clock
        .advance(Duration::from_secs(PROVIDER_TOKEN + BOUND - 60));
    let (status, body) = refresh(&broker, &client, refresh_token(&body)).await;
    assert_eq!(status, 200, "{body}");
    let access = body["access_token"].as_str().unwrap().to_owned();

    // Past it, nothing can confirm the session: the client must log in again.
    broker.clock.advance(Duration::from_secs(120));
    let (status, refused) = refresh(&broker, &client, refresh_token(&body)).await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused["error"], "invalid_grant");
    assert!(grant(&broker, &grant_id).await.revoked_at.is_some());
    // The grant's access tokens stop verifying with it.
    assert_eq!(verify(&broker, &access).await.0, 401);
}

#[actix_web::test]
async fn a_failing_provider_is_tolerated_within_the_bound_and_refused_past_it_without_revoking() {
    let broker = TestBroker::start_live(&config_text(), Default::default(), |_| {}).await;
    let (client, body, grant_id) = logged_in(&broker).await;
    // The provider's token endpoint fails from now on.
    broker
        .idp
        .fault(json!({"endpoint": "token", "status": 503, "count": 1000}))
        .await;

    // Expired and not refreshable at the provider, but within the bound: issued.
    broker
        .clock
        .advance(Duration::from_secs(PROVIDER_TOKEN + 60));
    let (status, body) = refresh(&broker, &client, refresh_token(&body)).await;
    assert_eq!(status, 200, "{body}");
    assert!(broker.idp.calls("token").await >= 1);

    // Past the bound: refused for now, and the grant is kept.
    broker.clock.advance(Duration::from_secs(BOUND));
    let (status, refused) = refresh(&broker, &client, refresh_token(&body)).await;
    assert_eq!(status, 503, "{refused}");
    assert_eq!(refused["error"], "temporarily_unavailable");
    assert!(grant(&broker, &grant_id).await.revoked_at.is_none());

    // The provider is back: the same refresh token (left unspent) works, and the
    // provider's session is confirmed again.
    broker.idp.reset().await;
    let (status, body) = refresh(&broker, &client, refresh_token(&body)).await;
    assert_eq!(status, 200, "{body}");
    let refreshed = grant(&broker, &grant_id).await;
    assert!(refreshed.upstream.expires_at > Some(broker.clock.unix()));
}
