//! Signing keys live in the shared Redis: a rotation written there (`token-broker
//! rotate-keys`, as an operator runs it) is published by a replica started before it
//! once that replica re-reads its keys, before the new key signs anything; and a token
//! the other replica signs with the new key verifies on it. The reload is triggered
//! by the test, and the activation time reached by moving the brokers' clock.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use token_broker::clock::Clock;
use token_broker::server::{self, Broker};

use crate::login_consent::register;
use crate::login_flow::{login, redeem, verify};
use crate::replicas::{Redis, replica_config};
use crate::support::{TestDevIdp, http, run_binary};

/// Starts a replica on `listener`: its base URL and state.
fn start(text: &str, listener: TcpListener, clock: &Clock) -> (String, std::sync::Arc<Broker>) {
    let config = token_broker::config::load_str(text, &Default::default()).unwrap();
    let running = server::start_with(Arc::new(config), listener, clock.clone(), |_| {}).unwrap();
    let url = format!("http://{}", running.addr);
    let state = running.state.clone();
    actix_web::rt::spawn(running.serve_until(std::future::pending::<()>()));
    (url, state)
}

async fn published(base: &str) -> Vec<String> {
    let jwks: serde_json::Value = http()
        .get(format!("{base}/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

#[actix_web::test]
async fn a_key_rotated_in_redis_is_published_by_every_replica_before_it_signs() {
    let redis = Redis::start();
    let clock = Clock::system();
    let idp = TestDevIdp::start_with_clock(Default::default(), clock.clone()).await;
    let (listener_a, listener_b) = (
        TcpListener::bind("127.0.0.1:0").unwrap(),
        TcpListener::bind("127.0.0.1:0").unwrap(),
    );
    let issuer = format!("http://{}", listener_a.local_addr().unwrap());
    let text = replica_config(&issuer, &idp.url, &redis.url());
    // B first: it creates the first key in Redis; A finds it there.
    let (b, b_state) = start(&text, listener_b, &clock);
    let (a, a_state) = start(&text, listener_a, &clock);
    let first = published(&b).await;
    assert_eq!(first.len(), 1);
    assert_eq!(published(&a).await, first, "one key for both replicas");

    // The operator rotates through the store, the new key active in 10 minutes.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("replica.toml");
    std::fs::write(&path, &text).unwrap();
    let output = run_binary(vec![
        "rotate-keys".into(),
        "--config".into(),
        path.display().to_string(),
        "--activate-in".into(),
        "10m".into(),
    ])
    .await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let new_kid = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    assert!(!first.contains(&new_kid));

    // Not published until a replica re-reads the store; then published at once.
    assert_eq!(published(&b).await, first);
    b_state.signing.reload(clock.unix()).await.unwrap();
    let after = published(&b).await;
    assert!(
        after.contains(&new_kid) && after.contains(&first[0]),
        "{after:?}"
    );

    // Before activation A still signs with the first key, even after its reload.
    a_state.signing.reload(clock.unix()).await.unwrap();
    let client = register(a.as_str(), "rotation").await;
    let code = login(a.as_str(), &client, &[]).await;
    let (status, body) = redeem(a.as_str(), &client, &code).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(kid_of(body["access_token"].as_str().unwrap()), first[0]);

    // After activation A signs with the new key, and B, which published it before,
    // accepts the token.
    clock.advance(Duration::from_secs(601));
    let code = login(a.as_str(), &client, &[]).await;
    let (status, body) = redeem(a.as_str(), &client, &code).await;
    assert_eq!(status, 200, "{body}");
    let access = body["access_token"].as_str().unwrap();
    assert_eq!(kid_of(access), new_kid);
    assert_eq!(
        verify(b.as_str(), access).await,
        (200, Some("alice".into()))
    );
}

#[actix_web::test]
async fn rotate_keys_refuses_an_activation_sooner_than_every_replica_can_publish() {
    let redis = Redis::start();
    let text = replica_config(
        "http://127.0.0.1:9",
        "http://127.0.0.1:9/realms/test",
        &redis.url(),
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("replica.toml");
    std::fs::write(&path, &text).unwrap();
    let output = run_binary(vec![
        "rotate-keys".into(),
        "--config".into(),
        path.display().to_string(),
        "--activate-in".into(),
        "1m".into(),
    ])
    .await;
    assert_eq!(output.status.code(), Some(78));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("at least 5m 30s"), "{stderr}");
}
