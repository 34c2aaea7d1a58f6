//! `registration.mode = "proxy"` against the dev IdP: registrations forwarded upstream,
//! 429/503 retried with backoff, refusals passed back, identical public registrations
//! coalesced, and upstream clients deleted when the broker removes theirs.

use std::time::Duration;

use serde_json::{Value, json};
use token_broker::store::ClientOrigin;

use crate::support::{TestBroker, config_text, http};

fn proxy_config(extra: &str) -> String {
    config_text().replace(
        "[upstream]",
        &format!("[registration]\nmode = \"proxy\"\n{extra}\n[upstream]"),
    )
}

fn claude() -> Value {
    json!({"redirect_uris": ["https://claude.ai/api/mcp/auth_callback"],
           "token_endpoint_auth_method": "client_secret_post",
           "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"],
           "client_name": "Claude"})
}

async fn register(broker: &TestBroker, body: &Value) -> reqwest::Response {
    http()
        .post(broker.at("/oauth/register"))
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn fault(broker: &TestBroker, spec: Value) {
    broker.idp.fault(spec).await;
}

async fn register_calls(broker: &TestBroker) -> (u64, Vec<u64>) {
    let body: Value = http()
        .get(format!("{}/_dev/calls", broker.idp.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let log = &body["calls"]["register"];
    let at = log["at_ms"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default();
    (log["count"].as_u64().unwrap_or(0), at)
}

#[actix_web::test]
async fn a_registration_is_forwarded_to_the_provider() {
    let broker = TestBroker::start_with(&proxy_config(""), |_| {}).await;
    let response = register(&broker, &claude()).await;
    assert_eq!(response.status(), 201);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(
        answer["redirect_uris"],
        json!(["https://claude.ai/api/mcp/auth_callback"])
    );
    assert_eq!(register_calls(&broker).await.0, 1);
    let stored = broker
        .state
        .store
        .get_client(answer["client_id"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    let ClientOrigin::Proxied {
        upstream_client_id,
        registration_client_uri,
        registration_access_token,
        ..
    } = stored.origin
    else {
        panic!("not proxied: {:?}", stored.origin);
    };
    // The upstream client exists, with the broker's callback as its redirect URI.
    let upstream: Value = http()
        .get(registration_client_uri.unwrap())
        .bearer_auth(registration_access_token.unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(upstream["client_id"], upstream_client_id);
    assert_eq!(
        upstream["redirect_uris"],
        json!(["http://127.0.0.1:9/oauth/callback"])
    );
    assert_eq!(upstream["client_name"], "Claude (via token-broker)");
    broker.stop().await;
}

#[actix_web::test]
async fn three_429s_are_waited_out_as_asked() {
    let broker = TestBroker::start_with(&proxy_config(""), |_| {}).await;
    fault(
        &broker,
        json!({"endpoint": "register", "status": 429, "count": 3, "retry_after": "1"}),
    )
    .await;
    let response = register(&broker, &claude()).await;
    assert_eq!(response.status(), 201);
    let (count, at) = register_calls(&broker).await;
    assert_eq!(count, 4);
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
async fn a_storm_longer_than_the_deadline_ends_in_503_with_retry_after() {
    let broker = TestBroker::start_with(
        &proxy_config("retry_deadline = \"1500ms\"\nretry_base = \"50ms\""),
        |_| {},
    )
    .await;
    fault(
        &broker,
        json!({"endpoint": "register", "status": 503, "count": 100, "retry_after": "1"}),
    )
    .await;
    let response = register(&broker, &claude()).await;
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "1");
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"],
        "temporarily_unavailable"
    );
    let (count, _) = register_calls(&broker).await;
    assert!((2..=3).contains(&count), "{count} upstream attempts");
    assert_eq!(broker.state.store.count_clients().await.unwrap(), 0);
    broker.stop().await;
}

#[actix_web::test]
async fn a_refusal_is_passed_back_and_not_retried() {
    // The entra profile spells the client's scope out upstream; the dev IdP knows
    // none of it.
    let text = proxy_config("").replace("[upstream]\n", "[upstream]\nprofile = \"entra\"\n");
    let broker = TestBroker::start_with(&text, |_| {}).await;
    let mut body = claude();
    body["scope"] = json!("not-a-scope-the-provider-knows");
    let response = register(&broker, &body).await;
    assert_eq!(response.status(), 400);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["error"], "invalid_client_metadata");
    assert!(
        answer["error_description"]
            .as_str()
            .unwrap()
            .contains("refused"),
        "{answer}"
    );
    assert_eq!(register_calls(&broker).await.0, 1);
    broker.stop().await;
}

#[actix_web::test]
async fn fifty_identical_public_registrations_cost_the_provider_one_client() {
    let broker = TestBroker::start_with(
        &proxy_config("rate_limit_per_minute = 1000\nrate_limit_burst = 1000"),
        |_| {},
    )
    .await;
    let zed = json!({"client_name": "Zed", "grant_types": ["authorization_code"], "response_types": ["code"],
                     "token_endpoint_auth_method": "none", "redirect_uris": ["http://127.0.0.1:27523/callback"]});
    let client = http();
    let requests = (0..50).map(|_| client.post(broker.at("/oauth/register")).json(&zed).send());
    let answers = futures_util::future::join_all(requests).await;
    let mut ids = Vec::new();
    for answer in answers {
        let answer = answer.unwrap();
        assert_eq!(answer.status(), 201);
        ids.push(
            answer.json::<Value>().await.unwrap()["client_id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 1);
    assert!(
        broker
            .state
            .store
            .get_client(&ids[0])
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(register_calls(&broker).await.0, 1);
    broker.stop().await;
}

#[actix_web::test]
async fn removing_an_unused_client_deletes_it_upstream() {
    let broker = TestBroker::start_with(&proxy_config(""), |_| {}).await;
    let answer: Value = register(&broker, &claude()).await.json().await.unwrap();
    let stored = broker
        .state
        .store
        .get_client(answer["client_id"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    let ClientOrigin::Proxied {
        registration_client_uri: Some(uri),
        registration_access_token: Some(token),
        ..
    } = stored.origin
    else {
        panic!("no RFC 7592 management");
    };
    broker.clock.advance(Duration::from_secs(24 * 3600 + 1));
    assert_eq!(broker.state.registration.sweep().await.unwrap().removed, 1);
    let gone = http().get(uri).bearer_auth(token).send().await.unwrap();
    assert_eq!(gone.status(), 401, "the upstream registration still exists");
    broker.stop().await;
}

#[actix_web::test]
async fn proxy_mode_refuses_a_provider_without_registration() {
    let idp = token_broker::dev_idp::DevIdpConfig {
        dynamic_registration: false,
        ..Default::default()
    };
    let broker = TestBroker::start_with_idp(&proxy_config(""), idp, |_| {}).await;
    let error = token_broker::server::startup_checks(&broker.state)
        .await
        .unwrap_err();
    assert!(
        error.contains("advertises no registration_endpoint"),
        "{error}"
    );
    // Local mode does not care.
    let idp = token_broker::dev_idp::DevIdpConfig {
        dynamic_registration: false,
        ..Default::default()
    };
    let local = TestBroker::start_with_idp(&config_text(), idp, |_| {}).await;
    assert!(
        token_broker::server::startup_checks(&local.state)
            .await
            .is_ok()
    );
    broker.stop().await;
    local.stop().await;
}
