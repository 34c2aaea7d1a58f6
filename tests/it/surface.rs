//! The endpoints the foundation serves: health, readiness, metrics and metadata.

use crate::support::{TestBroker, config_text, http};

#[actix_web::test]
async fn healthz_and_readyz_answer_when_the_broker_runs() {
    let broker = TestBroker::start().await;
    let client = http();
    let health = client.get(broker.at("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(
        health.json::<serde_json::Value>().await.unwrap()["status"],
        "ok"
    );

    let ready = client.get(broker.at("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);

    broker.state.readiness.start_draining();
    let draining = client.get(broker.at("/readyz")).send().await.unwrap();
    assert_eq!(draining.status(), 503);
    let body: serde_json::Value = draining.json().await.unwrap();
    assert_eq!(body["reasons"][0], "shutting down");
    broker.stop().await;
}

#[actix_web::test]
async fn both_metadata_documents_describe_the_broker() {
    let broker = TestBroker::start().await;
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
    ] {
        let response = http().get(broker.at(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(response.headers()["content-type"], "application/json");
        let doc: serde_json::Value = response.json().await.unwrap();
        assert_eq!(doc["issuer"], "http://127.0.0.1:9", "{path}");
        assert_eq!(
            doc["code_challenge_methods_supported"],
            serde_json::json!(["S256"])
        );
        assert_eq!(doc["response_types_supported"], serde_json::json!(["code"]));
        let grants = doc["grant_types_supported"].as_array().unwrap();
        assert!(grants.contains(&"authorization_code".into()));
        assert!(grants.contains(&"refresh_token".into()));
        let methods = doc["token_endpoint_auth_methods_supported"]
            .as_array()
            .unwrap();
        assert!(
            methods.contains(&"none".into()),
            "public clients need `none`"
        );
        for (field, path) in [
            ("registration_endpoint", "/oauth/register"),
            ("authorization_endpoint", "/oauth/authorize"),
            ("token_endpoint", "/oauth/token"),
            ("revocation_endpoint", "/oauth/revoke"),
            ("introspection_endpoint", "/oauth/introspect"),
            ("jwks_uri", "/jwks.json"),
        ] {
            assert_eq!(doc[field], format!("http://127.0.0.1:9{path}"), "{field}");
        }
        assert_eq!(doc["authorization_response_iss_parameter_supported"], true);
        let scopes = doc["scopes_supported"].as_array().unwrap();
        for scope in ["openid", "offline_access", "notes:read", "notes:write"] {
            assert!(scopes.contains(&scope.into()), "{scope}");
        }
    }
    broker.stop().await;
}

#[actix_web::test]
async fn an_issuer_with_a_path_is_served_at_the_rfc8414_locations_too() {
    let text = config_text().replace("http://127.0.0.1:9\"", "http://127.0.0.1:9/auth\"");
    let broker = TestBroker::start_with(&text, |_| {}).await;
    for path in [
        "/.well-known/oauth-authorization-server/auth",
        "/auth/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
    ] {
        let response = http().get(broker.at(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let doc: serde_json::Value = response.json().await.unwrap();
        assert_eq!(doc["issuer"], "http://127.0.0.1:9/auth");
    }
    broker.stop().await;
}

#[actix_web::test]
async fn browser_clients_may_read_metadata_cross_origin() {
    let broker = TestBroker::start().await;
    let preflight = http()
        .request(
            reqwest::Method::OPTIONS,
            broker.at("/.well-known/oauth-authorization-server"),
        )
        .header("Origin", "http://localhost:6274")
        .header("Access-Control-Request-Method", "GET")
        .header("Access-Control-Request-Headers", "mcp-protocol-version")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        "http://localhost:6274"
    );
    broker.stop().await;
}

#[actix_web::test]
async fn metrics_count_requests_by_route_and_status() {
    let broker = TestBroker::start().await;
    let client = http();
    for _ in 0..3 {
        client.get(broker.at("/healthz")).send().await.unwrap();
    }
    client.get(broker.at("/no/such/path")).send().await.unwrap();
    let response = client.get(broker.at("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = response.text().await.unwrap();
    assert!(
        text.contains(
            r#"token_broker_http_requests_total{method="GET",route="/healthz",status="200"} 3"#
        ),
        "{text}"
    );
    assert!(
        text.contains(
            r#"token_broker_http_requests_total{method="GET",route="unmatched",status="404"} 1"#
        ),
        "{text}"
    );
    assert!(text.contains("token_broker_http_request_duration_seconds_bucket"));
    assert!(
        text.contains("process_resident_memory_bytes"),
        "process metrics missing"
    );
    broker.stop().await;
}

#[actix_web::test]
async fn every_response_carries_a_request_id_and_no_store() {
    let broker = TestBroker::start().await;
    let client = http();
    let first = client.get(broker.at("/healthz")).send().await.unwrap();
    let id = first.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(id.len(), 32);
    assert_eq!(first.headers()["cache-control"], "no-store");
    let second = client.get(broker.at("/healthz")).send().await.unwrap();
    assert_ne!(second.headers()["x-request-id"], id.as_str());

    // A well-formed id from the proxy in front is kept; a malformed one is replaced.
    let kept = client
        .get(broker.at("/healthz"))
        .header("X-Request-Id", "nginx-abc123")
        .send()
        .await
        .unwrap();
    assert_eq!(kept.headers()["x-request-id"], "nginx-abc123");
    let replaced = client
        .get(broker.at("/healthz"))
        .header("X-Request-Id", "bad id\twith spaces")
        .send()
        .await
        .unwrap();
    assert_ne!(replaced.headers()["x-request-id"], "bad id\twith spaces");
    broker.stop().await;
}
