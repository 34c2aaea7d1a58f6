//! `POST /oauth/register` (RFC 7591, local mode): every real client's body, invalid
//! metadata, de-duplication, rate limits behind proxies, the client cap and clean-up.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{TestBroker, config_text, http};

async fn register(broker: &TestBroker, body: &Value) -> reqwest::Response {
    http()
        .post(broker.at("/oauth/register"))
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn clients(broker: &TestBroker) -> u64 {
    broker.state.store.count_clients().await.unwrap()
}

/// The registration bodies real MCP clients send (shared/CLIENTS.md).
fn real_clients() -> Vec<(&'static str, Value, bool)> {
    vec![
        (
            "Claude.ai (confidential, client_secret_post)",
            json!({
            "redirect_uris": ["https://claude.ai/api/mcp/auth_callback"],
            "token_endpoint_auth_method": "client_secret_post",
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"], "client_name": "Claude"}),
            true,
        ),
        (
            "VS Code (native, four redirect URIs)",
            json!({
            "client_name": "Visual Studio Code", "client_uri": "https://code.visualstudio.com",
            "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"],
            "redirect_uris": ["http://127.0.0.1:33418/", "http://127.0.0.1/",
                              "https://vscode.dev/redirect", "https://insiders.vscode.dev/redirect"],
            "scope": "openid profile email", "token_endpoint_auth_method": "none",
            "application_type": "native"}),
            false,
        ),
        (
            "Cursor (private-use scheme among three)",
            json!({
            "redirect_uris": ["cursor://anysphere.cursor-mcp/oauth/callback",
                              "https://www.cursor.com/agents/mcp/oauth/callback",
                              "http://localhost:8787/callback"],
            "token_endpoint_auth_method": "none", "client_name": "Cursor"}),
            false,
        ),
        (
            "MCP Inspector",
            json!({
            "redirect_uris": ["http://localhost:6274/oauth/callback", "http://localhost:6274/oauth/callback/debug"],
            "token_endpoint_auth_method": "none", "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"], "client_name": "MCP Inspector",
            "client_uri": "https://github.com/modelcontextprotocol/inspector", "scope": "notes:read"}),
            false,
        ),
        (
            "mcp-remote (software_id)",
            json!({
            "redirect_uris": ["http://localhost:3335/oauth/callback"], "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"],
            "client_name": "MCP CLI Proxy", "client_uri": "https://github.com/modelcontextprotocol/mcp-cli",
            "software_id": "2e6dc280-f3c3-4e01-99a7-8181dbd1d23d", "software_version": "0.1.38"}),
            false,
        ),
        (
            "Zed",
            json!({
            "client_name": "Zed", "grant_types": ["authorization_code"], "response_types": ["code"],
            "token_endpoint_auth_method": "none", "redirect_uris": ["http://127.0.0.1:27523/callback"]}),
            false,
        ),
        (
            "Python SDK (auth method omitted)",
            json!({
            "redirect_uris": ["http://localhost:3030/callback"], "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"], "client_name": "Python MCP client"}),
            true,
        ),
        (
            "Continue (query in the redirect URI)",
            json!({
            "redirect_uris": ["http://localhost:3000/?state=6b1c7e0e-0c3e-4f0e-9f9e-3d9a4b2c1a00"],
            "token_endpoint_auth_method": "none", "grant_types": ["authorization_code", "refresh_token"],
            "client_name": "Continue Dev, Inc"}),
            false,
        ),
    ]
}

#[actix_web::test]
async fn every_real_clients_registration_is_accepted() {
    let broker = TestBroker::start().await;
    for (name, body, confidential) in real_clients() {
        let response = register(&broker, &body).await;
        assert_eq!(response.status(), 201, "{name}");
        assert_eq!(response.headers()["cache-control"], "no-store", "{name}");
        let answer: Value = response.json().await.unwrap();
        assert!(
            answer["client_id"]
                .as_str()
                .is_some_and(|id| id.len() >= 16),
            "{name}: {answer}"
        );
        assert!(answer["client_id_issued_at"].is_u64(), "{name}");
        assert_eq!(answer["redirect_uris"], body["redirect_uris"], "{name}");
        assert_eq!(
            answer["client_secret"].is_string(),
            confidential,
            "{name}: {answer}"
        );
        if confidential {
            assert_eq!(answer["client_secret_expires_at"], 0, "{name}");
        }
    }
    assert_eq!(clients(&broker).await, 8);
    broker.stop().await;
}

