//! A broker on Redis while Redis goes away and comes back: requests that need the
//! store get 503 (RFC 6749 JSON, `Retry-After`), nothing panics, requests that do not
//! need it still work, and the same broker serves again once Redis is back, without a
//! restart. A broker started while Redis is down starts anyway and gets its signing
//! key once Redis is there.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use token_broker::clock::Clock;
use token_broker::server;

use crate::replicas::{Redis, replica_config};
use crate::support::{TestDevIdp, http};

/// Starts a broker in this process on `listener`; answers its base URL.
pub(crate) fn start_broker(text: &str, listener: TcpListener, clock: &Clock) -> String {
    let config = token_broker::config::load_str(text, &Default::default()).unwrap();
    let running = server::start_with(Arc::new(config), listener, clock.clone(), |_| {}).unwrap();
    let url = format!("http://{}", running.addr);
    actix_web::rt::spawn(running.serve_until(std::future::pending::<()>()));
    url
}

/// A broker in this process on the Redis at `redis`, in front of its own dev IdP, its
/// configuration `replica_config` plus `extra`: its base URL and the IdP.
pub(crate) async fn broker_on(redis: &str, extra: &str) -> (String, TestDevIdp) {
    let clock = Clock::system();
    let idp = TestDevIdp::start_with_clock(Default::default(), clock.clone()).await;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let public_url = format!("http://{}", listener.local_addr().unwrap());
    let text = format!("{}\n{extra}", replica_config(&public_url, &idp.url, redis));
    (start_broker(&text, listener, &clock), idp)
}

async fn register(broker: &str) -> reqwest::Response {
    http()
        .post(format!("{broker}/oauth/register"))
        .json(&json!({
            "client_name": "outage", "redirect_uris": ["http://127.0.0.1:1/cb"],
            "token_endpoint_auth_method": "none"
        }))
        .send()
        .await
        .unwrap()
}

#[actix_web::test]
async fn redis_down_is_503_and_redis_back_is_service_again() {
    let redis = Redis::start();
    let port = redis.port;
    // Retries while Redis comes back must not run into the registration rate limit.
    let (broker, _idp) = broker_on(
        &redis.url(),
        "[registration]\nrate_limit_per_minute = 6000\nrate_limit_burst = 1000\n",
    )
    .await;
    assert_eq!(register(&broker).await.status(), 201);

    drop(redis);
    let down = register(&broker).await;
    assert_eq!(down.status(), 503);
    assert!(down.headers().contains_key("retry-after"));
    let body: Value = down.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable", "{body}");
    // What needs no store still answers.
    let health = http()
        .get(format!("{broker}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let metadata = http()
        .get(format!("{broker}/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap();
    assert_eq!(metadata.status(), 200);

    // Back on the same port (empty: nothing was persisted): the same broker registers
    // again once its connection is re-established — a new client for the same
    // metadata, since the one it remembered making is gone with Redis's data.
    let _redis = Redis::start_on(port);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = register(&broker).await.status();
        if status == 201 {
            break;
        }
        assert_eq!(status, 503, "only unavailable while reconnecting");
        assert!(Instant::now() < deadline, "the broker never reconnected");
        actix_web::rt::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A broker started while Redis is down still starts (and says why it has no signing
/// key yet); once Redis is there, its next key reload creates the key, which then
/// signs a login's token.
#[actix_web::test]
async fn a_broker_started_while_redis_is_down_gets_its_signing_key_once_redis_is_up() {
    use crate::login_consent::register as register_client;
    use crate::login_flow::{login, redeem, verify};

    let port = crate::support::free_port();
    let clock = Clock::system();
    let idp = TestDevIdp::start_with_clock(Default::default(), clock.clone()).await;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let public_url = format!("http://{}", listener.local_addr().unwrap());
    let text = replica_config(&public_url, &idp.url, &format!("redis://127.0.0.1:{port}/"));
    let config = token_broker::config::load_str(&text, &Default::default()).unwrap();
    let running = token_broker::server::start_with(
        std::sync::Arc::new(config),
        listener,
        clock.clone(),
        |_| {},
    )
    .unwrap();
    let state = running.state.clone();
    actix_web::rt::spawn(running.serve_until(std::future::pending::<()>()));
    let jwks = || async {
        http()
            .get(format!("{public_url}/jwks.json"))
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
    };
    assert_eq!(
        jwks().await["keys"],
        json!([]),
        "no key while Redis is down"
    );

    let _redis = Redis::start_on(port);
    // The reload the broker runs every second while it has no key, triggered here;
    // it fails only until the connection is re-established.
    let deadline = Instant::now() + Duration::from_secs(30);
    while let Err(error) = state.signing.reload(clock.unix()).await {
        assert!(Instant::now() < deadline, "never reconnected: {error}");
        actix_web::rt::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(jwks().await["keys"].as_array().unwrap().len(), 1);
    let client = register_client(public_url.as_str(), "late key").await;
    let code = login(public_url.as_str(), &client, &[]).await;
    let (status, body) = redeem(public_url.as_str(), &client, &code).await;
    assert_eq!(status, 200, "{body}");
    let access = body["access_token"].as_str().unwrap();
    assert_eq!(
        verify(public_url.as_str(), access).await,
        (200, Some("alice".into()))
    );
}
