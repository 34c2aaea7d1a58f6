//! Where forward-auth reads the request it judges: exactly one original-URI header,
//! the one `[forward_auth] uri_header` names (nginx's `X-Original-URI` by default,
//! Traefik's and Caddy's `X-Forwarded-Uri` when configured), never another a client
//! could add; paths that routers resolve differently are 400.

use serde_json::Value;

use crate::support::{TestBroker, config_text, http};

const RESOURCE: &str = "http://127.0.0.1:9/mcp";

async fn token(broker: &TestBroker) -> String {
    broker.idp.service_token(RESOURCE, "notes:read").await
}

async fn verify(broker: &TestBroker, token: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = http().get(broker.at("/auth/verify")).bearer_auth(token);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

#[actix_web::test]
async fn without_the_configured_header_the_check_is_refused_not_guessed() {
    let broker = TestBroker::start().await;
    let token = token(&broker).await;
    assert_eq!(
        verify(&broker, &token, &[("X-Original-URI", "/mcp")])
            .await
            .status(),
        200
    );
    // The old fallbacks: X-Forwarded-Uri, and the check request's own URI.
    for headers in [&[("X-Forwarded-Uri", "/mcp")][..], &[]] {
        let response = verify(&broker, &token, headers).await;
        assert_eq!(response.status(), 400, "{headers:?}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request");
        assert!(
            body["error_description"]
                .as_str()
                .unwrap()
                .contains("original-URI"),
            "{body}"
        );
    }
    // Two of them: which one the proxy set cannot be told.
    let response = verify(
        &broker,
        &token,
        &[("X-Original-URI", "/mcp"), ("X-Original-URI", "/other")],
    )
    .await;
    assert_eq!(response.status(), 400);
    broker.stop().await;
}

#[actix_web::test]
async fn a_traefik_deployment_names_x_forwarded_uri_and_nothing_else_counts() {
    let text = format!(
        "{}\n[forward_auth]\nuri_header = \"X-Forwarded-Uri\"\nmethod_header = \"X-Forwarded-Method\"\n",
        config_text()
    );
    let broker = TestBroker::start_with(&text, |_| {}).await;
    let token = token(&broker).await;
    assert_eq!(
        verify(&broker, &token, &[("X-Forwarded-Uri", "/mcp")])
            .await
            .status(),
        200
    );
    // X-Original-URI is now just another client header.
    let response = verify(&broker, &token, &[("X-Original-URI", "/mcp")]).await;
    assert_eq!(response.status(), 400);
    // And the configured header decides: a path no resource covers.
    let response = verify(
        &broker,
        &token,
        &[
            ("X-Forwarded-Uri", "/elsewhere"),
            ("X-Original-URI", "/mcp"),
        ],
    )
    .await;
    assert_eq!(response.status(), 403);
    broker.stop().await;
}

#[actix_web::test]
async fn ambiguous_paths_are_400_and_escaped_ones_are_judged_decoded() {
    let broker = TestBroker::start().await;
    let token = token(&broker).await;
    for path in [
        "/mcp/../mcp",
        "/mcp/%2e%2e/x",
        "/mcp/..%2Fx",
        "/mcp//x",
        "/mcp/%00",
        "/mcp\\x",
    ] {
        let response = verify(&broker, &token, &[("X-Original-URI", path)]).await;
        assert_eq!(response.status(), 400, "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request", "{path}");
    }
    // nginx routes `/mc%70` to `location /mcp`: so does the broker.
    let response = verify(&broker, &token, &[("X-Original-URI", "/mc%70/x?y=1")]).await;
    assert_eq!(response.status(), 200);
    broker.stop().await;
}

#[actix_web::test]
async fn an_unusable_forward_auth_header_is_a_startup_error() {
    let text = format!(
        "{}\n[forward_auth]\nuri_header = \"X-Auth-Subject\"\n",
        config_text()
    );
    let error = token_broker::config::load_str(&text, &Default::default()).unwrap_err();
    assert!(
        error.to_string().contains("forward_auth.uri_header"),
        "{error}"
    );
}
