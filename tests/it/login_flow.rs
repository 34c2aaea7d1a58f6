//! The whole login against the dev IdP: register → authorize → consent → provider →
//! callback → token → refresh → revoke, every redirect and field checked, and the
//! negative paths of the token endpoint.

use std::time::Duration;

use serde_json::Value;
use url::Url;

use crate::login_consent::{
    REDIRECT, answer, authorize_url, live_broker, location, open_consent, query, register,
};
use crate::support::{BaseUrl, http};

/// RFC 7636 appendix B: the verifier of `login_consent::CHALLENGE`.
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

/// Drives the browser's part: consent approved, the provider's redirect followed to
/// the broker's callback with the binding cookie, and the client's code returned.
pub async fn login(
    broker: &(impl BaseUrl + ?Sized),
    client_id: &str,
    extra: &[(&str, &str)],
) -> String {
    let to = login_redirect(broker, client_id, extra).await;
    assert_eq!(query(&to, "state").as_deref(), Some("client-state"));
    assert_eq!(query(&to, "iss").as_deref(), Some(broker.base_url()));
    assert!(query(&to, "error").is_none(), "{to}");
    query(&to, "code").expect("a code for the client")
}

/// Like [`login`], returning where the broker finally sent the browser.
pub async fn login_redirect(
    broker: &(impl BaseUrl + ?Sized),
    client_id: &str,
    extra: &[(&str, &str)],
) -> Url {
    login_redirect_with(broker, client_id, extra, &[]).await
}

/// Like [`login_redirect`], the provider's redirect back to the broker sent with
/// `callback_headers` too.
pub async fn login_redirect_with(
    broker: &(impl BaseUrl + ?Sized),
    client_id: &str,
    extra: &[(&str, &str)],
    callback_headers: &[(&str, &str)],
) -> Url {
    let consent = open_consent(&authorize_url(broker, client_id, extra)).await;
    let approved = answer(broker, &consent, "approve").await;
    assert_eq!(approved.status(), 303);
    let upstream = location(&approved);
    let at_idp = http().get(upstream.as_str()).send().await.unwrap();
    assert!(at_idp.status().is_redirection(), "{}", at_idp.status());
    let callback = location(&at_idp);
    assert!(
        callback.as_str().starts_with(&broker.at("/oauth/callback")),
        "{callback}"
    );
    let mut back = http()
        .get(callback.as_str())
        .header("cookie", &consent.cookie);
    for (name, value) in callback_headers {
        back = back.header(*name, *value);
    }
    let back = back.send().await.unwrap();
    assert_eq!(
        back.status(),
        303,
        "{}",
        back.text().await.unwrap_or_default()
    );
    let to = location(&back);
    assert!(to.as_str().starts_with(REDIRECT), "{to}");
    to
}

pub async fn token(broker: &(impl BaseUrl + ?Sized), form: &[(&str, &str)]) -> (u16, Value) {
    let response = http()
        .post(broker.at("/oauth/token"))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    if status == 200 {
        assert_eq!(response.headers()["cache-control"], "no-store");
    }
    (status, response.json().await.unwrap_or(Value::Null))
}

pub async fn redeem(broker: &(impl BaseUrl + ?Sized), client_id: &str, code: &str) -> (u16, Value) {
    token(
        broker,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", client_id),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
    )
    .await
}

pub async fn refresh(
    broker: &(impl BaseUrl + ?Sized),
    client_id: &str,
    refresh_token: &str,
) -> (u16, Value) {
    token(
        broker,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", client_id),
            ("refresh_token", refresh_token),
        ],
    )
    .await
}

/// `/auth/verify` for the broker's resource: the status and the subject header.
pub async fn verify(broker: &(impl BaseUrl + ?Sized), access_token: &str) -> (u16, Option<String>) {
    let response = http()
        .get(broker.at("/auth/verify"))
        .header("x-original-uri", "/mcp")
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap();
    let subject = response
        .headers()
        .get("x-auth-subject")
        .map(|v| v.to_str().unwrap().to_owned());
    (response.status().as_u16(), subject)
}

