//! `GET /authorize`: the code flow's front channel, PKCE S256 only, no login form.

use super::{Answer, BROKER, REDIRECT, TestIdp, redirect_query, verify};

#[actix_web::test]
async fn successful_authorization_redirects_with_code_state_and_iss() {
    let idp = TestIdp::start().await;
    let response = idp.authorize(&[]).await;
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(REDIRECT), "{location}");
    let query = redirect_query(&response);
    assert!(query["code"].len() >= 32, "{query:?}");
    assert_eq!(query["state"], "st-123");
    assert_eq!(query["iss"], idp.url);
    assert!(!query.contains_key("error"));
    idp.stop().await;
}

#[actix_web::test]
async fn unknown_client_or_unregistered_redirect_uri_is_shown_not_redirected() {
    let idp = TestIdp::start().await;
    for overrides in [
        [("client_id", "nobody"), ("redirect_uri", REDIRECT)],
        [
            ("client_id", BROKER.0),
            ("redirect_uri", "https://evil.example/cb"),
        ],
        [
            ("client_id", BROKER.0),
            ("redirect_uri", "http://127.0.0.1:8765/other"),
        ],
        // demo-service registered no redirect URI at all.
        [("client_id", "demo-service"), ("redirect_uri", REDIRECT)],
    ] {
        let response = idp.authorize(&overrides).await;
        assert!(
            response.headers().get("location").is_none(),
            "{overrides:?}"
        );
        Answer::of(response)
            .await
            .assert_error(400, "invalid_request");
    }
    idp.stop().await;
}

#[actix_web::test]
async fn loopback_redirect_uris_are_accepted_on_any_port() {
    let idp = TestIdp::start().await;
    for redirect in [
        "http://127.0.0.1:1234/oauth/callback",
        "http://127.0.0.1:59999/oauth/callback",
        "http://127.0.0.1/oauth/callback",
        "http://localhost:4000/oauth/callback",
    ] {
        let response = idp.authorize(&[("redirect_uri", redirect)]).await;
        let location = response.headers()["location"].to_str().unwrap().to_owned();
        assert!(location.starts_with(redirect), "{location}");
        assert!(redirect_query(&response).contains_key("code"), "{redirect}");
    }
    idp.stop().await;
}

#[actix_web::test]
async fn missing_pkce_or_the_plain_method_redirects_with_invalid_request() {
    let idp = TestIdp::start().await;
    for overrides in [
        vec![("code_challenge", "")],
        vec![("code_challenge_method", "")],
        vec![("code_challenge_method", "plain")],
        vec![("code_challenge", "too-short")],
    ] {
        let query = redirect_query(&idp.authorize(&overrides).await);
        assert_eq!(query["error"], "invalid_request", "{overrides:?}");
        assert_eq!(query["state"], "st-123");
        assert_eq!(query["iss"], idp.url);
        assert!(!query.contains_key("code"));
    }
    idp.stop().await;
}

#[actix_web::test]
async fn unknown_scope_redirects_with_invalid_scope() {
    let idp = TestIdp::start().await;
    let query = redirect_query(&idp.authorize(&[("scope", "openid admin:all")]).await);
    assert_eq!(query["error"], "invalid_scope");
    assert!(
        query["error_description"].contains("admin:all"),
        "{query:?}"
    );
    assert!(!query.contains_key("code"));
    idp.stop().await;
}

#[actix_web::test]
async fn wrong_response_type_redirects_with_unsupported_response_type() {
    let idp = TestIdp::start().await;
    let query = redirect_query(&idp.authorize(&[("response_type", "token")]).await);
    assert_eq!(query["error"], "unsupported_response_type");
    idp.stop().await;
}

#[actix_web::test]
async fn login_hint_logs_in_that_user_and_an_unknown_hint_is_access_denied() {
    let idp = TestIdp::start().await;
    let tokens = idp.code_flow(&[("login_hint", "bob")]).await;
    let (_, claims) = verify(tokens.str("access_token"), &idp.jwks().await, &idp.url);
    assert_eq!(claims["sub"], "bob");

    let query = redirect_query(&idp.authorize(&[("login_hint", "mallory")]).await);
    assert_eq!(query["error"], "access_denied");
    assert!(!query.contains_key("code"));
    idp.stop().await;
}
