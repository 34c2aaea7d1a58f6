//! Per-tool rules at forward-auth: `/auth/verify` reads the MCP transport's
//! `Mcp-Method` / `Mcp-Name` headers (as a proxy passes them on) and decides per tool —
//! public tools without a token, per-tool scopes with a step-up challenge, client and
//! API-key allow-lists — without reading any body.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use token_broker::tokens::api_keys::{generate_key, hash_key};

use crate::login_consent::register;
use crate::login_flow::{login, redeem};
use crate::support::{TestBroker, config_text, http, load};

/// A resource open to anonymous callers (`anonymous = "public-tools"`).
fn text(key: &str) -> String {
    text_with(key, "\nanonymous = \"public-tools\"")
}

/// `anonymous`: the resource's `anonymous` line, if any.
fn text_with(key: &str, anonymous: &str) -> String {
    format!(
        r#"{}{anonymous}
[[resources.tools]]
name = "notes_*"
scopes = ["notes:read"]

[[resources.tools]]
name = "notes_write"
scopes = ["notes:write"]

[[resources.tools]]
name = "health"
public = true

[[resources.tools]]
name = "admin_*"
scopes = ["notes:admin"]

[[resources.clients]]
client_id = "limited-client"
tools = ["notes_read"]

[[api_keys]]
name = "getter"
hash = "{}"
subject = "service:getter"
scopes = ["notes:read"]
tools = ["get_*"]
"#,
        config_text(),
        hash_key(key)
    )
}

/// Forward-auth for `/mcp` with the transport's headers.
async fn verify(
    broker: &TestBroker,
    token: Option<&str>,
    method: &str,
    name: Option<&str>,
) -> reqwest::Response {
    let mut request = http()
        .post(broker.at("/auth/verify"))
        .header("x-original-uri", "/mcp")
        .header("x-original-method", "POST")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", method);
    if let Some(name) = name {
        request = request.header("mcp-name", name);
    }
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

fn challenge(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

async fn alice_reader(broker: &TestBroker) -> String {
    let client = register(broker, "Tools").await;
    let code = login(broker, &client, &[]).await;
    let (_, body) = redeem(broker, &client, &code).await;
    body["access_token"].as_str().unwrap().to_owned()
}

#[actix_web::test]
async fn public_tools_and_the_handshake_need_no_token() {
    let key = generate_key();
    let broker = TestBroker::start_live(&text(&key), Default::default(), |_| {}).await;
    for (method, name) in [
        ("initialize", None),
        ("notifications/initialized", None),
        ("ping", None),
        ("tools/call", Some("health")),
    ] {
        let response = verify(&broker, None, method, name).await;
        assert_eq!(response.status(), 200, "{method} {name:?}");
        assert!(response.headers().get("x-auth-subject").is_none());
    }
    // Anything else still asks for a token, with the resource's challenge — listing
    // too, so an MCP client logs in to see what it may use.
    for (method, name) in [
        ("tools/list", None),
        ("tools/call", Some("notes_read")),
        ("tools/call", Some("unknown_tool")),
        ("resources/read", None),
    ] {
        let response = verify(&broker, None, method, name).await;
        assert_eq!(response.status(), 401, "{method} {name:?}");
        assert!(challenge(&response).contains("resource_metadata="));
    }
    // Without the transport's headers (an older client) there is nothing to go on.
    let plain = http()
        .post(broker.at("/auth/verify"))
        .header("x-original-uri", "/mcp")
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), 401);
    // Headers from a revision whose servers need not check them against the body could
    // name `health` over a body that calls anything: no token, no passage.
    for version in [None, Some("2025-11-25"), Some("yesterday")] {
        let mut request = http()
            .post(broker.at("/auth/verify"))
            .header("x-original-uri", "/mcp")
            .header("x-original-method", "POST")
            .header("mcp-method", "tools/call")
            .header("mcp-name", "health");
        if let Some(version) = version {
            request = request.header("mcp-protocol-version", version);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401, "version {version:?}");
    }
}

/// Forward-auth for a tokenless `method` request to `/mcp` (an event-stream GET or a
/// DELETE, as a client sends them, with `Mcp-Method` as a client might make up).
async fn verify_tokenless(broker: &TestBroker, method: &str) -> reqwest::Response {
    http()
        .get(broker.at("/auth/verify"))
        .header("x-original-uri", "/mcp")
        .header("x-original-method", method)
        .header("mcp-method", "ping")
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap()
}

#[actix_web::test]
async fn on_a_resource_open_to_anonymous_callers_a_tokenless_stream_gets_405() {
    let key = generate_key();
    let broker = TestBroker::start_live(&text(&key), Default::default(), |_| {}).await;
    for method in ["GET", "DELETE"] {
        let refused = verify_tokenless(&broker, method).await;
        assert_eq!(refused.status(), 405, "{method}");
        assert_eq!(refused.headers()["allow"], "POST");
        // No challenge: a 401 here would start a login beside the one tools/list starts.
        assert!(challenge(&refused).is_empty(), "{method}");
    }
    // Any other method (or none named) is not a stream: the resource's 401.
    let other = verify_tokenless(&broker, "PUT").await;
    assert_eq!(other.status(), 401);
    // With a token a stream is the caller's own.
    let token = alice_reader(&broker).await;
    let stream = http()
        .get(broker.at("/auth/verify"))
        .header("x-original-uri", "/mcp")
        .header("x-original-method", "GET")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
}

