//! `POST /token` with `grant_type=authorization_code`, and client authentication.

use token_broker::dev_idp::DevIdpConfig;
use token_broker::dev_idp::config::ClientSpec;

use super::{Answer, BROKER, REDIRECT, SERVICE, TestIdp, VERIFIER};
use crate::support::http;

/// A second client allowed the code flow, to redeem another client's code.
fn with_other_app() -> DevIdpConfig {
    let mut config = DevIdpConfig::default();
    config.clients.push(ClientSpec {
        client_id: "other-app".to_owned(),
        client_secret: Some("other-secret".to_owned()),
        redirect_uris: vec!["http://127.0.0.1/oauth/callback".to_owned()],
        grant_types: vec!["authorization_code".to_owned()],
        scopes: None,
    });
    config
}

async fn redeem_with(idp: &TestIdp, client: (&str, &str), form: &[(&str, &str)]) -> Answer {
    let mut full = vec![("grant_type", "authorization_code")];
    full.extend_from_slice(form);
    idp.token(client, &full).await
}

#[actix_web::test]
async fn code_redeems_once_for_access_refresh_and_id_tokens() {
    let idp = TestIdp::start().await;
    let code = idp.code(&[]).await;
    let tokens = idp.redeem(BROKER, &code).await;
    assert_eq!(tokens.status, 200, "{}", tokens.body);
    assert_eq!(tokens.header("cache-control"), Some("no-store"));
    for key in ["access_token", "refresh_token", "id_token"] {
        assert!(tokens.body[key].is_string(), "{key}: {}", tokens.body);
    }
    assert_eq!(tokens.body["scope"], "notes:read openid profile");
    assert!(idp.active(tokens.str("access_token")).await);
    idp.stop().await;
}

#[actix_web::test]
async fn code_with_wrong_verifier_redirect_uri_or_client_is_invalid_grant() {
    let idp = TestIdp::start_with(with_other_app()).await;
    let code = idp.code(&[]).await;
    let code = code.as_str();
    let wrong_verifier = "x".repeat(43);
    let wrong_verifier = wrong_verifier.as_str();
    for (client, form) in [
        (
            BROKER,
            [
                ("code", code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", wrong_verifier),
            ],
        ),
        (
            BROKER,
            [
                ("code", code),
                ("redirect_uri", "http://127.0.0.1:9999/oauth/callback"),
                ("code_verifier", VERIFIER),
            ],
        ),
        (
            ("other-app", "other-secret"),
            [
                ("code", code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", VERIFIER),
            ],
        ),
        (
            BROKER,
            [
                ("code", "never-issued"),
                ("redirect_uri", REDIRECT),
                ("code_verifier", VERIFIER),
            ],
        ),
    ] {
        redeem_with(&idp, client, &form)
            .await
            .assert_error(400, "invalid_grant");
    }
    idp.stop().await;
}

#[actix_web::test]
async fn expired_code_is_invalid_grant() {
    let idp = TestIdp::start().await;
    let code = idp.code(&[]).await;
    idp.advance(61);
    idp.redeem(BROKER, &code)
        .await
        .assert_error(400, "invalid_grant");
    idp.stop().await;
}

#[actix_web::test]
async fn replayed_code_is_refused_and_revokes_its_tokens() {
    let idp = TestIdp::start().await;
    let code = idp.code(&[]).await;
    let first = idp.redeem(BROKER, &code).await;
    assert_eq!(first.status, 200);
    let (access, refresh) = (first.str("access_token"), first.str("refresh_token"));
    assert!(idp.active(access).await && idp.active(refresh).await);

    idp.redeem(BROKER, &code)
        .await
        .assert_error(400, "invalid_grant");
    assert!(
        !idp.active(access).await,
        "the first access token must be revoked"
    );
    assert!(
        !idp.active(refresh).await,
        "the first refresh token must be revoked"
    );
    idp.token(
        BROKER,
        &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
    )
    .await
    .assert_error(400, "invalid_grant");
    idp.stop().await;
}

#[actix_web::test]
async fn bad_client_secret_is_401_invalid_client_with_a_basic_challenge() {
    let idp = TestIdp::start().await;
    let code = idp.code(&[]).await;
    for client in [(BROKER.0, "wrong"), ("nobody", "secret")] {
        let answer = idp.redeem(client, &code).await;
        answer.assert_error(401, "invalid_client");
        let challenge = answer.header("www-authenticate").unwrap();
        assert!(challenge.starts_with("Basic"), "{challenge}");
    }
    // The code survived the failed attempts.
    assert_eq!(idp.redeem(BROKER, &code).await.status, 200);
    idp.stop().await;
}

#[actix_web::test]
async fn client_secret_basic_and_client_secret_post_both_authenticate() {
    let idp = TestIdp::start().await;
    let code = idp.code(&[]).await;
    assert_eq!(idp.redeem(BROKER, &code).await.status, 200);

    let code = idp.code(&[]).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
        ("client_id", BROKER.0),
        ("client_secret", BROKER.1),
    ];
    let response = http()
        .post(idp.at("/token"))
        .form(&form)
        .send()
        .await
        .unwrap();
    let answer = Answer::of(response).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(answer.body["access_token"].is_string());
    idp.stop().await;
}

#[actix_web::test]
async fn unknown_grant_type_is_unsupported_grant_type() {
    let idp = TestIdp::start().await;
    idp.token(BROKER, &[("grant_type", "password"), ("username", "alice")])
        .await
        .assert_error(400, "unsupported_grant_type");
    idp.stop().await;
}

#[actix_web::test]
async fn client_without_the_code_grant_is_unauthorized_client() {
    let idp = TestIdp::start().await;
    let code = idp.code(&[]).await;
    idp.redeem(SERVICE, &code)
        .await
        .assert_error(400, "unauthorized_client");
    idp.stop().await;
}
