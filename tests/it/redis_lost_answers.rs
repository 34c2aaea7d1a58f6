//! A token request whose code Redis redeemed but whose tokens could not be issued —
//! Redis stalled right after the redemption, so the next store call (the grant's read)
//! got no answer — is answered 503, and the code is put back: the client's next try
//! gets its tokens, where before it was taken for a replay that revoked its grant.
//! Likewise a token request that goes away (its connection reset) while its tokens
//! are being issued: actix drops its handler, and the code must not stay spent.

use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::login_consent::{REDIRECT, register};
use crate::login_flow::{VERIFIER, login, redeem, verify};
use crate::redis_outage::broker_on;
use crate::replicas::Redis;
use crate::support::{TestDevIdp, http, metrics};

#[path = "../../src/store/redis/tests/relay.rs"]
mod relay;

use self::relay::Relay;

/// A broker on Redis through a relay that can hold Redis's replies, and a client
/// holding a fresh code.
struct LoggedIn {
    _redis: Redis,
    relay: Relay,
    broker: String,
    _idp: TestDevIdp,
    client: String,
    code: String,
}

async fn logged_in(name: &str) -> LoggedIn {
    let redis = Redis::start();
    let relay = Relay::start(redis.port);
    let (broker, idp) = broker_on(&relay.url(), "").await;
    let client = register(broker.as_str(), name).await;
    let code = login(broker.as_str(), &client, &[]).await;
    LoggedIn {
        _redis: redis,
        relay,
        broker,
        _idp: idp,
        client,
        code,
    }
}

impl LoggedIn {
    /// The client tries again with its code: tokens, and they work. The code is spent
    /// then: a third presentation is the replay it always was, and revokes them.
    async fn retries_once(&self) {
        let broker = self.broker.as_str();
        let (status, tokens) = redeem(broker, &self.client, &self.code).await;
        assert_eq!(status, 200, "{tokens}");
        let access = tokens["access_token"].as_str().unwrap();
        assert_eq!(verify(broker, access).await.0, 200);
        let (status, body) = redeem(broker, &self.client, &self.code).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"], "invalid_grant");
        assert_eq!(verify(broker, access).await.0, 401);
    }

    /// `token_broker_code_put_backs_total{reason}` as the broker counts it now.
    async fn put_backs(&self, reason: &str) -> u64 {
        let series = format!("token_broker_code_put_backs_total{{reason=\"{reason}\"}} ");
        metrics(&self.broker)
            .await
            .lines()
            .find_map(|line| line.strip_prefix(series.as_str()))
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {series} in the broker's metrics"))
    }
}

#[actix_web::test]
async fn a_code_whose_tokens_could_not_be_issued_is_redeemed_on_the_next_try() {
    let setup = logged_in("lost answers").await;
    let LoggedIn { relay, broker, .. } = &setup;

    // Redis redeems the code and answers; from the grant's read on (`HGETALL` of its
    // key, the next call), Redis runs what it is sent and answers nothing.
    relay.hold_from(b"replicas:grant:");
    let (status, body) = redeem(broker.as_str(), &setup.client, &setup.code).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        relay.holding(),
        "the request never read the grant: the test would prove nothing"
    );
    relay.hold(false);
    assert_eq!(setup.put_backs("not_issued").await, 1);
    setup.retries_once().await;
}

#[actix_web::test]
async fn a_code_whose_request_went_away_is_redeemed_on_the_next_try() {
    let setup = logged_in("gone away").await;
    let LoggedIn { relay, broker, .. } = &setup;
    assert_eq!(setup.put_backs("not_delivered").await, 0);

    // The token request, on a connection of its own; Redis redeems the code and then
    // answers nothing from the grant's read on.
    relay.hold_from(b"replicas:grant:");
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("grant_type", "authorization_code"),
            ("client_id", setup.client.as_str()),
            ("code", setup.code.as_str()),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ])
        .finish();
    let host = broker.trim_start_matches("http://");
    let mut stream = TcpStream::connect(host).await.unwrap();
    let request = format!(
        "POST /oauth/token HTTP/1.1\r\nhost: {host}\r\n\
         content-type: application/x-www-form-urlencoded\r\n\
         content-length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !relay.holding() {
        assert!(
            Instant::now() < deadline,
            "the request never read the grant"
        );
        actix_web::rt::time::sleep(Duration::from_millis(5)).await;
    }
    // The client goes away: a reset connection, so actix drops the request's handler.
    stream.set_zero_linger().unwrap();
    drop(stream);
    // The broker's one worker answers a request on a new connection only after its
    // event loop has seen the reset; then Redis answers again, within the broker's
    // 2 s reply timeout, so the tokens are issued, for nobody.
    let healthz = http()
        .get(format!("{broker}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(healthz.status(), 200);
    relay.hold(false);
    while setup.put_backs("not_delivered").await == 0 {
        assert!(
            Instant::now() < deadline,
            "the code of the request that went away was never put back"
        );
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(setup.put_backs("not_issued").await, 0);
    setup.retries_once().await;
}
