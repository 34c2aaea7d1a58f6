//! Registration across replicas: two brokers on one Redis count one rate limit —
//! with a burst of three they admit three registrations between them, not three
//! each; the next is refused with `Retry-After` on either, and one interval later
//! one more is admitted — and answer a repeated public registration with the one
//! client, whichever of them it reaches. The same two brokers on memory stores admit
//! three each and make a client each, so the shared state is what makes the
//! difference.

use std::net::TcpListener;
use std::time::Duration;

use serde_json::{Value, json};
use token_broker::clock::Clock;

use crate::redis_outage::start_broker as start_replica;
use crate::replicas::{Redis, replica_config};
use crate::support::{TestDevIdp, http};

/// Three a minute, bursts of three: one more registration every 20 s.
const LIMIT: &str = "\n[registration]\nrate_limit_per_minute = 3\nrate_limit_burst = 3\n";
const BURST: usize = 3;
const INTERVAL: Duration = Duration::from_secs(20);

/// A confidential client, named `n`: never answered from the de-duplication memory.
async fn register(broker: &str, n: usize) -> reqwest::Response {
    http()
        .post(format!("{broker}/oauth/register"))
        .json(&json!({
            "client_name": format!("limited client {n}"),
            "redirect_uris": ["https://app.example.com/cb"],
            "token_endpoint_auth_method": "client_secret_basic"
        }))
        .send()
        .await
        .unwrap()
}

/// Retry-After of a refusal, after checking it is one (429, RFC 6749 JSON).
async fn refused(response: reqwest::Response) -> u64 {
    assert_eq!(response.status(), 429);
    let retry_after = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable", "{body}");
    retry_after
}

/// `text` with each broker on a memory store of its own instead of the shared Redis.
fn on_memory(text: &str, redis: &Redis) -> String {
    let alone = text.replace(
        &format!(
            "backend = \"redis\"\nurl = \"{}\"\nkey_prefix = \"replicas:\"",
            redis.url()
        ),
        "backend = \"memory\"",
    );
    assert_ne!(alone, text);
    alone
}

/// Two brokers with the same configuration and clock, each on its own listener.
fn two_brokers(text: &str, clock: &Clock) -> (String, String) {
    let a = start_replica(text, TcpListener::bind("127.0.0.1:0").unwrap(), clock);
    let b = start_replica(text, TcpListener::bind("127.0.0.1:0").unwrap(), clock);
    (a, b)
}

#[actix_web::test]
async fn replicas_on_one_redis_share_the_registration_rate_limit() {
    let redis = Redis::start();
    let clock = Clock::system();
    let idp = TestDevIdp::start_with_clock(Default::default(), clock.clone()).await;
    let shared = format!(
        "{}{LIMIT}",
        replica_config("http://127.0.0.1:8080", &idp.url, &redis.url())
    );

    // Each broker on its own memory store: each admits the whole burst.
    let (a, b) = two_brokers(&on_memory(&shared, &redis), &clock);
    for broker in [&a, &b] {
        for n in 0..BURST {
            assert_eq!(register(broker, n).await.status(), 201);
        }
        refused(register(broker, BURST).await).await;
    }

    // On one Redis: the burst is spread over both and spent for both.
    let (a, b) = two_brokers(&shared, &clock);
    for n in 0..BURST {
        let broker = [&a, &b][n % 2];
        assert_eq!(register(broker, n).await.status(), 201, "registration {n}");
    }
    for broker in [&a, &b] {
        let retry_after = refused(register(broker, BURST).await).await;
        assert!(
            (1..=INTERVAL.as_secs()).contains(&retry_after),
            "{retry_after}"
        );
    }

    // One interval later: one more registration, wherever it lands, and only one.
    clock.advance(INTERVAL);
    assert_eq!(register(&b, BURST + 1).await.status(), 201);
    refused(register(&a, BURST + 2).await).await;
    refused(register(&b, BURST + 2).await).await;
}

#[actix_web::test]
async fn replicas_on_one_redis_answer_a_repeated_public_registration_with_one_client() {
    let redis = Redis::start();
    let clock = Clock::system();
    let idp = TestDevIdp::start_with_clock(Default::default(), clock.clone()).await;
    let shared = replica_config("http://127.0.0.1:8080", &idp.url, &redis.url());
    let public = json!({
        "client_name": "registers on every start",
        "redirect_uris": ["http://127.0.0.1/callback"],
        "token_endpoint_auth_method": "none"
    });
    let register = |broker: String| {
        let public = public.clone();
        async move {
            let response = http()
                .post(format!("{broker}/oauth/register"))
                .json(&public)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 201);
            let body: Value = response.json().await.unwrap();
            body["client_id"].as_str().unwrap().to_owned()
        }
    };

    // Alone, each broker remembers only what it made itself.
    let (a, b) = two_brokers(&on_memory(&shared, &redis), &clock);
    assert_ne!(register(a.clone()).await, register(b.clone()).await);

    // On one Redis: made on A, the same client on B, and on A again.
    let (a, b) = two_brokers(&shared, &clock);
    let first = register(a.clone()).await;
    assert_eq!(register(b).await, first);
    assert_eq!(register(a).await, first);
}