#[actix_web::test]
async fn invalid_metadata_is_refused_and_nothing_is_stored() {
    let broker = TestBroker::start().await;
    let uri = |u: &str| json!({"redirect_uris": [u], "token_endpoint_auth_method": "none"});
    let cases = [
        (uri("javascript:alert(1)"), "invalid_redirect_uri"),
        (uri("data:text/html,hi"), "invalid_redirect_uri"),
        (uri("file:///etc/passwd"), "invalid_redirect_uri"),
        (uri("http://evil.example/cb"), "invalid_redirect_uri"),
        (uri("https://app.example/cb#frag"), "invalid_redirect_uri"),
        (uri("https://*.example/cb"), "invalid_redirect_uri"),
        (
            json!({"token_endpoint_auth_method": "none"}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["https://a.example/cb"], "grant_types": ["implicit"]}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": ["https://a.example/cb"], "response_types": ["token"]}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "private_key_jwt"}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": ["cursor://x.y/cb"], "application_type": "web"}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": "https://a.example/cb"}),
            "invalid_client_metadata",
        ),
        (json!(["not", "an", "object"]), "invalid_client_metadata"),
    ];
    for (body, code) in cases {
        let response = register(&broker, &body).await;
        assert_eq!(response.status(), 400, "{body}");
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["error"], code, "{body}: {answer}");
        assert!(
            answer["error_description"]
                .as_str()
                .is_some_and(|d| !d.is_empty())
        );
    }
    let bad_json = http()
        .post(broker.at("/oauth/register"))
        .header("content-type", "application/json")
        .body("{\"redirect_uris\": [")
        .send()
        .await
        .unwrap();
    assert_eq!(bad_json.status(), 400);
    let form = http()
        .post(broker.at("/oauth/register"))
        .form(&[("redirect_uris", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 415);
    assert_eq!(clients(&broker).await, 0);
    broker.stop().await;
}

#[actix_web::test]
async fn identical_public_registrations_share_a_client_and_spare_the_rate_limit() {
    let text = config_text().replace(
        "[upstream]",
        "[registration]\nrate_limit_per_minute = 2\nrate_limit_burst = 2\n\n[upstream]",
    );
    let broker = TestBroker::start_with(&text, |_| {}).await;
    let zed = real_clients()
        .into_iter()
        .find(|(n, _, _)| *n == "Zed")
        .unwrap()
        .1;
    let mut ids = Vec::new();
    for _ in 0..10 {
        let response = register(&broker, &zed).await;
        assert_eq!(response.status(), 201);
        ids.push(
            response.json::<Value>().await.unwrap()["client_id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "one client for ten identical registrations");
    assert_eq!(clients(&broker).await, 1);
    // The rate limit still has room: one used, one left.
    let claude = real_clients().remove(0).1;
    assert_eq!(register(&broker, &claude).await.status(), 201);
    let limited = register(&broker, &claude).await;
    assert_eq!(limited.status(), 429);
    let retry: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=30).contains(&retry), "{retry}");
    assert_eq!(
        limited.json::<Value>().await.unwrap()["error"],
        "temporarily_unavailable"
    );
    // Time moves on: the budget comes back.
    broker.clock.advance(Duration::from_secs(retry));
    assert_eq!(register(&broker, &claude).await.status(), 201);
    broker.stop().await;
}

#[actix_web::test]
async fn forwarded_for_is_believed_only_from_trusted_proxies() {
    let limit = "[registration]\nrate_limit_per_minute = 1\nrate_limit_burst = 1\n\n[upstream]";
    let claude = real_clients().remove(0).1;
    let send = |broker: &TestBroker, xff: &'static str| {
        http()
            .post(broker.at("/oauth/register"))
            .header("X-Forwarded-For", xff)
            .json(&claude)
            .send()
    };
    // Not trusted: every request counts against 127.0.0.1, whatever it claims.
    let untrusted =
        TestBroker::start_with(&config_text().replace("[upstream]", limit), |_| {}).await;
    assert_eq!(
        send(&untrusted, "198.51.100.1").await.unwrap().status(),
        201
    );
    assert_eq!(
        send(&untrusted, "198.51.100.2").await.unwrap().status(),
        429
    );
    untrusted.stop().await;
    // Trusted: each forwarded client has its own budget.
    let text = config_text()
        .replace(
            "workers = 1",
            "workers = 1\ntrusted_proxies = [\"127.0.0.1/32\"]",
        )
        .replace("[upstream]", limit);
    let trusted = TestBroker::start_with(&text, |_| {}).await;
    assert_eq!(send(&trusted, "198.51.100.1").await.unwrap().status(), 201);
    assert_eq!(send(&trusted, "198.51.100.2").await.unwrap().status(), 201);
    assert_eq!(send(&trusted, "198.51.100.1").await.unwrap().status(), 429);
    trusted.stop().await;
}

#[actix_web::test]
async fn the_client_cap_answers_503_with_retry_after() {
    let text = config_text().replace(
        "[upstream]",
        "[registration]\nmax_clients = 1\n\n[upstream]",
    );
    let broker = TestBroker::start_with(&text, |_| {}).await;
    let claude = real_clients().remove(0).1;
    assert_eq!(register(&broker, &claude).await.status(), 201);
    let full = register(&broker, &claude).await;
    assert_eq!(full.status(), 503);
    assert_eq!(full.headers()["retry-after"], "60");
    broker.stop().await;
}

#[actix_web::test]
async fn unused_registrations_are_removed_on_schedule() {
    let broker = TestBroker::start().await;
    let claude = real_clients().remove(0).1;
    let first: Value = register(&broker, &claude).await.json().await.unwrap();
    let second: Value = register(&broker, &claude).await.json().await.unwrap();
    let used = second["client_id"].as_str().unwrap();
    broker.clock.advance(Duration::from_secs(23 * 3600));
    broker
        .state
        .store
        .touch_client(used, broker.clock.unix())
        .await
        .unwrap();
    assert_eq!(broker.state.registration.sweep().await.unwrap().removed, 0);
    broker.clock.advance(Duration::from_secs(3600 + 1));
    assert_eq!(broker.state.registration.sweep().await.unwrap().removed, 1);
    let store = &broker.state.store;
    assert!(
        store
            .get_client(first["client_id"].as_str().unwrap())
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.get_client(used).await.unwrap().is_some());
    let metrics = http()
        .get(broker.at("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("token_broker_clients_removed_total 1"),
        "{metrics}"
    );
    broker.stop().await;
}

#[actix_web::test]
async fn a_remembered_public_client_that_vanished_is_registered_anew() {
    let broker = TestBroker::start().await;
    let body = serde_json::json!({
        "client_name": "vanishing", "redirect_uris": ["http://127.0.0.1:1/cb"],
        "token_endpoint_auth_method": "none"
    });
    let register = || async {
        let response = http()
            .post(broker.at("/oauth/register"))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json::<serde_json::Value>().await.unwrap())
    };
    let (status, first) = register().await;
    assert_eq!(status, 201, "{first}");
    let id = first["client_id"].as_str().unwrap().to_owned();
    // Removed behind the broker's back (a clean-up, a store that lost its data).
    assert!(broker.state.store.delete_client(&id).await.unwrap());
    let (status, second) = register().await;
    assert_eq!(status, 201, "{second}");
    assert_ne!(second["client_id"], first["client_id"]);
    // And the new one is what identical registrations get from now on.
    let (_, third) = register().await;
    assert_eq!(third["client_id"], second["client_id"]);
}

#[actix_web::test]
async fn application_type_is_honoured_and_inferred_when_omitted() {
    let broker = TestBroker::start().await;
    // Declared `web`: https only; a loopback URI is a native app's (OIDC Registration §2).
    let response = register(
        &broker,
        &json!({"redirect_uris": ["http://127.0.0.1:5555/callback"],
            "application_type": "web", "token_endpoint_auth_method": "none"}),
    )
    .await;
    assert_eq!(response.status(), 400);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["error"], "invalid_redirect_uri", "{answer}");
    assert!(
        answer["error_description"]
            .as_str()
            .is_some_and(|d| d.contains("registers as native")),
        "{answer}"
    );
    // Omitted: inferred from the URIs and echoed (RFC 7591 §3.2.1), never refused.
    for (uris, kind) in [
        (json!(["http://localhost:3000/callback"]), "native"),
        (
            json!([
                "cursor://anysphere.cursor-mcp/oauth/callback",
                "https://www.cursor.com/agents/mcp/oauth/callback"
            ]),
            "native",
        ),
        (json!(["https://claude.ai/api/mcp/auth_callback"]), "web"),
    ] {
        let response = register(
            &broker,
            &json!({"redirect_uris": uris, "token_endpoint_auth_method": "none"}),
        )
        .await;
        assert_eq!(response.status(), 201, "{uris}");
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["application_type"], kind, "{answer}");
    }
}
