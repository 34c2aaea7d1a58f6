//! `grant_type=client_credentials`: the client is the subject; resource/audience → `aud`.

use serde_json::json;

use super::{SERVICE, TestIdp, verify};

#[actix_web::test]
async fn client_credentials_token_names_the_client_as_subject_with_the_requested_scope() {
    let idp = TestIdp::start().await;
    let answer = idp
        .token(
            SERVICE,
            &[
                ("grant_type", "client_credentials"),
                ("scope", "notes:read"),
            ],
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["scope"], "notes:read");
    assert!(answer.body.get("refresh_token").is_none());
    assert!(answer.body.get("id_token").is_none());
    let (typ, claims) = verify(answer.str("access_token"), &idp.jwks().await, &idp.url);
    assert_eq!(typ.as_deref(), Some("at+jwt"));
    assert_eq!(claims["sub"], "demo-service");
    assert_eq!(claims["client_id"], "demo-service");
    assert_eq!(
        claims["aud"], "demo-service",
        "no resource: the client itself"
    );
    assert_eq!(claims["scope"], "notes:read");
    idp.stop().await;
}

#[actix_web::test]
async fn resource_and_audience_parameters_become_the_token_audience() {
    let idp = TestIdp::start().await;
    let jwks = idp.jwks().await;
    let one = idp
        .service_token(&[("resource", "https://notes.example/api")])
        .await;
    assert_eq!(
        verify(&one, &jwks, &idp.url).1["aud"],
        "https://notes.example/api"
    );

    let one = idp.service_token(&[("audience", "notes-api")]).await;
    assert_eq!(verify(&one, &jwks, &idp.url).1["aud"], "notes-api");

    let both = idp
        .service_token(&[("resource", "https://a.example/"), ("audience", "b-api")])
        .await;
    assert_eq!(
        verify(&both, &jwks, &idp.url).1["aud"],
        json!(["https://a.example/", "b-api"])
    );
    idp.stop().await;
}

#[actix_web::test]
async fn scope_the_client_may_not_have_is_invalid_scope_and_bad_resource_invalid_target() {
    let idp = TestIdp::start().await;
    idp.token(
        SERVICE,
        &[("grant_type", "client_credentials"), ("scope", "admin:all")],
    )
    .await
    .assert_error(400, "invalid_scope");
    idp.token(
        SERVICE,
        &[
            ("grant_type", "client_credentials"),
            ("resource", "not a uri"),
        ],
    )
    .await
    .assert_error(400, "invalid_target");
    idp.stop().await;
}

#[actix_web::test]
async fn public_clients_cannot_use_client_credentials() {
    let idp = TestIdp::start().await;
    let registered = idp
        .post_json(
            "/register",
            json!({
                "token_endpoint_auth_method": "none",
                "grant_types": ["client_credentials"],
            }),
        )
        .await;
    assert_eq!(registered.status, 201, "{}", registered.body);
    let client_id = registered.str("client_id");
    let response = crate::support::http()
        .post(idp.at("/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
        ])
        .send()
        .await
        .unwrap();
    super::Answer::of(response)
        .await
        .assert_error(400, "unauthorized_client");
    idp.stop().await;
}
