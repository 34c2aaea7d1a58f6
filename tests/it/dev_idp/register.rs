//! Dynamic client registration (RFC 7591) and its read and delete (RFC 7592).

use serde_json::{Value, json};

use super::{Answer, REDIRECT, TestIdp, VERIFIER};
use crate::support::http;

fn metadata() -> Value {
    json!({
        "client_name": "Test app",
        "redirect_uris": ["http://127.0.0.1/oauth/callback"],
        "grant_types": ["authorization_code", "refresh_token"],
    })
}

async fn with_token(method: reqwest::Method, uri: &str, token: Option<&str>) -> Answer {
    let mut request = http().request(method, uri);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    Answer::of(request.send().await.unwrap()).await
}

#[actix_web::test]
async fn registration_returns_credentials_and_a_management_uri() {
    let idp = TestIdp::start().await;
    let answer = idp.post_json("/register", metadata()).await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    let client_id = answer.str("client_id");
    assert!(answer.str("client_secret").len() >= 32);
    assert_eq!(answer.body["client_secret_expires_at"], 0);
    assert!(answer.body["client_id_issued_at"].is_u64());
    assert!(!answer.str("registration_access_token").is_empty());
    assert_eq!(
        answer.body["registration_client_uri"],
        idp.at(&format!("/register/{client_id}"))
    );
    assert_eq!(answer.body["client_name"], "Test app");
    assert_eq!(
        answer.body["token_endpoint_auth_method"],
        "client_secret_basic"
    );
    assert_eq!(answer.body["response_types"], json!(["code"]));
    idp.stop().await;
}

#[actix_web::test]
async fn public_client_registration_gets_no_secret() {
    let idp = TestIdp::start().await;
    let mut body = metadata();
    body["token_endpoint_auth_method"] = json!("none");
    let answer = idp.post_json("/register", body).await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    assert_eq!(answer.body["token_endpoint_auth_method"], "none");
    assert!(
        answer.body.get("client_secret").is_none(),
        "{}",
        answer.body
    );
    assert!(answer.body.get("client_secret_expires_at").is_none());
    idp.stop().await;
}

#[actix_web::test]
async fn bad_redirect_uris_are_invalid_redirect_uri() {
    let idp = TestIdp::start().await;
    for uris in [
        json!(["not a uri"]),
        json!(["https://app.example/cb#frag"]),
        json!([]),
    ] {
        let answer = idp
            .post_json("/register", json!({ "redirect_uris": uris }))
            .await;
        answer.assert_error(400, "invalid_redirect_uri");
    }
    idp.stop().await;
}

#[actix_web::test]
async fn unsupported_metadata_is_invalid_client_metadata() {
    let idp = TestIdp::start().await;
    for (key, value) in [
        ("grant_types", json!(["password"])),
        ("response_types", json!(["token"])),
        ("token_endpoint_auth_method", json!("private_key_jwt")),
        ("scope", json!("openid admin:all")),
        ("redirect_uris", json!("http://127.0.0.1/cb")),
    ] {
        let mut body = metadata();
        body[key] = value;
        let answer = idp.post_json("/register", body).await;
        answer.assert_error(400, "invalid_client_metadata");
    }
    idp.stop().await;
}

#[actix_web::test]
async fn registration_is_read_with_its_access_token_only() {
    let idp = TestIdp::start().await;
    let created = idp.post_json("/register", metadata()).await;
    let uri = created.str("registration_client_uri");
    let token = created.str("registration_access_token");

    let read = with_token(reqwest::Method::GET, uri, Some(token)).await;
    assert_eq!(read.status, 200, "{}", read.body);
    assert_eq!(read.body["client_id"], created.body["client_id"]);
    assert_eq!(read.body["client_name"], "Test app");
    assert_eq!(read.body["redirect_uris"], created.body["redirect_uris"]);
    assert_eq!(read.body["registration_client_uri"], uri);
    // RFC 7592 §3: the read response carries the registration access token.
    assert_eq!(read.body["registration_access_token"], token);

    for wrong in [Some("wrong-token"), None] {
        let refused = with_token(reqwest::Method::GET, uri, wrong).await;
        refused.assert_error(401, "invalid_token");
        assert!(
            refused
                .header("www-authenticate")
                .unwrap()
                .starts_with("Bearer")
        );
    }
    let other = idp.post_json("/register", metadata()).await;
    let foreign = with_token(
        reqwest::Method::GET,
        uri,
        Some(other.str("registration_access_token")),
    )
    .await;
    foreign.assert_error(401, "invalid_token");
    idp.stop().await;
}

#[actix_web::test]
async fn deleted_client_can_no_longer_use_the_token_endpoint() {
    let idp = TestIdp::start().await;
    let created = idp
        .post_json(
            "/register",
            json!({ "grant_types": ["client_credentials"] }),
        )
        .await;
    let client = (created.str("client_id"), created.str("client_secret"));
    let form = [("grant_type", "client_credentials")];
    assert_eq!(idp.token(client, &form).await.status, 200);

    let uri = created.str("registration_client_uri");
    let token = created.str("registration_access_token");
    let wrong = with_token(reqwest::Method::DELETE, uri, Some("wrong")).await;
    wrong.assert_error(401, "invalid_token");
    let deleted = with_token(reqwest::Method::DELETE, uri, Some(token)).await;
    assert_eq!(deleted.status, 204);

    idp.token(client, &form)
        .await
        .assert_error(401, "invalid_client");
    let gone = with_token(reqwest::Method::GET, uri, Some(token)).await;
    gone.assert_error(401, "invalid_token");
    idp.stop().await;
}

#[actix_web::test]
async fn registered_client_completes_a_code_flow() {
    let idp = TestIdp::start().await;
    let created = idp.post_json("/register", metadata()).await;
    let client = (created.str("client_id"), created.str("client_secret"));
    let code = idp.code(&[("client_id", client.0)]).await;
    let tokens = idp.redeem(client, &code).await;
    assert_eq!(tokens.status, 200, "{}", tokens.body);
    let refresh = [
        ("grant_type", "refresh_token"),
        ("refresh_token", tokens.str("refresh_token")),
    ];
    assert_eq!(idp.token(client, &refresh).await.status, 200);

    // A public registration: PKCE alone, no secret, client_id in the form.
    let mut body = metadata();
    body["token_endpoint_auth_method"] = json!("none");
    let public = idp.post_json("/register", body).await;
    let client_id = public.str("client_id");
    let code = idp.code(&[("client_id", client_id)]).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
        ("client_id", client_id),
    ];
    let response = http()
        .post(idp.at("/token"))
        .form(&form)
        .send()
        .await
        .unwrap();
    let answer = Answer::of(response).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    idp.stop().await;
}
