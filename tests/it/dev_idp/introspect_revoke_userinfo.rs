//! Introspection (RFC 7662), revocation (RFC 7009) and userinfo (OIDC Core §5.3).

use serde_json::json;

use super::{Answer, BROKER, SERVICE, TestIdp};
use crate::support::http;

async fn userinfo(idp: &TestIdp, token: Option<&str>) -> Answer {
    let mut request = http().get(idp.at("/userinfo"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    Answer::of(request.send().await.unwrap()).await
}

#[actix_web::test]
async fn introspection_reports_active_access_tokens_with_their_claims() {
    let idp = TestIdp::start().await;
    let tokens = idp
        .code_flow(&[("resource", "https://notes.example/")])
        .await;
    let info = idp.introspect(tokens.str("access_token")).await;
    assert_eq!(info["active"], true);
    assert_eq!(info["token_type"], "Bearer");
    assert_eq!(info["sub"], "alice");
    assert_eq!(info["client_id"], "token-broker");
    assert_eq!(info["aud"], "https://notes.example/");
    assert_eq!(info["iss"], idp.url);
    assert_eq!(info["scope"], "notes:read openid profile");
    assert!(info["exp"].is_u64() && info["jti"].is_string());
    idp.stop().await;
}

#[actix_web::test]
async fn introspection_reports_active_refresh_tokens() {
    let idp = TestIdp::start().await;
    let tokens = idp.code_flow(&[]).await;
    let info = idp.introspect(tokens.str("refresh_token")).await;
    assert_eq!(info["active"], true);
    assert_eq!(info["token_type"], "refresh_token");
    assert_eq!(info["sub"], "alice");
    assert_eq!(info["client_id"], "token-broker");
    assert_eq!(info["scope"], "notes:read openid profile");
    idp.stop().await;
}

#[actix_web::test]
async fn garbage_expired_and_revoked_tokens_are_inactive() {
    let idp = TestIdp::start().await;
    assert_eq!(idp.introspect("garbage").await, json!({ "active": false }));

    let revoked = idp.service_token(&[]).await;
    let answer = idp
        .post_form("/revoke", SERVICE, &[("token", &revoked)])
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(idp.introspect(&revoked).await, json!({ "active": false }));

    let expiring = idp.service_token(&[]).await;
    idp.advance(290);
    assert!(idp.active(&expiring).await, "valid until its exp");
    idp.advance(11);
    assert_eq!(idp.introspect(&expiring).await, json!({ "active": false }));
    idp.stop().await;
}

#[actix_web::test]
async fn public_clients_and_wrong_secrets_may_not_introspect() {
    let idp = TestIdp::start().await;
    let token = idp.service_token(&[]).await;
    let registered = idp
        .post_json(
            "/register",
            json!({ "token_endpoint_auth_method": "none", "grant_types": ["client_credentials"] }),
        )
        .await;
    let form = [
        ("token", token.as_str()),
        ("client_id", registered.str("client_id")),
    ];
    let response = http()
        .post(idp.at("/introspect"))
        .form(&form)
        .send()
        .await
        .unwrap();
    Answer::of(response)
        .await
        .assert_error(401, "invalid_client");

    let wrong = idp
        .post_form("/introspect", (BROKER.0, "wrong"), &[("token", &token)])
        .await;
    wrong.assert_error(401, "invalid_client");
    assert!(wrong.header("www-authenticate").is_some());
    idp.stop().await;
}

#[actix_web::test]
async fn revoked_access_and_refresh_tokens_become_inactive() {
    let idp = TestIdp::start().await;
    let tokens = idp.code_flow(&[]).await;
    let (access, refresh) = (tokens.str("access_token"), tokens.str("refresh_token"));

    // Only the client the token was issued to may revoke it.
    let foreign = idp
        .post_form("/revoke", SERVICE, &[("token", access)])
        .await;
    assert_eq!(foreign.status, 400, "{}", foreign.body);
    assert!(idp.active(access).await);

    for token in [access, refresh] {
        let answer = idp
            .post_form(
                "/revoke",
                BROKER,
                &[("token", token), ("token_type_hint", "access_token")],
            )
            .await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert!(!idp.active(token).await);
    }
    let form = [("grant_type", "refresh_token"), ("refresh_token", refresh)];
    idp.token(BROKER, &form)
        .await
        .assert_error(400, "invalid_grant");
    userinfo(&idp, Some(access))
        .await
        .assert_error(401, "invalid_token");
    idp.stop().await;
}

#[actix_web::test]
async fn revoking_an_unknown_token_still_answers_200() {
    let idp = TestIdp::start().await;
    let answer = idp
        .post_form("/revoke", BROKER, &[("token", "never-issued")])
        .await;
    assert_eq!(answer.status, 200);
    let unauthenticated = http()
        .post(idp.at("/revoke"))
        .form(&[("token", "never-issued")])
        .send()
        .await
        .unwrap();
    Answer::of(unauthenticated)
        .await
        .assert_error(401, "invalid_client");
    idp.stop().await;
}

#[actix_web::test]
async fn userinfo_returns_claims_by_scope() {
    let idp = TestIdp::start().await;
    let minimal = idp.code_flow(&[("scope", "openid")]).await;
    let info = userinfo(&idp, Some(minimal.str("access_token"))).await;
    assert_eq!(info.status, 200);
    assert_eq!(info.body, json!({ "sub": "alice" }));

    let full = idp
        .code_flow(&[("scope", "openid profile email"), ("login_hint", "bob")])
        .await;
    let info = userinfo(&idp, Some(full.str("access_token"))).await;
    assert_eq!(info.body["sub"], "bob");
    assert_eq!(info.body["name"], "Bob Example");
    assert_eq!(info.body["preferred_username"], "bob");
    assert_eq!(info.body["email"], "bob@example.com");
    assert_eq!(info.body["email_verified"], true);

    let posted = http()
        .post(idp.at("/userinfo"))
        .bearer_auth(full.str("access_token"))
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 200);
    idp.stop().await;
}

#[actix_web::test]
async fn userinfo_without_a_token_is_401_with_a_bearer_challenge() {
    let idp = TestIdp::start().await;
    // RFC 6750 §3.1: no error code when no token was sent; invalid_token otherwise.
    for (token, expected) in [
        (None, "Bearer"),
        (Some("garbage"), "Bearer error=\"invalid_token\""),
    ] {
        let answer = userinfo(&idp, token).await;
        answer.assert_error(401, "invalid_token");
        assert_eq!(answer.header("www-authenticate").unwrap(), expected);
    }
    idp.stop().await;
}

#[actix_web::test]
async fn userinfo_without_openid_is_403_insufficient_scope() {
    let idp = TestIdp::start().await;
    let tokens = idp.code_flow(&[("scope", "notes:read")]).await;
    let answer = userinfo(&idp, Some(tokens.str("access_token"))).await;
    answer.assert_error(403, "insufficient_scope");
    let challenge = answer.header("www-authenticate").unwrap();
    assert!(challenge.contains("insufficient_scope"), "{challenge}");
    let service = idp.service_token(&[("scope", "notes:read")]).await;
    userinfo(&idp, Some(&service))
        .await
        .assert_error(403, "insufficient_scope");
    idp.stop().await;
}
