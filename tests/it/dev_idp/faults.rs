//! The fault knobs and call counters under `/_dev/`, and faults given at start.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use token_broker::dev_idp::DevIdpConfig;
use token_broker::dev_idp::faults::FaultSpec;

use super::{BROKER, SERVICE, TestIdp};

const HTTP_DATE: &str = "Wed, 21 Oct 2015 07:28:00 GMT";

async fn register(idp: &TestIdp) -> super::Answer {
    idp.post_json(
        "/register",
        json!({ "grant_types": ["client_credentials"] }),
    )
    .await
}

async fn fault(idp: &TestIdp, spec: Value) {
    let answer = idp.post_json("/_dev/faults", spec.clone()).await;
    assert_eq!(answer.status, 204, "{spec}: {}", answer.body);
}

fn unix_ms(time: SystemTime) -> u64 {
    u64::try_from(time.duration_since(UNIX_EPOCH).unwrap().as_millis()).unwrap()
}

#[actix_web::test]
async fn queued_429_answers_exactly_count_calls_with_retry_after_then_serves() {
    let idp = TestIdp::start().await;
    fault(
        &idp,
        json!({ "endpoint": "register", "status": 429, "count": 2, "retry_after": "7" }),
    )
    .await;
    for _ in 0..2 {
        let limited = register(&idp).await;
        limited.assert_error(429, "temporarily_unavailable");
        assert_eq!(limited.header("retry-after"), Some("7"));
    }
    let served = register(&idp).await;
    assert_eq!(served.status, 201, "{}", served.body);
    assert!(served.header("retry-after").is_none());
    assert_eq!(idp.calls("register").await, 3);
    // Other endpoints were never affected.
    assert_eq!(idp.get("/jwks").await.status, 200);
    idp.stop().await;
}

#[actix_web::test]
async fn http_date_retry_after_passes_through_verbatim() {
    let idp = TestIdp::start().await;
    for status in [429, 503] {
        fault(
            &idp,
            json!({ "endpoint": "token", "status": status, "retry_after": HTTP_DATE }),
        )
        .await;
        let answer = idp
            .token(SERVICE, &[("grant_type", "client_credentials")])
            .await;
        assert_eq!(answer.status, status);
        assert_eq!(answer.header("retry-after"), Some(HTTP_DATE));
    }
    // `count` defaults to one call.
    let served = idp
        .token(SERVICE, &[("grant_type", "client_credentials")])
        .await;
    assert_eq!(served.status, 200);
    idp.stop().await;
}

#[actix_web::test]
async fn queued_503_answers_count_calls_with_retry_after_then_serves() {
    let idp = TestIdp::start().await;
    let spec = json!({ "endpoint": "discovery", "status": 503, "count": 2, "retry_after": "30" });
    fault(&idp, spec).await;
    for path in [
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
    ] {
        let answer = idp.get(path).await;
        answer.assert_error(503, "temporarily_unavailable");
        assert_eq!(answer.header("retry-after"), Some("30"));
    }
    assert_eq!(
        idp.get("/.well-known/openid-configuration").await.status,
        200
    );
    idp.stop().await;
}

#[actix_web::test]
async fn latency_delays_every_call_to_its_endpoint_by_at_least_the_configured_time() {
    let idp = TestIdp::start().await;
    fault(&idp, json!({ "endpoint": "jwks", "latency_ms": 250 })).await;
    for _ in 0..2 {
        let started = Instant::now();
        assert_eq!(idp.get("/jwks").await.status, 200);
        // Only a lower bound: how much slower a loaded machine is does not matter.
        assert!(
            started.elapsed() >= Duration::from_millis(250),
            "{:?}",
            started.elapsed()
        );
    }
    fault(&idp, json!({ "endpoint": "jwks", "latency_ms": 0 })).await;
    assert_eq!(idp.get("/jwks").await.status, 200);
    idp.stop().await;
}

#[actix_web::test]
async fn down_answers_503_for_every_endpoint_while_the_control_api_answers() {
    let idp = TestIdp::start().await;
    assert_eq!(idp.post_json("/_dev/down", json!({})).await.status, 204);
    idp.get("/.well-known/openid-configuration")
        .await
        .assert_error(503, "temporarily_unavailable");
    idp.get("/jwks")
        .await
        .assert_error(503, "temporarily_unavailable");
    idp.token(SERVICE, &[("grant_type", "client_credentials")])
        .await
        .assert_error(503, "temporarily_unavailable");
    register(&idp)
        .await
        .assert_error(503, "temporarily_unavailable");
    assert_eq!(idp.get("/_dev/calls").await.status, 200);
    assert_eq!(idp.calls("jwks").await, 1, "calls are counted while down");

    assert_eq!(idp.post_json("/_dev/up", json!({})).await.status, 204);
    assert_eq!(idp.get("/jwks").await.status, 200);
    assert_eq!(
        idp.token(SERVICE, &[("grant_type", "client_credentials")])
            .await
            .status,
        200
    );
    idp.stop().await;
}