#[actix_web::test]
async fn a_client_logs_in_refreshes_and_revokes() {
    let broker = live_broker().await;
    let client = register(&broker, "Flow").await;
    let code = login(&broker, &client, &[]).await;
    let (status, body) = redeem(&broker, &client, &code).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "notes:read");
    assert!(body["expires_in"].as_u64().unwrap() > 0);
    let access = body["access_token"].as_str().unwrap().to_owned();
    let first_refresh = body["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(verify(&broker, &access).await, (200, Some("alice".into())));

    // Rotation: a new pair; the old refresh token is spent.
    let (status, body) = refresh(&broker, &client, &first_refresh).await;
    assert_eq!(status, 200, "{body}");
    let second_refresh = body["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(second_refresh, first_refresh);
    let second_access = body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(verify(&broker, &second_access).await.0, 200);

    // Revoking the refresh token ends the grant: both tokens stop working.
    let revoked = http()
        .post(broker.at("/oauth/revoke"))
        .form(&[("client_id", client.as_str()), ("token", &second_refresh)])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    assert_eq!(verify(&broker, &second_access).await.0, 401);
    assert_eq!(verify(&broker, &access).await.0, 401);
    let (status, body) = refresh(&broker, &client, &second_refresh).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
}

#[actix_web::test]
async fn a_replayed_code_fails_and_revokes_what_it_issued() {
    let broker = live_broker().await;
    let client = register(&broker, "Replay").await;
    let code = login(&broker, &client, &[]).await;
    let (status, body) = redeem(&broker, &client, &code).await;
    assert_eq!(status, 200);
    let access = body["access_token"].as_str().unwrap().to_owned();
    let refresh_token = body["refresh_token"].as_str().unwrap().to_owned();
    let (status, body) = redeem(&broker, &client, &code).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert_eq!(verify(&broker, &access).await.0, 401);
    assert_eq!(refresh(&broker, &client, &refresh_token).await.0, 400);
}

#[actix_web::test]
async fn the_code_is_bound_to_verifier_redirect_uri_and_client() {
    let broker = live_broker().await;
    let client = register(&broker, "Bound").await;
    let other = register(&broker, "Other").await;
    let code = login(&broker, &client, &[]).await;
    let wrong: [(&str, &str, &str, &str); 4] = [
        (
            client.as_str(),
            REDIRECT,
            "wrong-verifier-wrong-verifier-wrong-verifier-x",
            "verifier",
        ),
        (
            client.as_str(),
            "http://127.0.0.1:4711/other",
            VERIFIER,
            "redirect",
        ),
        (other.as_str(), REDIRECT, VERIFIER, "client"),
        (client.as_str(), REDIRECT, "", "missing verifier"),
    ];
    for (client_id, redirect, verifier, what) in wrong {
        let (status, body) = token(
            &broker,
            &[
                ("grant_type", "authorization_code"),
                ("client_id", client_id),
                ("code", &code),
                ("redirect_uri", redirect),
                ("code_verifier", verifier),
            ],
        )
        .await;
        assert_eq!(status, 400, "{what}: {body}");
        assert!(
            matches!(
                body["error"].as_str(),
                Some("invalid_grant" | "invalid_request")
            ),
            "{what}: {body}"
        );
    }
    // None of those attempts burnt the code.
    assert_eq!(redeem(&broker, &client, &code).await.0, 200);
}

#[actix_web::test]
async fn expired_codes_and_sessions_are_refused() {
    let broker = live_broker().await;
    let client = register(&broker, "Slow").await;
    let code = login(&broker, &client, &[]).await;
    broker.clock.advance(Duration::from_secs(61));
    let (status, body) = redeem(&broker, &client, &code).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );

    // A consent page left open past the session's life.
    let consent = open_consent(&authorize_url(&broker, &client, &[])).await;
    broker.clock.advance(Duration::from_secs(601));
    let late = answer(&broker, &consent, "approve").await;
    assert_eq!(late.status(), 400);
    assert!(late.headers().get("location").is_none());
}