#[actix_web::test]
async fn by_default_every_tokenless_request_gets_401_even_with_public_tools() {
    let key = generate_key();
    let text = text_with(&key, "");
    let broker = TestBroker::start_live(&text, Default::default(), |_| {}).await;
    for (method, name) in [
        ("initialize", None),
        ("notifications/initialized", None),
        ("ping", None),
        ("tools/call", Some("health")),
        ("tools/list", None),
    ] {
        let refused = verify(&broker, None, method, name).await;
        assert_eq!(refused.status(), 401, "{method} {name:?}");
        let challenge = challenge(&refused);
        assert!(challenge.contains("resource_metadata="), "{challenge}");
        assert!(challenge.contains("scope=\"notes:read"), "{challenge}");
    }
    for method in ["GET", "DELETE"] {
        assert_eq!(verify_tokenless(&broker, method).await.status(), 401);
    }
    // A public tool still needs no scope of its own, nor a place on an allow-list.
    let token = alice_reader(&broker).await;
    let health = verify(&broker, Some(&token), "tools/call", Some("health")).await;
    assert_eq!(health.status(), 200);
    let limited = verify(&broker, Some(&key), "tools/call", Some("health")).await;
    assert_eq!(limited.status(), 200);
}

#[test]
fn anonymous_is_none_or_public_tools_and_public_tools_needs_a_public_tool() {
    let broken = format!(
        "{}anonymous = \"public-tools\"\n\n[[resources]]\nuri = \"http://127.0.0.1:9/other\"\nanonymous = \"everything\"\n",
        config_text()
    );
    let error = token_broker::config::load_str(&broken, &Default::default())
        .unwrap_err()
        .to_string();
    for key in ["resources[0].anonymous", "resources[1].anonymous"] {
        assert!(error.contains(key), "{key}: {error}");
    }
    assert!(error.contains("public = true"), "{error}");
    assert!(error.contains("`everything`"), "{error}");
    // Left out, it is none.
    let config = load(&text_with(&generate_key(), ""));
    assert!(!config.resources[0].tools.anonymous_open());
    assert!(
        load(&text(&generate_key())).resources[0]
            .tools
            .anonymous_open()
    );
}

