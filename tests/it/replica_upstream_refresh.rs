//! One refresh at the provider per grant across replicas. The dev IdP rotates
//! refresh tokens and refuses a spent one by ending the whole session (Keycloak's
//! "revoke refresh token"), so a second refresh of one grant would log the user out.
//! Two brokers on one Redis share a clock with the IdP; the IdP's access tokens live
//! a minute, and the clock is moved past that. Then 50 exchanges of one broker token
//! at once, spread over both brokers, need the grant's provider token refreshed:
//! exactly one `refresh_token` call reaches the IdP, every exchange succeeds, and the
//! grant keeps working — the client refreshes on the other broker, and at the next
//! expiry the provider is asked once more.

use std::net::TcpListener;
use std::time::Duration;

use serde_json::Value;
use token_broker::clock::Clock;
use token_broker::dev_idp::DevIdpConfig;

use crate::login_consent::register;
use crate::login_flow::{login, redeem, refresh};
use crate::redis_outage::start_broker;
use crate::replicas::{Redis, replica_config};
use crate::replicas_exchange::{exchange_burst, slow_token_endpoint};
use crate::support::TestDevIdp;

/// The dev IdP's counter of refresh-token grants.
pub(crate) const REFRESHES: &str = "token:refresh_token";
/// How long the IdP's access tokens live.
pub(crate) const PROVIDER_TTL: Duration = Duration::from_secs(60);

#[actix_web::test]
async fn concurrent_exchanges_on_two_replicas_refresh_an_expired_provider_token_once() {
    // Slow, so the refreshes on both brokers overlap.
    let Expired {
        _redis,
        idp,
        clock,
        a,
        b,
        client,
        tokens,
    } = expired("refreshing client", 100).await;
    let access = tokens["access_token"].as_str().unwrap();
    let before = idp.calls(REFRESHES).await;
    let answers = exchange_burst(&[a.as_str(), b.as_str()], access, 25).await;
    assert_eq!(answers.len(), 50);
    for (status, body) in &answers {
        assert_eq!(*status, 200, "{body}");
    }
    assert_eq!(
        idp.calls(REFRESHES).await,
        before + 1,
        "one refresh upstream"
    );

    // The grant still works: its refresh token on the other broker, then, after the
    // next expiry, one more refresh upstream.
    let (status, body) = refresh(
        b.as_str(),
        &client,
        tokens["refresh_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    clock.advance(PROVIDER_TTL + Duration::from_secs(1));
    let (status, body) =
        refresh(a.as_str(), &client, body["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(idp.calls(REFRESHES).await, before + 2);
    let answers = exchange_burst(&[b.as_str()], body["access_token"].as_str().unwrap(), 1).await;
    assert_eq!(answers[0].0, 200, "{}", answers[0].1);
}

/// Two brokers on one Redis sharing a clock with the IdP, and a client logged in on A
/// whose provider token has just expired by that clock.
pub(crate) struct Expired {
    _redis: Redis,
    pub(crate) idp: TestDevIdp,
    pub(crate) clock: Clock,
    pub(crate) a: String,
    pub(crate) b: String,
    pub(crate) client: String,
    pub(crate) tokens: Value,
}

/// [`Expired`], for a client named `client_name`, with the IdP's token endpoint slowed
/// by `slow_ms` (so concurrent refreshes overlap, or a client can leave mid-call).
pub(crate) async fn expired(client_name: &str, slow_ms: u64) -> Expired {
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
    let client = register(a.as_str(), client_name).await;
    let code = login(a.as_str(), &client, &[]).await;
    let (status, tokens) = redeem(a.as_str(), &client, &code).await;
    assert_eq!(status, 200, "{tokens}");
    slow_token_endpoint(&idp, slow_ms).await;
    clock.advance(PROVIDER_TTL + Duration::from_secs(1));
    Expired {
        _redis: redis,
        idp,
        clock,
        a,
        b,
        client,
        tokens,
    }
}
