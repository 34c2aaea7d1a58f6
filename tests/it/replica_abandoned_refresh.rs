//! A refresh at the provider outlives the request that started it. The dev IdP
//! rotates refresh tokens and ends the whole session when a spent one comes back
//! (Keycloak's "revoke refresh token"). A client refreshes on broker A while the
//! grant's provider token is expired and the IdP is slow, and goes away while A's
//! refresh is at the IdP — its connection reset, so actix drops the request's
//! handler (a closed connection alone does not). The IdP still rotates its refresh token; A must store the
//! new one, or the grant keeps the spent token and the next refresh (here on broker
//! B, sharing A's Redis) ends the user's session. The client's retry — its rotated
//! refresh token presented again, within the reuse grace, as a client that lost an
//! answer does — succeeds, and the IdP counts one refresh in all.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use token_broker::clock::Clock;
use token_broker::dev_idp::DevIdpConfig;

use crate::login_consent::register;
use crate::login_flow::{login, redeem, refresh};
use crate::redis_outage::start_broker;
use crate::replicas::{Redis, replica_config};
use crate::replicas_exchange::slow_token_endpoint;
use crate::support::TestDevIdp;

/// The dev IdP's counter of refresh-token grants (counted when it handles one).
const REFRESHES: &str = "token:refresh_token";
/// Its counter of calls to the token endpoint (counted on arrival, before the
/// latency).
const TOKEN_CALLS: &str = "token";
/// How long the IdP's access tokens live.
const PROVIDER_TTL: Duration = Duration::from_secs(60);

/// Waits until the IdP has counted `n` calls under `name`.
async fn counted(idp: &TestDevIdp, name: &str, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while idp.calls(name).await < n {
        assert!(
            Instant::now() < deadline,
            "the IdP never counted {n} `{name}`"
        );
        actix_web::rt::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Sends a refresh-token request to `broker` on a connection of its own, then —
/// once `went_away` — resets the connection without reading the answer.
async fn refresh_then_reset(
    broker: &str,
    client_id: &str,
    refresh_token: &str,
    went_away: impl std::future::Future<Output = ()>,
) {
    let url = url::Url::parse(broker).unwrap();
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "refresh_token")
        .append_pair("client_id", client_id)
        .append_pair("refresh_token", refresh_token)
        .finish();
    let host = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap());
    let mut stream = TcpStream::connect(&host).await.unwrap();
    let request = format!(
        "POST /oauth/token HTTP/1.1\r\nhost: {host}\r\n\
         content-type: application/x-www-form-urlencoded\r\n\
         content-length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    went_away.await;
    stream.set_zero_linger().unwrap();
    drop(stream);
}

#[actix_web::test]
async fn a_refresh_whose_client_goes_away_mid_call_still_stores_the_rotated_provider_token() {
    let redis = Redis::start();
    let clock = Clock::system();
    let idp = TestDevIdp::start_with_clock(
        DevIdpConfig {
            access_token_ttl: PROVIDER_TTL,
            ..DevIdpConfig::default()
        },
        clock.clone(),
    )
    .await;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let public_url = format!("http://{}", listener.local_addr().unwrap());
    let text = replica_config(&public_url, &idp.url, &redis.url());
    let a = start_broker(&text, listener, &clock);
    let b = start_broker(&text, TcpListener::bind("127.0.0.1:0").unwrap(), &clock);
    let client = register(a.as_str(), "client that goes away").await;
    let code = login(a.as_str(), &client, &[]).await;
    let (status, tokens) = redeem(a.as_str(), &client, &code).await;
    assert_eq!(status, 200, "{tokens}");
    let refresh_token = tokens["refresh_token"].as_str().unwrap();
    // Slow enough that the client is gone well before the IdP answers A.
    slow_token_endpoint(&idp, 1000).await;
    clock.advance(PROVIDER_TTL + Duration::from_secs(1));
    let refreshes = idp.calls(REFRESHES).await;
    let token_calls = idp.calls(TOKEN_CALLS).await;

    // The client's refresh on A, abandoned as soon as A's refresh reached the IdP.
    refresh_then_reset(
        a.as_str(),
        &client,
        refresh_token,
        counted(&idp, TOKEN_CALLS, token_calls + 1),
    )
    .await;
    // The IdP handles the abandoned refresh (and rotates its refresh token).
    counted(&idp, REFRESHES, refreshes + 1).await;

    // The client retries on B with the refresh token it presented (its answer was
    // lost): B refreshes nothing at the IdP — A stored the rotated provider tokens.
    let (status, body) = refresh(b.as_str(), &client, refresh_token).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        idp.calls(REFRESHES).await,
        refreshes + 1,
        "one refresh at the IdP for the abandoned attempt"
    );

    // The grant keeps working: at the next expiry the IdP accepts the rotated token.
    clock.advance(PROVIDER_TTL + Duration::from_secs(1));
    let (status, body) =
        refresh(a.as_str(), &client, body["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(idp.calls(REFRESHES).await, refreshes + 2);
}