#[actix_web::test]
async fn a_reused_state_or_a_callback_in_another_browser_is_an_error_page() {
    let broker = live_broker().await;
    let client = register(&broker, "State").await;
    let consent = open_consent(&authorize_url(&broker, &client, &[])).await;
    let approved = answer(&broker, &consent, "approve").await;
    let at_idp = http()
        .get(location(&approved).as_str())
        .send()
        .await
        .unwrap();
    let callback = location(&at_idp);
    // Another browser (no binding cookie) cannot complete it.
    let stranger = http().get(callback.as_str()).send().await.unwrap();
    assert_eq!(stranger.status(), 403);
    let first = http()
        .get(callback.as_str())
        .header("cookie", &consent.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 303);
    let again = http()
        .get(callback.as_str())
        .header("cookie", &consent.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 400);
    assert!(again.headers().get("location").is_none());
}

#[actix_web::test]
async fn refresh_reuse_within_the_grace_is_a_retry_and_outside_it_revokes() {
    let broker = live_broker().await;
    let client = register(&broker, "Retry").await;
    let code = login(&broker, &client, &[]).await;
    let (_, body) = redeem(&broker, &client, &code).await;
    let original = body["refresh_token"].as_str().unwrap().to_owned();
    let (status, _lost) = refresh(&broker, &client, &original).await;
    assert_eq!(status, 200);
    // The client never saw the answer and retries with the original within the
    // grace. (The lost token coming back would end the grant: token_replay.rs.)
    let (status, retried) = refresh(&broker, &client, &original).await;
    assert_eq!(status, 200, "{retried}");
    let current = retried["refresh_token"].as_str().unwrap().to_owned();
    // Outside the grace, the rotated token is a theft signal: the grant ends.
    broker.clock.advance(Duration::from_secs(11));
    let (status, body) = refresh(&broker, &client, &original).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert_eq!(refresh(&broker, &client, &current).await.0, 400);
}

