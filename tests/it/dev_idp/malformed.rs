//! Malformed requests get RFC 6749 §5.2 JSON errors, never HTML or an empty body.

use super::{Answer, BROKER, TestIdp};
use crate::support::http;
use token_broker::domain::client_auth::basic_header;

async fn raw(idp: &TestIdp, path: &str, content_type: &str, body: &'static [u8]) -> Answer {
    let response = http()
        .post(idp.at(path))
        .header("Authorization", basic_header(BROKER.0, BROKER.1))
        .header("Content-Type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    Answer::of(response).await
}

const FORM: &str = "application/x-www-form-urlencoded";

#[actix_web::test]
async fn malformed_token_requests_get_json_400_or_415() {
    let idp = TestIdp::start().await;
    for (content_type, body, status) in [
        (
            FORM,
            &b"grant_type=client_credentials&grant_type=refresh_token"[..],
            400,
        ),
        (FORM, b"scope=openid", 400),
        (FORM, b"grant_type=client_credentials", 200),
        (
            "application/json",
            b"{\"grant_type\":\"client_credentials\"}",
            415,
        ),
        ("text/plain", b"grant_type=client_credentials", 415),
        // Forms are UTF-8 (WHATWG URL §5): another charset is another media type.
        (
            "application/x-www-form-urlencoded; charset=utf-16le",
            b"abc",
            415,
        ),
        (FORM, b"grant_type=%ff", 400),
        (
            "application/x-www-form-urlencoded; charset=klingon",
            b"a=b",
            415,
        ),
    ] {
        let answer = raw(&idp, "/token", content_type, body).await;
        if status == 200 {
            assert_eq!(answer.status, 200, "{}", answer.body);
            continue;
        }
        answer.assert_error(status, "invalid_request");
        assert_eq!(answer.header("content-type"), Some("application/json"));
    }
    idp.stop().await;
}

#[actix_web::test]
async fn malformed_registration_requests_get_json_errors() {
    let idp = TestIdp::start().await;
    for (content_type, body, status, code) in [
        (
            "application/json",
            &b"{\"redirect_uris\": ["[..],
            400,
            "invalid_request",
        ),
        ("application/json", b"", 400, "invalid_request"),
        ("text/plain", b"{}", 415, "invalid_request"),
        (
            FORM,
            b"redirect_uris=http://127.0.0.1/cb",
            415,
            "invalid_request",
        ),
        (
            "application/json",
            b"[\"not\", \"an\", \"object\"]",
            400,
            "invalid_client_metadata",
        ),
        (
            "application/json",
            b"{\"grant_types\": [1, 2]}",
            400,
            "invalid_client_metadata",
        ),
    ] {
        let answer = raw(&idp, "/register", content_type, body).await;
        answer.assert_error(status, code);
    }
    idp.stop().await;
}

#[actix_web::test]
async fn wrong_methods_and_unknown_paths_get_json_405_and_404() {
    let idp = TestIdp::start().await;
    idp.get("/token").await.assert_error(405, "invalid_request");
    idp.get("/register")
        .await
        .assert_error(405, "invalid_request");
    let put = http().put(idp.at("/jwks")).send().await.unwrap();
    Answer::of(put).await.assert_error(405, "invalid_request");
    idp.get("/nowhere")
        .await
        .assert_error(404, "invalid_request");
    idp.stop().await;
}
