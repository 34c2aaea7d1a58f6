//! `/readyz` in detail: the store (memory always, Redis reachable) and the provider's
//! metadata (fresh, stale within the grace, unavailable past it) in `checks`, and 503
//! naming what failed.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::redis_outage::broker_on;
use crate::replicas::Redis;
use crate::support::{TestBroker, http};

async fn readyz(url: &str) -> (u16, Value) {
    let response = http().get(format!("{url}/readyz")).send().await.unwrap();
    (
        response.status().as_u16(),
        response.json().await.unwrap_or(Value::Null),
    )
}

fn reasons(body: &Value) -> Vec<String> {
    body["reasons"]
        .as_array()
        .map(|list| {
            list.iter()
                .filter_map(|r| r.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[actix_web::test]
async fn discovery_is_fresh_then_stale_within_the_grace_then_unavailable() {
    let broker = TestBroker::start_with(&crate::management_port::text(true), |_| {}).await;
    let management = broker.management.clone().unwrap();
    let (status, body) = readyz(&management).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "ready");
    assert_eq!(body["checks"]["store"]["status"], "ok", "{body}");
    assert_eq!(body["checks"]["store"]["backend"], "memory", "{body}");
    assert_eq!(body["checks"]["discovery"]["status"], "fresh", "{body}");
    assert_eq!(body["checks"]["draining"], false, "{body}");

    http()
        .post(format!("{}/_dev/down", broker.idp.url))
        .send()
        .await
        .unwrap();
    // Past the TTL (5 min): the last good copy is served, and that is still ready.
    broker.clock.advance(Duration::from_secs(301));
    let (status, body) = readyz(&management).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["checks"]["discovery"]["status"], "stale", "{body}");
    // The clock is the system's plus the offset: real seconds may pass on a busy
    // machine, so the age is at least the step and age + grace left is TTL + grace.
    let age = body["checks"]["discovery"]["age_seconds"].as_u64().unwrap();
    let left = body["checks"]["discovery"]["grace_left_seconds"]
        .as_u64()
        .unwrap();
    assert!((301..=360).contains(&age), "{body}");
    assert_eq!(age + left, 300 + 3600, "{body}");

    // Past the grace (1 h): upstream tokens are refused, so the replica is not ready.
    broker.clock.advance(Duration::from_secs(3600));
    let (status, body) = readyz(&management).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(reasons(&body), ["upstream discovery unavailable"], "{body}");
    assert_eq!(
        body["checks"]["discovery"]["status"], "unavailable",
        "{body}"
    );
    assert_eq!(body["checks"]["store"]["status"], "ok", "{body}");

    http()
        .post(format!("{}/_dev/up", broker.idp.url))
        .send()
        .await
        .unwrap();
    let (status, body) = readyz(&management).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["checks"]["discovery"]["status"], "fresh", "{body}");
    broker.stop().await;
}

#[actix_web::test]
async fn redis_stopped_is_not_ready_naming_the_store_and_back_is_ready() {
    let redis = Redis::start();
    let port = redis.port;
    let (broker, _idp) = broker_on(&redis.url(), "").await;
    let (status, body) = readyz(&broker).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["checks"]["store"]["backend"], "redis", "{body}");
    assert_eq!(body["checks"]["store"]["status"], "ok", "{body}");

    drop(redis);
    let started = Instant::now();
    let (status, body) = readyz(&broker).await;
    assert_eq!(status, 503, "{body}");
    let found = reasons(&body);
    assert_eq!(found.len(), 1, "{body}");
    assert!(found[0].starts_with("store "), "{body}");
    assert_eq!(body["checks"]["store"]["status"], "unavailable", "{body}");
    assert_eq!(body["checks"]["discovery"]["status"], "fresh", "{body}");
    // Bounded: a probe with a short timeout gets its answer.
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );

    let _redis = Redis::start_on(port);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = readyz(&broker).await;
        if status == 200 {
            assert_eq!(body["checks"]["store"]["status"], "ok", "{body}");
            break;
        }
        assert!(Instant::now() < deadline, "never ready again: {body}");
        actix_web::rt::time::sleep(Duration::from_millis(200)).await;
    }
}