#[actix_web::test]
async fn calls_are_counted_per_endpoint_and_per_grant_with_the_idps_time() {
    let idp = TestIdp::start().await;
    let before = unix_ms(idp.clock.now());
    idp.get("/jwks").await;
    idp.service_token(&[]).await;
    idp.code_flow(&[]).await;
    idp.advance(3600);
    idp.service_token(&[]).await;
    let after = unix_ms(idp.clock.now());

    let calls = idp.get("/_dev/calls").await.body["calls"].clone();
    assert_eq!(calls["jwks"]["count"], 1);
    assert_eq!(calls["authorize"]["count"], 1);
    assert_eq!(calls["token"]["count"], 3);
    assert_eq!(calls["token:client_credentials"]["count"], 2);
    assert_eq!(calls["token:authorization_code"]["count"], 1);
    assert!(calls.get("introspect").is_none(), "{calls}");
    let stamps: Vec<u64> = calls["token:client_credentials"]["at_ms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(stamps.len(), 2);
    assert!(
        stamps[0] >= before && stamps[0] < before + 3_600_000,
        "{stamps:?}"
    );
    assert!(
        stamps[1] >= before + 3_600_000 && stamps[1] <= after,
        "moved clock: {stamps:?}"
    );
    idp.stop().await;
}

#[actix_web::test]
async fn reset_clears_counters_and_every_knob() {
    let idp = TestIdp::start().await;
    fault(
        &idp,
        json!({ "endpoint": "jwks", "status": 429, "count": 5 }),
    )
    .await;
    idp.post_json("/_dev/exchange", json!({ "refuse": true }))
        .await;
    idp.post_json("/_dev/down", json!({})).await;
    idp.get("/jwks").await;

    assert_eq!(idp.post_json("/_dev/reset", json!({})).await.status, 204);
    assert_eq!(idp.get("/_dev/calls").await.body, json!({ "calls": {} }));
    assert_eq!(
        idp.get("/jwks").await.status,
        200,
        "neither down nor rate limited"
    );
    let user = idp.code_flow(&[]).await;
    let form = [
        (
            "grant_type",
            "urn:ietf:params:oauth:grant-type:token-exchange",
        ),
        ("subject_token", user.str("access_token")),
        ("subject_token_type", super::ACCESS_TOKEN_TYPE),
    ];
    assert_eq!(
        idp.token(SERVICE, &form).await.status,
        200,
        "exchange no longer refused"
    );
    idp.stop().await;
}

#[actix_web::test]
async fn faults_given_in_the_config_apply_from_the_start() {
    let idp = TestIdp::start_with(DevIdpConfig {
        faults: vec![
            FaultSpec {
                endpoint: "token".to_owned(),
                status: Some(429),
                count: Some(1),
                retry_after: Some("2".to_owned()),
                latency_ms: None,
            },
            FaultSpec {
                endpoint: "introspect".to_owned(),
                status: None,
                count: None,
                retry_after: None,
                latency_ms: Some(200),
            },
        ],
        ..Default::default()
    })
    .await;
    let first = idp
        .token(SERVICE, &[("grant_type", "client_credentials")])
        .await;
    first.assert_error(429, "temporarily_unavailable");
    assert_eq!(first.header("retry-after"), Some("2"));
    let token = idp.service_token(&[]).await;
    let started = Instant::now();
    assert!(idp.active(&token).await);
    assert!(started.elapsed() >= Duration::from_millis(200));
    idp.stop().await;
}

#[actix_web::test]
async fn invalid_faults_are_refused_with_400() {
    let idp = TestIdp::start().await;
    for spec in [
        json!({ "endpoint": "nowhere", "status": 429 }),
        json!({ "endpoint": "token", "status": 500 }),
        json!({ "endpoint": "token", "status": 429, "count": 0 }),
        json!({ "endpoint": "token", "status": 429, "colour": "red" }),
        json!({ "status": 429 }),
    ] {
        idp.post_json("/_dev/faults", spec)
            .await
            .assert_error(400, "invalid_request");
    }
    // Nothing was queued by the refused specs.
    assert_eq!(
        idp.token(SERVICE, &[("grant_type", "client_credentials")])
            .await
            .status,
        200
    );
    idp.stop().await;
}

#[actix_web::test]
async fn control_clock_moves_the_idps_time() {
    let idp = TestIdp::start().await;
    let code = idp.code(&[]).await;
    let before = idp.clock.now();
    let moved = idp
        .post_json("/_dev/clock", json!({ "advance_secs": 61 }))
        .await;
    assert_eq!(moved.status, 200);
    let now = moved.body["now"].as_u64().unwrap();
    assert!(now >= unix_ms(before) / 1000 + 61, "{}", moved.body);
    idp.redeem(BROKER, &code)
        .await
        .assert_error(400, "invalid_grant");
    idp.stop().await;
}
