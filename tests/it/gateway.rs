//! Gateway mode: the broker fronts an MCP server (`[[gateway]]`), reads each JSON-RPC
//! body to enforce the tool rules per message, filters `tools/list` (JSON and event
//! streams) down to what the caller may call, streams answers through, and hands the
//! MCP server the downstream token — never the client's.

mod limits;
pub mod mcp_upstream;
mod sessions;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use token_broker::tokens::api_keys::{generate_key, hash_key};

use self::mcp_upstream::{Recorder, listener, progress, start_upstream};
use crate::exchange::{NOTES, alice, claims};
use crate::support::{TestBroker, config_text, http};

/// `anonymous`: the resource's `anonymous` line, if any.
fn text(upstream: &str, key: &str, dead: u16, anonymous: &str) -> String {
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

[[api_keys]]
name = "getter"
hash = "{}"
subject = "service:getter"
scopes = ["notes:read"]
tools = ["get_*"]

[[gateway]]
path = "/mcp"
upstream = "{upstream}/json"

[[gateway]]
path = "/mcp/sse"
upstream = "{upstream}/sse"

[[gateway]]
path = "/mcp/slow"
upstream = "{upstream}/slow"

[[gateway]]
path = "/mcp/down"
upstream = "http://127.0.0.1:{dead}/mcp"
timeout = "5s"
"#,
        config_text(),
        hash_key(key)
    )
}

struct Rig {
    broker: TestBroker,
    upstream: Arc<Recorder>,
    key: String,
}

/// A resource open to anonymous callers (`anonymous = "public-tools"`).
async fn rig() -> Rig {
    rig_with("\nanonymous = \"public-tools\"").await
}

async fn rig_with(anonymous: &str) -> Rig {
    let (upstream, url) = start_upstream();
    let dead = listener().local_addr().unwrap().port();
    let key = generate_key();
    let text = text(&url, &key, dead, anonymous);
    let broker = TestBroker::start_live(&text, Default::default(), |_| {}).await;
    Rig {
        broker,
        upstream,
        key,
    }
}

async fn rpc(
    broker: &TestBroker,
    path: &str,
    token: Option<&str>,
    body: &Value,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut request = http()
        .post(broker.at(path))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(body.to_string());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

fn call(id: u64, tool: &str) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "method": "tools/call", "params": { "name": tool, "arguments": {} } })
}

fn list(id: u64) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "method": "tools/list" })
}