#[actix_web::test]
async fn a_tool_needing_more_scope_gets_a_step_up_challenge() {
    let key = generate_key();
    let broker = TestBroker::start_live(&text(&key), Default::default(), |_| {}).await;
    let token = alice_reader(&broker).await;
    assert_eq!(
        verify(&broker, Some(&token), "tools/call", Some("notes_read"))
            .await
            .status(),
        200
    );
    assert_eq!(
        verify(&broker, Some(&token), "tools/list", None)
            .await
            .status(),
        200
    );
    let refused = verify(&broker, Some(&token), "tools/call", Some("notes_write")).await;
    assert_eq!(refused.status(), 403);
    let value = challenge(&refused);
    assert!(value.contains(r#"error="insufficient_scope""#), "{value}");
    // What the call needs (RFC 6750 §3.1): the resource's scope and the tool's.
    assert!(
        value.contains(r#"scope="notes:read notes:write""#),
        "{value}"
    );
    assert!(value.contains("missing scope: notes:write"), "{value}");
    // A tool call must name its tool.
    assert_eq!(
        verify(&broker, Some(&token), "tools/call", None)
            .await
            .status(),
        403
    );
    // An encoded name is decoded before the rules see it, so encoding is no way
    // around them; one that does not decode is refused.
    let encoded = format!("=?base64?{}?=", STANDARD.encode("notes_write"));
    let refused = verify(&broker, Some(&token), "tools/call", Some(&encoded)).await;
    assert_eq!(refused.status(), 403);
    assert!(challenge(&refused).contains("insufficient_scope"));
    let encoded_read = format!("=?base64?{}?=", STANDARD.encode("notes_read"));
    let read = verify(&broker, Some(&token), "tools/call", Some(&encoded_read)).await;
    assert_eq!(read.status(), 200);
    let garbled = verify(&broker, Some(&token), "tools/call", Some("=?base64?!!!?=")).await;
    assert_eq!(garbled.status(), 403);

    let metrics = http()
        .get(broker.at("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(
            r#"token_broker_tool_denials_total{reason="insufficient_scope",rule="notes_write"} 2"#
        ),
        "{metrics}"
    );
    // The rules' scopes are advertised, so clients can ask for them up front.
    let metadata: Value = http()
        .get(broker.at("/.well-known/oauth-protected-resource/mcp"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let advertised = metadata["scopes_supported"].as_array().unwrap();
    for scope in ["notes:read", "notes:write", "notes:admin"] {
        assert!(advertised.iter().any(|s| s == scope), "{metadata}");
    }
}

#[actix_web::test]
async fn allow_lists_limit_api_keys_and_clients() {
    let key = generate_key();
    let broker = TestBroker::start_live(&text(&key), Default::default(), |_| {}).await;
    assert_eq!(
        verify(&broker, Some(&key), "tools/call", Some("get_note"))
            .await
            .status(),
        200
    );
    let refused = verify(&broker, Some(&key), "tools/call", Some("notes_read")).await;
    assert_eq!(refused.status(), 403);
    assert!(challenge(&refused).contains(r#"error="access_denied""#));
    // Public tools stay public, and listing is not a call.
    assert_eq!(
        verify(&broker, Some(&key), "tools/call", Some("health"))
            .await
            .status(),
        200
    );
    assert_eq!(
        verify(&broker, Some(&key), "tools/list", None)
            .await
            .status(),
        200
    );
    let metrics = http()
        .get(broker.at("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(
            r#"token_broker_tool_denials_total{reason="access_denied",rule="notes_*"} 1"#
        ),
        "{metrics}"
    );
}

#[test]
fn bad_tool_rules_are_refused_at_start_with_their_keys() {
    let broken = format!(
        r#"{}
[[resources.tools]]
name = "bad name"

[[resources.tools]]
name = "health"
public = true
scopes = ["x"]

[[resources.tools]]
scopes = ["x"]

[[resources.clients]]
client_id = "c"
tools = []
"#,
        config_text()
    );
    let error = token_broker::config::load_str(&broken, &Default::default())
        .unwrap_err()
        .to_string();
    for key in [
        "resources[0].tools[0].name",
        "resources[0].tools[1].public",
        "resources[0].tools[2].name",
        "resources[0].clients[0].tools",
    ] {
        assert!(error.contains(key), "{key}: {error}");
    }
    // And a well-formed set loads.
    let config = load(&text(&generate_key()));
    assert_eq!(config.resources[0].tools.rules.len(), 4);
}

/// Forward-auth with exactly the headers given (besides the original URI).
async fn verify_with(
    broker: &TestBroker,
    token: &str,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut request = http()
        .post(broker.at("/auth/verify"))
        .header("x-original-uri", "/mcp")
        .bearer_auth(token);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

#[actix_web::test]
async fn mcp_headers_are_trusted_only_from_a_client_whose_server_must_check_them() {
    let key = generate_key();
    let broker = TestBroker::start_live(&text(&key), Default::default(), |_| {}).await;
    let reader = alice_reader(&broker).await;
    let call = |version: &'static str| {
        [
            ("x-original-method", "POST"),
            ("mcp-protocol-version", version),
            ("mcp-method", "tools/call"),
            ("mcp-name", "notes_read"),
        ]
    };
    // 2026-07-28 and later (a date compares as one): the header names the call.
    for version in ["2026-07-28", "2027-01-15"] {
        let response = verify_with(&broker, &reader, &call(version)).await;
        assert_eq!(response.status(), 200, "{version}");
    }
    // Older, or not a date: the call could be any, and needs what every tool needs.
    for version in ["2025-11-25", "2026-07-27", "latest", "2026-7-28"] {
        let response = verify_with(&broker, &reader, &call(version)).await;
        assert_eq!(response.status(), 403, "{version}");
        let value = challenge(&response);
        assert!(
            value.contains(r#"scope="notes:admin notes:read notes:write""#),
            "{value}"
        );
        assert!(value.contains("MCP-Protocol-Version"), "{value}");
    }
    // Without the original method the request may be a POST, so the same; a GET or a
    // DELETE carries no call and gets the resource's check alone.
    let no_method = verify_with(&broker, &reader, &[]).await;
    assert_eq!(no_method.status(), 403);
    assert!(challenge(&no_method).contains("carried no Mcp-Method"));
    for method in ["GET", "DELETE"] {
        let response = verify_with(&broker, &reader, &[("x-original-method", method)]).await;
        assert_eq!(response.status(), 200, "{method}");
    }
    // An API key limited to some tools may not send a call it does not name.
    let denied = verify_with(&broker, &key, &[("x-original-method", "POST")]).await;
    assert_eq!(denied.status(), 403);
    assert!(challenge(&denied).contains(r#"error="access_denied""#));
    // A tools/call that names no tool stays refused, whatever the version.
    for version in ["2026-07-28", "2025-11-25"] {
        let nameless = verify_with(
            &broker,
            &reader,
            &[
                ("x-original-method", "POST"),
                ("mcp-protocol-version", version),
                ("mcp-method", "tools/call"),
            ],
        )
        .await;
        assert_eq!(nameless.status(), 403, "{version}");
    }
    let metrics = http()
        .get(broker.at("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(
            r#"token_broker_tool_denials_total{reason="insufficient_scope",rule="(unseen)"} 6"#
        ),
        "{metrics}"
    );
}
