//! `token_broker_cache_requests_total{cache,outcome}`: a repeated token is a hit in
//! the verified-token and grant-standing caches, a repeated exchange in the exchange
//! cache, a repeated opaque token in the introspection cache; every cache's series
//! exists before its first lookup.

use crate::exchange::{CALLER, alice, exchange, text};
use crate::login_flow::verify;
use crate::support::{TestBroker, metrics};

/// The counter for `cache` and `outcome` as `/metrics` shows it.
async fn count(broker: &TestBroker, cache: &str, outcome: &str) -> u64 {
    let metrics = metrics(&broker.url).await;
    let series =
        format!(r#"token_broker_cache_requests_total{{cache="{cache}",outcome="{outcome}"}} "#);
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(&series))
        .unwrap_or_else(|| panic!("no {series} in\n{metrics}"))
        .trim()
        .parse()
        .unwrap()
}

/// (hits, misses) of `cache`.
async fn counts(broker: &TestBroker, cache: &str) -> (u64, u64) {
    (
        count(broker, cache, "hit").await,
        count(broker, cache, "miss").await,
    )
}

#[actix_web::test]
async fn repeated_tokens_and_exchanges_are_counted_as_hits() {
    let broker = TestBroker::start_live(&text(), Default::default(), |_| {}).await;
    for cache in [
        "verified_token",
        "exchange",
        "grant_standing",
        "introspection",
    ] {
        assert_eq!(counts(&broker, cache).await, (0, 0), "{cache}");
    }
    let token = alice(&broker).await;

    let (hits, misses) = counts(&broker, "verified_token").await;
    let (grant_hits, grant_misses) = counts(&broker, "grant_standing").await;
    assert_eq!(verify(&broker, &token).await.0, 200);
    assert_eq!(counts(&broker, "verified_token").await, (hits, misses + 1));
    assert_eq!(
        counts(&broker, "grant_standing").await,
        (grant_hits, grant_misses + 1)
    );
    assert_eq!(verify(&broker, &token).await.0, 200);
    assert_eq!(
        counts(&broker, "verified_token").await,
        (hits + 1, misses + 1)
    );
    // A broker token's grant is consulted on every use: read once, then cached.
    assert_eq!(
        counts(&broker, "grant_standing").await,
        (grant_hits + 1, grant_misses + 1)
    );

    let (hits, misses) = counts(&broker, "exchange").await;
    let (status, body) = exchange(&broker, CALLER, &token, &[]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(counts(&broker, "exchange").await, (hits, misses + 1));
    let (status, body) = exchange(&broker, CALLER, &token, &[]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(counts(&broker, "exchange").await, (hits + 1, misses + 1));
    broker.stop().await;
}

#[actix_web::test]
async fn a_repeated_opaque_token_is_an_introspection_hit_until_the_ttl() {
    let idp = token_broker::dev_idp::DevIdpConfig {
        opaque_access_tokens: true,
        ..Default::default()
    };
    let broker = TestBroker::start_with_idp(&crate::support::config_text(), idp, |_| {}).await;
    let token = crate::verify_opaque::opaque_token(&broker, "notes:read").await;
    for _ in 0..3 {
        assert_eq!(verify(&broker, &token).await.0, 200);
    }
    assert_eq!(counts(&broker, "introspection").await, (2, 1));
    // Past the answer's TTL (60 s) the lookup misses and the provider is asked again.
    broker.clock.advance(std::time::Duration::from_secs(61));
    assert_eq!(verify(&broker, &token).await.0, 200);
    assert_eq!(counts(&broker, "introspection").await, (2, 2));
    broker.stop().await;
}
