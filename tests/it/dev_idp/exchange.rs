//! RFC 8693 token exchange, the refuse knob, and Entra-style on-behalf-of.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use super::{ACCESS_TOKEN_TYPE, Answer, BROKER, SERVICE, TestIdp, verify};

const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

async fn exchange(idp: &TestIdp, subject: &str, extra: &[(&str, &str)]) -> Answer {
    let mut form = vec![
        ("grant_type", EXCHANGE),
        ("subject_token", subject),
        ("subject_token_type", ACCESS_TOKEN_TYPE),
    ];
    form.extend_from_slice(extra);
    idp.token(SERVICE, &form).await
}

async fn on_behalf_of(idp: &TestIdp, assertion: &str, extra: &[(&str, &str)]) -> Answer {
    let mut form = vec![("grant_type", JWT_BEARER), ("assertion", assertion)];
    form.extend_from_slice(extra);
    idp.token(BROKER, &form).await
}

/// The token with its payload's `sub` changed and the original signature kept.
fn forged(token: &str) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let mut claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    claims["sub"] = json!("bob");
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap());
    format!("{}.{payload}.{}", parts[0], parts[2])
}

#[actix_web::test]
async fn exchange_keeps_the_subject_and_sets_the_new_audience_and_narrower_scope() {
    let idp = TestIdp::start().await;
    let user = idp
        .code_flow(&[("scope", "openid notes:read notes:write")])
        .await;
    let answer = exchange(
        &idp,
        user.str("access_token"),
        &[("audience", "notes-backend"), ("scope", "notes:read")],
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["issued_token_type"], ACCESS_TOKEN_TYPE);
    assert_eq!(answer.body["token_type"], "Bearer");
    assert_eq!(answer.body["scope"], "notes:read");
    let (typ, claims) = verify(answer.str("access_token"), &idp.jwks().await, &idp.url);
    assert_eq!(typ.as_deref(), Some("at+jwt"));
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["aud"], "notes-backend");
    assert_eq!(claims["scope"], "notes:read");
    assert_eq!(claims["client_id"], "demo-service");
    assert!(claims.get("act").is_none());

    let by_resource = exchange(
        &idp,
        user.str("access_token"),
        &[("resource", "https://notes.example/")],
    )
    .await;
    let (_, claims) = verify(by_resource.str("access_token"), &idp.jwks().await, &idp.url);
    assert_eq!(claims["aud"], "https://notes.example/");
    assert_eq!(
        claims["scope"], "notes:read notes:write openid",
        "no scope: the subject's"
    );
    idp.stop().await;
}

#[actix_web::test]
async fn exchange_cannot_widen_the_subjects_scope() {
    let idp = TestIdp::start().await;
    let user = idp.code_flow(&[("scope", "openid notes:read")]).await;
    exchange(&idp, user.str("access_token"), &[("scope", "notes:write")])
        .await
        .assert_error(400, "invalid_scope");
    idp.stop().await;
}

#[actix_web::test]
async fn forged_or_expired_subject_token_is_invalid_grant() {
    let idp = TestIdp::start().await;
    let user = idp.code_flow(&[]).await;
    let subject = user.str("access_token");
    exchange(&idp, &forged(subject), &[])
        .await
        .assert_error(400, "invalid_grant");
    exchange(&idp, "not.a.jwt", &[])
        .await
        .assert_error(400, "invalid_grant");
    // The ID token is a JWT from this issuer, but not an access token.
    exchange(&idp, user.str("id_token"), &[])
        .await
        .assert_error(400, "invalid_grant");
    assert_eq!(exchange(&idp, subject, &[]).await.status, 200);

    idp.advance(301);
    exchange(&idp, subject, &[])
        .await
        .assert_error(400, "invalid_grant");
    idp.stop().await;
}

