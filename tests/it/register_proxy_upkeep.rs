//! Proxy mode's side of a client's life at a real provider (the oidc-provider rig):
//! a provider that forgot the upstream client leads to a fresh registration on the
//! next login, the sweep deletes removed clients there (RFC 7592), and a provider
//! rate-limiting its registration endpoint (429 with `Retry-After`) is waited out.

use std::time::Duration;

use serde_json::{Value, json};
use token_broker::store::ClientOrigin;

use crate::e2e_oidc_login::log_in_at_provider;
use crate::e2e_oidc_provider::{Rig, start_rig};
use crate::login_consent::{answer, authorize_url, location, open_consent, query, register};
use crate::login_flow::redeem;
use crate::register_proxy_rig::proxy_broker;
use crate::support::{TestBroker, http};

/// The stored client's upstream registration: id, management URI and token.
async fn upstream_of(broker: &TestBroker, client_id: &str) -> (String, String, String) {
    let stored = broker
        .state
        .store
        .get_client(client_id)
        .await
        .unwrap()
        .unwrap();
    let ClientOrigin::Proxied {
        upstream_client_id,
        registration_client_uri: Some(uri),
        registration_access_token: Some(token),
        ..
    } = stored.origin
    else {
        panic!("no RFC 7592 management: {:?}", stored.origin);
    };
    (upstream_client_id, uri, token)
}

async fn rig_calls(rig: &Rig, path: &str) -> Vec<u64> {
    let body: Value = http()
        .get(format!("{}/_rig/calls?path={path}", rig.issuer))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["at_ms"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_u64)
        .collect()
}

#[actix_web::test]
async fn a_provider_that_forgot_the_client_gets_a_fresh_registration_on_the_next_login() {
    let rig = start_rig();
    let broker = proxy_broker(Some(&rig)).await;
    let client = register(&broker, "Forgotten").await;
    let (before, uri, token) = upstream_of(&broker, &client).await;
    // The provider's own clean-up (or a restart without it) removes the client.
    let deleted = http()
        .delete(&uri)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);

    let (landed, hops) = log_in_at_provider(&broker, &rig, &client, &[]).await;
    let code = landed
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("no code: {landed} {hops:?}"));
    let (status, body) = redeem(&broker, &client, &code).await;
    assert_eq!(status, 200, "{body}");
    let (after, uri, token) = upstream_of(&broker, &client).await;
    assert_ne!(after, before, "the forgotten upstream client was used");
    let known = http().get(&uri).bearer_auth(&token).send().await.unwrap();
    assert_eq!(known.status(), 200);
    assert_eq!(rig_calls(&rig, "/reg").await.len(), 2);

    // A second login finds the new registration alive and registers nothing.
    let (landed, hops) = log_in_at_provider(&broker, &rig, &client, &[]).await;
    assert!(landed.as_str().contains("code="), "{landed} {hops:?}");
    assert_eq!(rig_calls(&rig, "/reg").await.len(), 2);
    broker.stop().await;
}

#[actix_web::test]
async fn the_sweep_deletes_a_removed_client_at_oidc_provider() {
    let rig = start_rig();
    let broker = proxy_broker(Some(&rig)).await;
    let client = register(&broker, "Never used").await;
    let (_, uri, token) = upstream_of(&broker, &client).await;
    broker.clock.advance(Duration::from_secs(24 * 3600 + 1));
    assert_eq!(broker.state.registration.sweep().await.unwrap().removed, 1);
    let gone = http().get(&uri).bearer_auth(&token).send().await.unwrap();
    assert_eq!(gone.status(), 401, "the upstream registration still exists");
    broker.stop().await;
}

#[actix_web::test]
async fn oidc_provider_answering_429_is_waited_out_as_asked() {
    let rig = start_rig();
    let broker = proxy_broker(Some(&rig)).await;
    let fault = http()
        .post(format!("{}/_rig/faults", rig.issuer))
        .json(&json!({"path": "/reg", "status": 429, "count": 2, "retry_after": "1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(fault.status(), 204);
    let client = register(&broker, "Patient").await;
    upstream_of(&broker, &client).await;
    let at = rig_calls(&rig, "/reg").await;
    assert_eq!(at.len(), 3, "{at:?}");
    for pair in at.windows(2) {
        assert!(
            pair[1] - pair[0] >= 1000,
            "retried after {} ms, before Retry-After",
            pair[1] - pair[0]
        );
    }
    broker.stop().await;
}

#[actix_web::test]
async fn oidc_provider_staying_busy_ends_in_503_with_retry_after() {
    let rig = start_rig();
    let text = crate::register_proxy_rig::proxy_text(Some(&rig.issuer)).replace(
        "mode = \"proxy\"",
        "mode = \"proxy\"\nretry_deadline = \"1500ms\"\nretry_base = \"50ms\"",
    );
    let broker = TestBroker::start_live(&text, Default::default(), |_| {}).await;
    let fault = http()
        .post(format!("{}/_rig/faults", rig.issuer))
        .json(&json!({"path": "/reg", "status": 503, "count": 100, "retry_after": "1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(fault.status(), 204);
    let response = http()
        .post(broker.at("/oauth/register"))
        .json(
            &json!({"client_name": "Busy", "redirect_uris": ["http://127.0.0.1:4711/callback"],
                      "token_endpoint_auth_method": "none"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "1");
    let attempts = rig_calls(&rig, "/reg").await.len();
    assert!((2..=3).contains(&attempts), "{attempts} upstream attempts");
    assert_eq!(broker.state.store.count_clients().await.unwrap(), 0);
    broker.stop().await;
}

#[actix_web::test]
async fn an_upstream_secret_about_to_expire_is_replaced_before_the_login() {
    let idp = token_broker::dev_idp::DevIdpConfig {
        registered_secret_ttl: Some(Duration::from_secs(3600)),
        ..Default::default()
    };
    let text = crate::register_proxy_rig::proxy_text(None);
    let broker = TestBroker::start_with_idp(&text, idp, |_| {}).await;
    let client = register(&broker, "Expiring").await;
    let (first, old_uri, old_token) = upstream_of(&broker, &client).await;
    let upstream_client_id = |approved: &reqwest::Response| {
        let location = location(approved);
        query(&location, "client_id").unwrap()
    };

    // Well before expiry the login uses the registered client.
    let consent = open_consent(&authorize_url(&broker, &client, &[])).await;
    let approved = answer(&broker, &consent, "approve").await;
    assert_eq!(upstream_client_id(&approved), first);

    // Within the renewal margin of expiry: a fresh registration, the old one deleted.
    broker.clock.advance(Duration::from_secs(3600 - 60));
    let consent = open_consent(&authorize_url(&broker, &client, &[])).await;
    let approved = answer(&broker, &consent, "approve").await;
    let (second, _, _) = upstream_of(&broker, &client).await;
    assert_ne!(second, first);
    assert_eq!(upstream_client_id(&approved), second);
    let old = http()
        .get(&old_uri)
        .bearer_auth(&old_token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        old.status(),
        401,
        "the replaced registration was not deleted"
    );
    broker.stop().await;
}
