//! What a refusal caused by an outage says, found wrong by the soak (benches/soak.sh):
//! while Redis is down, a token the broker issued before cannot be judged (its grant's
//! standing cannot be read), and forward-auth, the gateway and token exchange answer
//! 503 with `Retry-After` — not 401 `invalid_token` or 400 `invalid_request`, which
//! tell a client its token is bad — and let nothing through. A login whose provider
//! answers 503 (or 429, or not at all) when the callback redeems its code goes back to
//! the client with `temporarily_unavailable` (RFC 6749 §4.1.2.1), not `server_error`.

use std::net::TcpListener;
use std::time::Duration;

use serde_json::{Value, json};
use token_broker::clock::Clock;

use crate::login_consent::{live_broker, query, register};
use crate::login_flow::{login, login_redirect, redeem, verify};
use crate::redis_outage::start_broker;
use crate::replicas::{CALLER, NOTES, Redis, replica_config};
use crate::support::{TestDevIdp, http};

fn assert_retry_later(response: &reqwest::Response, what: &str) {
    assert_eq!(response.status(), 503, "{what}");
    assert!(
        response.headers().contains_key("retry-after"),
        "{what}: no Retry-After"
    );
    assert!(
        !response.headers().contains_key("x-auth-subject"),
        "{what}: let through"
    );
}

#[actix_web::test]
async fn with_redis_down_an_issued_token_is_answered_503_with_retry_after_not_401() {
    let redis = Redis::start();
    let clock = Clock::system();
    let idp = TestDevIdp::start_with_clock(Default::default(), clock.clone()).await;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let public_url = format!("http://{}", listener.local_addr().unwrap());
    // Rate limits off: their counters (in Redis too) would refuse first, with 503.
    let text = replica_config(&public_url, &idp.url, &redis.url()).replace(
        "[[exchange.audiences]]",
        "[resources.rate_limit]\nenabled = false\n\n[[exchange.audiences]]",
    ) + "\n[[gateway]]\npath = \"/mcp\"\nupstream = \"http://127.0.0.1:9/mcp\"\n";
    let broker = start_broker(&text, listener, &clock);
    let client = register(broker.as_str(), "outage answers").await;
    let code = login(broker.as_str(), &client, &[]).await;
    let (status, tokens) = redeem(broker.as_str(), &client, &code).await;
    assert_eq!(status, 200, "{tokens}");
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    assert_eq!(verify(broker.as_str(), &access).await.0, 200);

    drop(redis);
    // Past scope_cache.ttl (5m): the grant's standing must be read again.
    clock.advance(Duration::from_secs(301));

    let checked = http()
        .get(format!("{broker}/auth/verify"))
        .header("x-original-uri", "/mcp")
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_retry_later(&checked, "forward-auth");
    assert_eq!(checked.headers()["x-auth-status"], "503");

    let call = http()
        .post(format!("{broker}/mcp"))
        .bearer_auth(&access)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                      "params": {"name": "echo", "arguments": {}}}))
        .send()
        .await
        .unwrap();
    assert_retry_later(&call, "gateway");
    let body: Value = call.json().await.unwrap();
    assert_eq!(body["id"], 7, "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");

    let exchanged = http()
        .post(format!("{broker}/oauth/token"))
        .basic_auth(CALLER.0, Some(CALLER.1))
        .form(&[
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:token-exchange",
            ),
            ("subject_token", access.as_str()),
            (
                "subject_token_type",
                "urn:ietf:params:oauth:token-type:access_token",
            ),
            ("audience", NOTES),
        ])
        .send()
        .await
        .unwrap();
    assert_retry_later(&exchanged, "token exchange");
    let body: Value = exchanged.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable", "{body}");
}

#[actix_web::test]
async fn a_provider_that_cannot_redeem_the_code_now_is_temporarily_unavailable_to_the_client() {
    let broker = live_broker().await;
    let client = register(&broker, "busy provider").await;
    for fault in [
        json!({"endpoint": "token", "status": 503, "count": 1, "retry_after": "2"}),
        json!({"endpoint": "token", "status": 429, "count": 1, "retry_after": "3"}),
    ] {
        broker.idp.fault(fault.clone()).await;
        let to = login_redirect(&broker, &client, &[]).await;
        assert_eq!(
            query(&to, "error").as_deref(),
            Some("temporarily_unavailable"),
            "{fault}: {to}"
        );
        assert_eq!(query(&to, "state").as_deref(), Some("client-state"));
        assert!(query(&to, "code").is_none());
    }
    // The provider back: the same client logs in.
    let code = login(&broker, &client, &[]).await;
    assert_eq!(redeem(&broker, &client, &code).await.0, 200);
}