#[actix_web::test]
async fn actor_token_becomes_the_act_claim() {
    let idp = TestIdp::start().await;
    let user = idp.code_flow(&[]).await;
    let actor = idp.service_token(&[]).await;
    let answer = exchange(
        &idp,
        user.str("access_token"),
        &[
            ("actor_token", &actor),
            ("actor_token_type", ACCESS_TOKEN_TYPE),
        ],
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let (_, claims) = verify(answer.str("access_token"), &idp.jwks().await, &idp.url);
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["act"], json!({ "sub": "demo-service" }));

    exchange(
        &idp,
        user.str("access_token"),
        &[("actor_token", "garbage")],
    )
    .await
    .assert_error(400, "invalid_grant");
    idp.stop().await;
}

#[actix_web::test]
async fn refuse_knob_makes_exchanges_unauthorized_client_until_lifted() {
    let idp = TestIdp::start().await;
    let user = idp.code_flow(&[]).await;
    let subject = user.str("access_token");
    let obo = [
        ("requested_token_use", "on_behalf_of"),
        ("scope", "api://nextcloud/notes:read"),
    ];

    assert_eq!(
        idp.post_json("/_dev/exchange", json!({ "refuse": true }))
            .await
            .status,
        204
    );
    exchange(&idp, subject, &[])
        .await
        .assert_error(400, "unauthorized_client");
    on_behalf_of(&idp, subject, &obo)
        .await
        .assert_error(400, "unauthorized_client");

    let knob = json!({ "refuse": true, "error": "invalid_target" });
    idp.post_json("/_dev/exchange", knob).await;
    exchange(&idp, subject, &[])
        .await
        .assert_error(400, "invalid_target");

    idp.post_json("/_dev/exchange", json!({ "refuse": false }))
        .await;
    assert_eq!(exchange(&idp, subject, &[]).await.status, 200);
    assert_eq!(on_behalf_of(&idp, subject, &obo).await.status, 200);
    idp.stop().await;
}

#[actix_web::test]
async fn on_behalf_of_issues_an_entra_shaped_token_for_the_named_resource() {
    let idp = TestIdp::start().await;
    // Without a resource the user's token is addressed to the calling client.
    let user = idp.code_flow(&[("scope", "openid notes:read")]).await;
    let answer = on_behalf_of(
        &idp,
        user.str("access_token"),
        &[
            ("requested_token_use", "on_behalf_of"),
            ("scope", "api://nextcloud/notes:read"),
        ],
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["scope"], "api://nextcloud/notes:read");
    assert_eq!(answer.body["ext_expires_in"], 300);
    let (_, claims) = verify(answer.str("access_token"), &idp.jwks().await, &idp.url);
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["aud"], "api://nextcloud");
    assert_eq!(claims["scp"], "notes:read");
    assert!(claims.get("scope").is_none(), "Entra tokens carry scp only");

    // `<resource>/.default` asks for everything the user's token carries.
    let default = on_behalf_of(
        &idp,
        user.str("access_token"),
        &[
            ("requested_token_use", "on_behalf_of"),
            ("scope", "api://nextcloud/.default"),
        ],
    )
    .await;
    let (_, claims) = verify(default.str("access_token"), &idp.jwks().await, &idp.url);
    assert_eq!(claims["scp"], "notes:read openid");
    assert_eq!(claims["aud"], "api://nextcloud");
    idp.stop().await;
}

#[actix_web::test]
async fn on_behalf_of_with_an_assertion_for_another_audience_is_invalid_grant() {
    let idp = TestIdp::start().await;
    let user = idp
        .code_flow(&[("resource", "https://elsewhere.example/")])
        .await;
    let form = [
        ("requested_token_use", "on_behalf_of"),
        ("scope", "api://nextcloud/notes:read"),
    ];
    on_behalf_of(&idp, user.str("access_token"), &form)
        .await
        .assert_error(400, "invalid_grant");
    idp.stop().await;
}

#[actix_web::test]
async fn on_behalf_of_without_requested_token_use_is_invalid_request() {
    let idp = TestIdp::start().await;
    let user = idp.code_flow(&[]).await;
    on_behalf_of(
        &idp,
        user.str("access_token"),
        &[("scope", "api://nextcloud/notes:read")],
    )
    .await
    .assert_error(400, "invalid_request");
    idp.stop().await;
}
