//! Replays at the token endpoint that must end a grant — and those that must not:
//! a refresh token superseded by a retry within the grace, presented later, revokes
//! the grant (the retry may have been a thief); a spent authorization code revokes
//! its grant only when the client it was minted for presents it with the right
//! redirect URI and verifier.

use serde_json::Value;

use crate::login_consent::{REDIRECT, live_broker, register};
use crate::login_flow::{VERIFIER, login, redeem, refresh, token, verify};
use crate::support::BaseUrl;

fn field(body: &Value, name: &str) -> String {
    body[name]
        .as_str()
        .unwrap_or_else(|| panic!("no {name} in {body}"))
        .to_owned()
}

fn assert_invalid_grant(response: (u16, Value)) {
    assert_eq!(
        (response.0, response.1["error"].as_str()),
        (400, Some("invalid_grant")),
        "{}",
        response.1
    );
}

#[actix_web::test]
async fn a_refresh_token_superseded_by_a_retry_revokes_the_grant_when_it_comes_back() {
    let broker = live_broker().await;
    let client = register(&broker, "Victim").await;
    let code = login(&broker, &client, &[]).await;
    let (status, body) = redeem(&broker, &client, &code).await;
    assert_eq!(status, 200, "{body}");
    let first = field(&body, "refresh_token");

    // The legitimate client rotates and keeps the successor; a copy of the first
    // token has leaked.
    let (status, body) = refresh(&broker, &client, &first).await;
    assert_eq!(status, 200, "{body}");
    let (victim_refresh, victim_access) =
        (field(&body, "refresh_token"), field(&body, "access_token"));
    // The thief replays it within the grace: it looks like a lost response.
    let (status, body) = refresh(&broker, &client, &first).await;
    assert_eq!(status, 200, "{body}");
    let (thief_refresh, thief_access) =
        (field(&body, "refresh_token"), field(&body, "access_token"));
    assert_eq!(verify(&broker, &thief_access).await.0, 200);

    // The victim's next refresh exposes the theft: the whole grant ends.
    assert_invalid_grant(refresh(&broker, &client, &victim_refresh).await);
    assert_invalid_grant(refresh(&broker, &client, &thief_refresh).await);
    assert_eq!(verify(&broker, &thief_access).await.0, 401);
    assert_eq!(verify(&broker, &victim_access).await.0, 401);
}

#[actix_web::test]
async fn a_retry_within_the_grace_keeps_working_when_the_lost_token_never_returns() {
    let broker = live_broker().await;
    let client = register(&broker, "Retrier").await;
    let code = login(&broker, &client, &[]).await;
    let (_, body) = redeem(&broker, &client, &code).await;
    let first = field(&body, "refresh_token");
    // The answer is lost on the way back; the client retries with the same token.
    assert_eq!(refresh(&broker, &client, &first).await.0, 200);
    let (status, body) = refresh(&broker, &client, &first).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = refresh(&broker, &client, &field(&body, "refresh_token")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(verify(&broker, &field(&body, "access_token")).await.0, 200);
}

/// Presents `code` as `client_id` with the given redirect URI and verifier.
async fn present(
    broker: &(impl BaseUrl + ?Sized),
    client_id: &str,
    code: &str,
    redirect_uri: &str,
    verifier: &str,
) -> (u16, Value) {
    token(
        broker,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", client_id),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier),
        ],
    )
    .await
}

#[actix_web::test]
async fn a_spent_code_presented_without_its_binding_revokes_nothing() {
    let broker = live_broker().await;
    let victim = register(&broker, "Victim").await;
    let other = register(&broker, "Other").await;
    let code = login(&broker, &victim, &[]).await;
    let (status, body) = redeem(&broker, &victim, &code).await;
    assert_eq!(status, 200, "{body}");
    let (access, refresh_token) = (field(&body, "access_token"), field(&body, "refresh_token"));

    let wrong_verifier = "wrong-verifier-wrong-verifier-wrong-verifier-x";
    let strangers = [
        (other.as_str(), REDIRECT, VERIFIER),
        (victim.as_str(), REDIRECT, wrong_verifier),
        (victim.as_str(), "http://127.0.0.1:4711/other", VERIFIER),
    ];
    for (client_id, redirect_uri, verifier) in strangers {
        let answer = present(&broker, client_id, &code, redirect_uri, verifier).await;
        assert_invalid_grant(answer);
    }

    // The victim's session survived every one of them.
    assert_eq!(verify(&broker, &access).await, (200, Some("alice".into())));
    let (status, body) = refresh(&broker, &victim, &refresh_token).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(verify(&broker, &field(&body, "access_token")).await.0, 200);
}

#[actix_web::test]
async fn a_spent_code_replayed_by_its_own_client_revokes_the_grant() {
    let broker = live_broker().await;
    let client = register(&broker, "Replayer").await;
    let code = login(&broker, &client, &[]).await;
    let (_, body) = redeem(&broker, &client, &code).await;
    let (access, refresh_token) = (field(&body, "access_token"), field(&body, "refresh_token"));
    assert_invalid_grant(redeem(&broker, &client, &code).await);
    assert_eq!(verify(&broker, &access).await.0, 401);
    assert_invalid_grant(refresh(&broker, &client, &refresh_token).await);
}
