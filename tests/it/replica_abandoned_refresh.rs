//! A refresh at the provider outlives the request that started it. The dev IdP
//! rotates refresh tokens and ends the whole session when a spent one comes back
//! (Keycloak's "revoke refresh token"). A client's request needs the grant's expired
//! provider token refreshed on broker A while the IdP is slow, and the client goes
//! away while A's refresh is at the IdP — its connection reset, so actix drops the
//! request's handler (a closed connection alone does not). The IdP still rotates its
//! refresh token; A must store the new one, or the grant keeps the spent token and the
//! next refresh (here on broker B, sharing A's Redis) ends the user's session. The
//! next request succeeds, and the IdP counts one refresh for the abandoned attempt.
//! Once through the refresh-token grant, once through a token exchange.

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::login_flow::refresh;
use crate::replica_upstream_refresh::{Expired, PROVIDER_TTL, REFRESHES, expired};
use crate::replicas::{CALLER, NOTES};
use crate::replicas_exchange::exchange_burst;
use crate::support::TestDevIdp;

/// Its counter of calls to the token endpoint (counted on arrival, before the
/// latency).
const TOKEN_CALLS: &str = "token";

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

/// Posts `form` to `broker`'s token endpoint (with `basic` credentials) on a
/// connection of its own; once A's refresh has reached the IdP, resets the
/// connection without reading the answer, then waits until the IdP has handled that
/// refresh (and rotated its refresh token).
async fn abandoned_at_idp(
    setup: &Expired,
    form: &[(&str, &str)],
    basic: Option<(&str, &str)>,
) -> u64 {
    let refreshes = setup.idp.calls(REFRESHES).await;
    let token_calls = setup.idp.calls(TOKEN_CALLS).await;
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let authorization = basic.map_or_else(String::new, |(id, secret)| {
        format!(
            "authorization: Basic {}\r\n",
            STANDARD.encode(format!("{id}:{secret}"))
        )
    });
    let host = setup.a.trim_start_matches("http://");
    let mut stream = TcpStream::connect(host).await.unwrap();
    let request = format!(
        "POST /oauth/token HTTP/1.1\r\nhost: {host}\r\n{authorization}\
         content-type: application/x-www-form-urlencoded\r\n\
         content-length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    counted(&setup.idp, TOKEN_CALLS, token_calls + 1).await;
    stream.set_zero_linger().unwrap();
    drop(stream);
    counted(&setup.idp, REFRESHES, refreshes + 1).await;
    refreshes
}

#[actix_web::test]
async fn a_refresh_whose_client_goes_away_mid_call_still_stores_the_rotated_provider_token() {
    let setup = expired("client that goes away", 1000).await;
    let refresh_token = setup.tokens["refresh_token"].as_str().unwrap();
    let refreshes = abandoned_at_idp(
        &setup,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", &setup.client),
            ("refresh_token", refresh_token),
        ],
        None,
    )
    .await;

    // The client retries on B with the refresh token it presented (its answer was
    // lost): B refreshes nothing at the IdP — A stored the rotated provider tokens.
    let (status, body) = refresh(setup.b.as_str(), &setup.client, refresh_token).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        setup.idp.calls(REFRESHES).await,
        refreshes + 1,
        "one refresh at the IdP for the abandoned attempt"
    );

    // The grant keeps working: at the next expiry the IdP accepts the rotated token.
    setup.clock.advance(PROVIDER_TTL + Duration::from_secs(1));
    let (status, body) = refresh(
        setup.a.as_str(),
        &setup.client,
        body["refresh_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(setup.idp.calls(REFRESHES).await, refreshes + 2);
}

#[actix_web::test]
async fn an_exchange_whose_caller_goes_away_mid_refresh_still_stores_the_rotated_provider_token() {
    let setup = expired("client that goes away", 1000).await;
    let access = setup.tokens["access_token"].as_str().unwrap();
    let refreshes = abandoned_at_idp(
        &setup,
        &[
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:token-exchange",
            ),
            ("subject_token", access),
            (
                "subject_token_type",
                "urn:ietf:params:oauth:token-type:access_token",
            ),
            ("audience", NOTES),
        ],
        Some(CALLER),
    )
    .await;

    // The caller asks again, on B: the grant's provider token is fresh, no refresh.
    let answers = exchange_burst(&[setup.b.as_str()], access, 1).await;
    assert_eq!(answers[0].0, 200, "{}", answers[0].1);
    assert_eq!(
        setup.idp.calls(REFRESHES).await,
        refreshes + 1,
        "one refresh at the IdP for the abandoned attempt"
    );
    // And the client's own refresh token still works.
    let (status, body) = refresh(
        setup.b.as_str(),
        &setup.client,
        setup.tokens["refresh_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}