fn names(answer: &Value) -> Vec<&str> {
    answer["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect()
}

/// The `data` of each event in an event-stream body.
fn data_of(body: &str) -> Vec<Value> {
    body.split("\n\n")
        .filter_map(|event| {
            let data = event.lines().find_map(|l| l.strip_prefix("data: "))?;
            Some(serde_json::from_str(data).unwrap())
        })
        .collect()
}

fn challenge(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

fn never_saw(upstream: &Recorder, secret: &str) {
    for seen in upstream.seen() {
        for (name, value) in &seen.headers {
            assert!(!value.contains(secret), "{name} carried the client's token");
        }
    }
}

#[actix_web::test]
async fn a_reader_sees_only_the_tools_it_may_call_in_json_and_in_event_streams() {
    let rig = rig().await;
    let token = alice(&rig.broker).await;
    let plain = rpc(&rig.broker, "/mcp", Some(&token), &list(1), &[]).await;
    assert_eq!(plain.status(), 200);
    let body: Value = plain.json().await.unwrap();
    assert_eq!(names(&body), ["notes_read", "get_note", "health"]);

    let streamed = rpc(&rig.broker, "/mcp/sse", Some(&token), &list(2), &[]).await;
    assert_eq!(streamed.status(), 200);
    assert_eq!(streamed.headers()["content-type"], "text/event-stream");
    let events = data_of(&streamed.text().await.unwrap());
    assert_eq!(events[0]["method"], "notifications/progress");
    assert_eq!(names(&events[1]), ["notes_read", "get_note", "health"]);

    // A batch: the list filtered, the call answered, both in one stream.
    let batch = json!([list(3), call(4, "get_note")]);
    let streamed = rpc(&rig.broker, "/mcp/sse", Some(&token), &batch, &[]).await;
    let events = data_of(&streamed.text().await.unwrap());
    assert_eq!(names(&events[1]), ["notes_read", "get_note", "health"]);
    assert_eq!(events[2]["result"]["content"][0]["text"], "called get_note");

    // The MCP server learnt who called, never with the client's token.
    let seen = rig.upstream.last();
    assert_eq!(seen.header("x-auth-subject"), Some("alice"));
    assert_eq!(seen.header("x-auth-scopes"), Some("notes:read"));
    assert!(seen.header("authorization").is_none());
    never_saw(&rig.upstream, &token);
}

#[actix_web::test]
async fn a_tool_needing_more_scope_is_refused_with_a_step_up_challenge() {
    let rig = rig().await;
    let token = alice(&rig.broker).await;
    let ok = rpc(
        &rig.broker,
        "/mcp",
        Some(&token),
        &call(1, "notes_read"),
        &[],
    )
    .await;
    assert_eq!(ok.status(), 200);
    let before = rig.upstream.seen().len();
    let refused = rpc(
        &rig.broker,
        "/mcp",
        Some(&token),
        &call(2, "notes_write"),
        &[],
    )
    .await;
    assert_eq!(refused.status(), 403);
    let value = challenge(&refused);
    assert!(value.contains(r#"error="insufficient_scope""#), "{value}");
    assert!(
        value.contains(r#"scope="notes:read notes:write""#),
        "{value}"
    );
    // One forbidden call refuses the whole batch.
    let batch = json!([call(3, "notes_read"), call(4, "notes_write")]);
    let refused = rpc(&rig.broker, "/mcp", Some(&token), &batch, &[]).await;
    assert_eq!(refused.status(), 403);
    assert!(challenge(&refused).contains("insufficient_scope"));
    assert_eq!(rig.upstream.seen().len(), before, "nothing refused went on");
}

#[actix_web::test]
async fn public_tools_need_no_token_and_others_ask_for_one() {
    let rig = rig().await;
    let health = rpc(
        &rig.broker,
        "/mcp",
        None,
        &call(1, "health"),
        // Made up by the client: must not reach the MCP server.
        &[("x-auth-subject", "mallory"), ("cookie", "a=b")],
    )
    .await;
    assert_eq!(health.status(), 200);
    let body: Value = health.json().await.unwrap();
    assert_eq!(body["result"]["content"][0]["text"], "called health");
    let seen = rig.upstream.last();
    assert!(seen.header("x-auth-subject").is_none());
    assert!(seen.header("cookie").is_none());
    assert!(seen.header("authorization").is_none());
    // The transport's headers must name the call the body makes: the MCP server
    // might act on them.
    let disguised = rpc(
        &rig.broker,
        "/mcp",
        None,
        &call(1, "health"),
        &[("mcp-method", "tools/call"), ("mcp-name", "notes_write")],
    )
    .await;
    assert_eq!(disguised.status(), 400);
    let body: Value = disguised.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32020);
    // The handshake too; listing and other tools need a token.
    let init = json!({ "jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {} });
    assert_eq!(
        rpc(&rig.broker, "/mcp", None, &init, &[]).await.status(),
        200
    );
    for body in [
        call(2, "notes_read"),
        list(3),
        json!([call(4, "health"), call(5, "get_note")]),
    ] {
        let refused = rpc(&rig.broker, "/mcp", None, &body, &[]).await;
        assert_eq!(refused.status(), 401, "{body}");
        assert!(challenge(&refused).contains("resource_metadata="));
    }
    // A stream (or a session's end) belongs to whoever opened the session, which only
    // a token tells: never anonymous, and 405 without a challenge, so that a client
    // does not start a second login beside the one its tools/list starts.
    let before = rig.upstream.seen().len();
    for refused in [
        http().get(rig.broker.at("/mcp")).send().await.unwrap(),
        http().delete(rig.broker.at("/mcp")).send().await.unwrap(),
    ] {
        assert_eq!(refused.status(), 405);
        assert_eq!(refused.headers()["allow"], "POST");
        assert!(refused.headers().get("www-authenticate").is_none());
    }
    assert_eq!(rig.upstream.seen().len(), before);
}

/// By default (`anonymous` left at `none`) a public tool does not open the resource:
/// every request without a token, `initialize` first, gets the 401 that starts the
/// client's one login, and nothing reaches the MCP server.
#[actix_web::test]
async fn without_the_opt_in_every_tokenless_request_asks_for_a_token() {
    let rig = rig_with("").await;
    let init = json!({ "jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {} });
    let ping = json!({ "jsonrpc": "2.0", "id": 1, "method": "ping" });
    let note = json!({ "jsonrpc": "2.0", "method": "notifications/initialized" });
    for body in [init, ping, note, call(2, "health"), list(3)] {
        let refused = rpc(&rig.broker, "/mcp", None, &body, &[]).await;
        assert_eq!(refused.status(), 401, "{body}");
        let challenge = challenge(&refused);
        assert!(challenge.contains("resource_metadata="), "{challenge}");
        assert!(challenge.contains("scope=\"notes:read"), "{challenge}");
    }
    for refused in [
        http().get(rig.broker.at("/mcp")).send().await.unwrap(),
        http().delete(rig.broker.at("/mcp")).send().await.unwrap(),
    ] {
        assert_eq!(refused.status(), 401);
    }
    assert!(rig.upstream.seen().is_empty());
    // With a token the public tool needs nothing beyond the resource's own scope.
    let token = alice(&rig.broker).await;
    let health = rpc(&rig.broker, "/mcp", Some(&token), &call(4, "health"), &[]).await;
    assert_eq!(health.status(), 200);
}

#[actix_web::test]
async fn an_api_key_limited_to_get_tools_is_refused_the_others() {
    let rig = rig().await;
    let ok = rpc(
        &rig.broker,
        "/mcp",
        Some(&rig.key),
        &call(1, "get_note"),
        &[],
    )
    .await;
    assert_eq!(ok.status(), 200);
    let refused = rpc(
        &rig.broker,
        "/mcp",
        Some(&rig.key),
        &call(2, "notes_read"),
        &[],
    )
    .await;
    assert_eq!(refused.status(), 403);
    assert!(challenge(&refused).contains(r#"error="access_denied""#));
    let listed: Value = rpc(&rig.broker, "/mcp", Some(&rig.key), &list(3), &[])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(names(&listed), ["get_note", "health"]);
    assert_eq!(
        rig.upstream.last().header("x-auth-subject"),
        Some("service:getter")
    );
    never_saw(&rig.upstream, &rig.key);
}

#[actix_web::test]
async fn bad_bodies_get_json_rpc_errors_and_large_ones_413() {
    let rig = rig().await;
    let send = |body: Vec<u8>| {
        http()
            .post(rig.broker.at("/mcp"))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let malformed = send(b"{\"jsonrpc\": \"2.0\", ".to_vec()).await.unwrap();
    assert_eq!(malformed.status(), 400);
    let body: Value = malformed.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32700);
    assert_eq!(body["jsonrpc"], "2.0");
    let not_a_request = send(b"[]".to_vec()).await.unwrap();
    assert_eq!(not_a_request.status(), 400);
    assert_eq!(
        not_a_request.json::<Value>().await.unwrap()["error"]["code"],
        -32600
    );
    // Declared too large, and too large without a declared length.
    let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(70 * 1024));
    assert_eq!(send(big.clone().into_bytes()).await.unwrap().status(), 413);
    let chunks = futures_util::stream::iter(
        big.into_bytes()
            .chunks(8 * 1024)
            .map(|c| Ok::<_, std::io::Error>(c.to_vec()))
            .collect::<Vec<_>>(),
    );
    let chunked = http()
        .post(rig.broker.at("/mcp"))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(chunked.status(), 413);
    assert_eq!(
        chunked.json::<Value>().await.unwrap()["error"]["code"],
        -32600
    );
    assert!(rig.upstream.seen().is_empty());
}

#[actix_web::test]
async fn sessions_pass_both_ways_and_streams_get_and_delete() {
    let rig = rig().await;
    let token = alice(&rig.broker).await;
    let init = json!({ "jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {} });
    let started = rpc(&rig.broker, "/mcp", Some(&token), &init, &[]).await;
    // The server's id, bound to the caller (see gateway::sessions).
    let session = started.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(session.ends_with(".sess-42"), "{session}");
    let headers = [
        ("mcp-session-id", session.as_str()),
        ("mcp-protocol-version", "2025-11-25"),
    ];
    let initialized = json!({ "jsonrpc": "2.0", "method": "notifications/initialized" });
    let accepted = rpc(&rig.broker, "/mcp", Some(&token), &initialized, &headers).await;
    assert_eq!(accepted.status(), 202);
    let seen = rig.upstream.last();
    assert_eq!(seen.header("mcp-session-id"), Some("sess-42"));
    assert_eq!(seen.header("mcp-protocol-version"), Some("2025-11-25"));

    let stream = http()
        .get(rig.broker.at("/mcp"))
        .bearer_auth(&token)
        .header("mcp-session-id", &session)
        .header("last-event-id", "ev-1")
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    // A replayed tool list is filtered like any other.
    let events = data_of(&stream.text().await.unwrap());
    assert_eq!(names(&events[0]), ["notes_read", "get_note", "health"]);
    let seen = rig.upstream.last();
    assert_eq!((seen.method.as_str(), seen.path.as_str()), ("GET", "/json"));
    assert_eq!(seen.header("last-event-id"), Some("ev-1"));

    let ended = http()
        .delete(rig.broker.at("/mcp"))
        .bearer_auth(&token)
        .header("mcp-session-id", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(ended.status(), 204);
    assert_eq!(rig.upstream.last().method, "DELETE");
    never_saw(&rig.upstream, &token);
}

#[actix_web::test]
async fn event_streams_go_through_as_they_come() {
    let rig = rig().await;
    let token = alice(&rig.broker).await;
    let mut response = rpc(&rig.broker, "/mcp/slow", Some(&token), &list(1), &[]).await;
    assert_eq!(response.status(), 200);
    let mut received = String::new();
    // The first event arrives while the MCP server still holds back the rest.
    while !received.contains("\n\n") {
        let chunk = tokio::time::timeout(Duration::from_secs(10), response.chunk())
            .await
            .expect("the first event before the MCP server finished")
            .unwrap()
            .unwrap();
        received.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    assert_eq!(received, progress());
    rig.upstream.release.notify_one();
    while let Some(chunk) = response.chunk().await.unwrap() {
        received.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    let events = data_of(&received);
    assert_eq!(names(&events[1]), ["notes_read", "get_note", "health"]);
}

#[actix_web::test]
async fn an_unreachable_mcp_server_is_a_502_with_a_json_rpc_error() {
    let rig = rig().await;
    let token = alice(&rig.broker).await;
    let down = rpc(
        &rig.broker,
        "/mcp/down",
        Some(&token),
        &call(7, "notes_read"),
        &[],
    )
    .await;
    assert_eq!(down.status(), 502);
    let body: Value = down.json().await.unwrap();
    assert_eq!(body["id"], 7);
    assert_eq!(body["error"]["code"], -32000);
}

#[actix_web::test]
async fn with_an_exchange_audience_the_mcp_server_gets_the_downstream_token() {
    let (upstream, url) = start_upstream();
    let text = crate::exchange::text().replacen(
        "scopes_supported = [\"notes:read\", \"notes:write\"]\n",
        &format!("scopes_supported = [\"notes:read\", \"notes:write\"]\nexchange_audience = \"{NOTES}\"\n"),
        1,
    );
    let text = format!("{text}\n[[gateway]]\npath = \"/mcp\"\nupstream = \"{url}/json\"\n");
    let broker = TestBroker::start_live(&text, Default::default(), |_| {}).await;
    let token = alice(&broker).await;
    let ok = rpc(&broker, "/mcp", Some(&token), &call(1, "notes_read"), &[]).await;
    assert_eq!(ok.status(), 200);
    let seen = upstream.last();
    let downstream = seen
        .header("authorization")
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap();
    assert_ne!(downstream, token);
    let c = claims(downstream);
    assert_eq!(
        (c["sub"].as_str(), c["aud"].as_str()),
        (Some("alice"), Some(NOTES))
    );
    never_saw(&upstream, &token);
    // Without an exchange no request goes on, and never with the client's token.
    http()
        .post(format!("{}/_dev/exchange", broker.idp.url))
        .json(&json!({"refuse": true}))
        .send()
        .await
        .unwrap();
    broker
        .state
        .exchanger
        .invalidate(&token_broker::domain::invalidation::Invalidation::All(true));
    let before = upstream.seen().len();
    let refused = rpc(&broker, "/mcp", Some(&token), &call(2, "notes_read"), &[]).await;
    assert_eq!(refused.status(), 503);
    assert!(refused.headers().get("retry-after").is_some());
    assert_eq!(upstream.seen().len(), before);
}

#[test]
fn gateway_paths_must_belong_to_a_resource() {
    let broken = format!(
        "{}\n[[gateway]]\npath = \"/other\"\nupstream = \"http://127.0.0.1:1/mcp\"\n\n[[gateway]]\nupstream = \"ftp://x\"\n",
        config_text()
    );
    let error = token_broker::config::load_str(&broken, &Default::default())
        .unwrap_err()
        .to_string();
    for key in ["gateway[0].path", "gateway[1].path", "gateway[1].upstream"] {
        assert!(error.contains(key), "{key}: {error}");
    }
}