#[actix_web::test]
async fn refresh_may_narrow_scope_but_never_widen_it_and_only_for_its_client() {
    let broker = live_broker().await;
    let client = register(&broker, "Scopes").await;
    let other = register(&broker, "Thief").await;
    let code = login(&broker, &client, &[("scope", "notes:read offline_access")]).await;
    let (_, body) = redeem(&broker, &client, &code).await;
    let refresh_token = body["refresh_token"].as_str().unwrap().to_owned();
    let (status, body) = token(
        &broker,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", &client),
            ("refresh_token", &refresh_token),
            ("scope", "notes:read notes:write"),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_scope"))
    );
    let (status, body) = refresh(&broker, &other, &refresh_token).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let (status, body) = token(
        &broker,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", &client),
            ("refresh_token", &refresh_token),
            ("scope", "notes:read"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "notes:read");
}

#[actix_web::test]
async fn unsupported_grants_unknown_clients_and_unknown_codes_are_refused() {
    let broker = live_broker().await;
    let client = register(&broker, "Deny").await;
    let (status, body) = token(
        &broker,
        &[("grant_type", "password"), ("client_id", &client)],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );
    let (status, body) = redeem(&broker, "nobody", "x").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    let (status, _) = redeem(&broker, &client, "never-issued").await;
    assert_eq!(status, 400);
}

#[actix_web::test]
async fn a_provider_refusal_reaches_the_client_as_access_denied() {
    let broker = live_broker().await;
    let client = register(&broker, "Refused").await;
    let consent = open_consent(&authorize_url(&broker, &client, &[])).await;
    let approved = answer(&broker, &consent, "approve").await;
    let upstream = location(&approved);
    let state = query(&upstream, "state").unwrap();
    // The provider answers as it does when the user cancels its login.
    let mut callback = Url::parse(&broker.at("/oauth/callback")).unwrap();
    callback
        .query_pairs_mut()
        .append_pair("state", &state)
        .append_pair("error", "login_required")
        .append_pair("iss", &broker.idp.url);
    let back = http()
        .get(callback.as_str())
        .header("cookie", &consent.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(back.status(), 303);
    let to = location(&back);
    assert!(to.as_str().starts_with(REDIRECT));
    assert_eq!(query(&to, "error").as_deref(), Some("access_denied"));
    assert_eq!(query(&to, "state").as_deref(), Some("client-state"));
    assert_eq!(query(&to, "iss").as_deref(), Some(broker.url.as_str()));
    // A callback naming another issuer (RFC 9207 mix-up) is refused too.
    let consent = open_consent(&authorize_url(&broker, &client, &[])).await;
    let approved = answer(&broker, &consent, "approve").await;
    let mut at_idp = location(&approved);
    let at_idp_response = http().get(at_idp.as_str()).send().await.unwrap();
    at_idp = location(&at_idp_response);
    let mixed: String = at_idp.as_str().replace(
        &format!("iss={}", urlencode(&broker.idp.url)),
        "iss=https%3A%2F%2Fevil.example",
    );
    let back = http()
        .get(mixed)
        .header("cookie", &consent.cookie)
        .send()
        .await
        .unwrap();
    let to = location(&back);
    assert_eq!(query(&to, "error").as_deref(), Some("server_error"));
    assert_eq!(query(&to, "state").as_deref(), Some("client-state"));
    assert_eq!(query(&to, "iss").as_deref(), Some(broker.url.as_str()));
}

fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[actix_web::test]
async fn an_expired_upstream_token_is_refreshed_at_the_provider_on_refresh() {
    let broker = live_broker().await;
    let client = register(&broker, "Upstream refresh").await;
    let code = login(&broker, &client, &[]).await;
    let (_, body) = redeem(&broker, &client, &code).await;
    let access = body["access_token"].as_str().unwrap().to_owned();
    let before = broker.grant_behind(&access).await;
    let calls = broker.idp.calls("token").await;
    // Within the provider token's life nothing goes upstream.
    let (status, body) = refresh(&broker, &client, body["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(broker.idp.calls("token").await, calls);
    // Past it (the dev IdP's tokens live 5 min), the provider is asked.
    broker.clock.advance(Duration::from_secs(301));
    let (status, _) = refresh(&broker, &client, body["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(broker.idp.calls("token").await, calls + 1);
    let after = broker
        .state
        .store
        .get_grant(&before.grant_id)
        .await
        .unwrap()
        .unwrap();
    assert_ne!(after.upstream.access_token, before.upstream.access_token);
    assert!(after.upstream.expires_at > before.upstream.expires_at);
}

#[actix_web::test]
async fn loopback_redirect_uris_match_on_any_port_for_localhost_too() {
    let broker = live_broker().await;
    let registered: Value = http()
        .post(broker.at("/oauth/register"))
        .json(&serde_json::json!({
            "client_name": "VS Code",
            "redirect_uris": ["http://127.0.0.1/", "http://localhost/callback"],
            "application_type": "native",
            "token_endpoint_auth_method": "none",
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let client = registered["client_id"].as_str().unwrap();
    for redirect in ["http://127.0.0.1:33418/", "http://localhost:5173/callback"] {
        let response = http()
            .get(authorize_url(
                &broker,
                client,
                &[("redirect_uri", redirect)],
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{redirect}");
    }
    for wrong in ["http://localhost:5173/other", "http://127.0.0.2:33418/"] {
        let response = http()
            .get(authorize_url(&broker, client, &[("redirect_uri", wrong)]))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{wrong}");
    }
}
