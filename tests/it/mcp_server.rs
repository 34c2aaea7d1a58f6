//! The demo's MCP server over real HTTP: legacy (`initialize`) and modern (2026-07-28,
//! per-request `_meta`) clients, the two tools, and the JSON-RPC error answers.

use std::net::TcpListener;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::{Condition, Next, from_fn};
use actix_web::{App, Error, HttpMessage, HttpServer};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{RequestBuilder, StatusCode};
use serde_json::{Value, json};
use token_broker::domain::scope::Scopes;
use token_broker::tokens::{CredentialKind, Principal};

use crate::support::http;

/// Stands in for the broker's protection middleware: every request is "alice".
async fn as_alice(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    req.extensions_mut().insert(Principal {
        subject: "alice".to_owned(),
        scopes: Scopes::parse("notes:read openid").unwrap(),
        client_id: Some("client-1".to_owned()),
        kind: CredentialKind::ApiKey,
        expires_at: None,
        grant_id: None,
        tools: None,
        identity: None,
    });
    next.call(req).await
}

/// Serves the MCP endpoint at `/mcp` on an ephemeral port, optionally behind
/// [`as_alice`]; returns its URL. The server ends with the test's runtime.
fn start(with_principal: bool) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = HttpServer::new(move || {
        App::new()
            .wrap(Condition::new(with_principal, from_fn(as_alice)))
            .configure(|cfg| token_broker::demo::mcp::configure(cfg, "/mcp"))
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    actix_web::rt::spawn(server);
    format!("http://{addr}/mcp")
}

/// A POST as MCP clients send it: JSON body, accepting JSON or an event stream.
fn post(url: &str, body: impl Into<reqwest::Body>) -> RequestBuilder {
    post_with(url, body, &[])
}

/// [`post`] with some headers replaced or added (reqwest's `header` would append a
/// second value instead).
fn post_with(
    url: &str,
    body: impl Into<reqwest::Body>,
    headers: &[(&str, &str)],
) -> RequestBuilder {
    let mut map = HeaderMap::new();
    let defaults = [
        ("content-type", "application/json"),
        ("accept", "application/json, text/event-stream"),
    ];
    for (name, value) in defaults.iter().chain(headers) {
        map.insert(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    http().post(url).headers(map).body(body)
}

async fn send(request: RequestBuilder) -> (StatusCode, Value) {
    let response = request.send().await.unwrap();
    let status = response.status();
    assert_eq!(response.headers()["content-type"], "application/json");
    assert!(response.headers().get("mcp-session-id").is_none());
    (status, response.json().await.unwrap())
}

async fn rpc(url: &str, method: &str, params: Value) -> (StatusCode, Value) {
    let body = json!({ "jsonrpc": "2.0", "id": 7, "method": method, "params": params });
    send(post_with(
        url,
        body.to_string(),
        &[("mcp-protocol-version", "2025-11-25")],
    ))
    .await
}

async fn call(url: &str, tool: &str, arguments: Value) -> Value {
    let (status, body) = rpc(
        url,
        "tools/call",
        json!({ "name": tool, "arguments": arguments }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["id"], 7);
    body["result"].clone()
}

/// A 2026-07-28 request: version in `_meta`, mirrored into the standard headers, then
/// `overrides` applied to those headers.
fn modern(
    url: &str,
    method: &str,
    mut params: Value,
    overrides: &[(&str, &str)],
) -> RequestBuilder {
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": { "name": "it", "version": "0" },
        "io.modelcontextprotocol/clientCapabilities": {},
    });
    let mut headers = vec![
        ("mcp-protocol-version", "2026-07-28"),
        ("mcp-method", method),
    ];
    if let Some(name) = params["name"].as_str() {
        headers.push(("mcp-name", name));
    }
    headers.extend(overrides);
    let body = json!({ "jsonrpc": "2.0", "id": "m", "method": method, "params": params });
    post_with(url, body.to_string(), &headers)
}

#[actix_web::test]
async fn initialize_echoes_a_supported_version_and_offers_the_latest_legacy_one_otherwise() {
    let url = start(false);
    for (asked, agreed) in [
        ("2025-03-26", "2025-03-26"),
        ("2025-06-18", "2025-06-18"),
        ("2025-11-25", "2025-11-25"),
        ("1999-01-01", "2025-11-25"),
        // No handshake exists in 2026-07-28, so initialize never agrees to it.
        ("2026-07-28", "2025-11-25"),
    ] {
        let params = json!({ "protocolVersion": asked, "capabilities": {}, "clientInfo": { "name": "it", "version": "0" } });
        let body =
            json!({ "jsonrpc": "2.0", "id": "init", "method": "initialize", "params": params });
        let (status, reply) = send(post(&url, body.to_string())).await;
        assert_eq!(status, 200);
        assert_eq!(reply["jsonrpc"], "2.0");
        assert_eq!(reply["id"], "init");
        let result = &reply["result"];
        assert_eq!(result["protocolVersion"], agreed, "asked for {asked}");
        assert_eq!(
            result["capabilities"],
            json!({ "tools": { "listChanged": false } })
        );
        assert_eq!(result["serverInfo"]["name"], "token-broker-demo");
        assert_eq!(result["serverInfo"]["version"], env!("CARGO_PKG_VERSION"));
        assert!(result["instructions"].as_str().unwrap().contains("whoami"));
    }
    let (_, pong) = rpc(&url, "ping", json!({})).await;
    assert_eq!(pong["result"], json!({}));
}

#[actix_web::test]
async fn notifications_are_accepted_with_202_and_no_body() {
    let url = start(false);
    for method in ["notifications/initialized", "notifications/cancelled"] {
        let body = json!({ "jsonrpc": "2.0", "method": method });
        let response = post(&url, body.to_string()).send().await.unwrap();
        assert_eq!(response.status(), 202, "{method}");
        assert!(response.bytes().await.unwrap().is_empty());
    }
}

#[actix_web::test]
async fn tools_list_describes_every_tool_with_schemas() {
    let url = start(false);
    let (status, reply) = rpc(&url, "tools/list", json!({})).await;
    assert_eq!(status, 200);
    let tools = reply["result"]["tools"].as_array().unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["whoami", "echo", "notes_read", "notes_write", "health"]
    );
    for tool in tools {
        assert!(
            tool["title"].is_string() && tool["description"].is_string(),
            "{tool}"
        );
        assert_eq!(tool["inputSchema"]["type"], "object", "{tool}");
    }
    assert_eq!(tools[1]["inputSchema"]["required"], json!(["message"]));
    assert_eq!(
        tools[1]["inputSchema"]["properties"]["message"]["type"],
        "string"
    );
    let output = &tools[0]["outputSchema"];
    assert_eq!(output["type"], "object");
    assert_eq!(output["properties"]["scopes"]["type"], "array");
    assert!(tools[1].get("outputSchema").is_none());
    assert_eq!(tools[3]["inputSchema"]["required"], json!(["text"]));
}

#[actix_web::test]
async fn notes_are_read_and_written() {
    let url = start(true);
    let written = call(&url, "notes_write", json!({"text": "buy milk"})).await;
    assert_eq!(written["isError"], false, "{written}");
    let read = call(&url, "notes_read", json!({})).await;
    let notes = read["structuredContent"]["notes"].as_array().unwrap();
    assert!(notes.iter().any(|n| n == "buy milk"), "{read}");
    for bad in [
        json!({}),
        json!({"text": ""}),
        json!({"text": 5}),
        json!({"text": "x".repeat(1001)}),
    ] {
        let refused = call(&url, "notes_write", bad.clone()).await;
        assert_eq!(refused["isError"], true, "{bad}");
    }
    assert_eq!(
        call(&url, "health", json!({})).await["content"][0]["text"],
        "ok"
    );
}

#[actix_web::test]
async fn whoami_reports_the_verified_caller() {
    let url = start(true);
    let result = call(&url, "whoami", json!({})).await;
    let expected = json!({
        "subject": "alice",
        "scope": "notes:read openid",
        "scopes": ["notes:read", "openid"],
        "client_id": "client-1",
        // No bearer token reached this server (the test put the caller in place).
        "received_token": { "issuer": null, "audience": null },
    });
    assert_eq!(result["isError"], false);
    assert_eq!(result["structuredContent"], expected);
    assert_eq!(result["content"][0]["type"], "text");
    let text: Value = serde_json::from_str(result["content"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(text, expected);
}

#[actix_web::test]
async fn whoami_without_a_principal_is_a_tool_error() {
    let url = start(false);
    let result = call(&url, "whoami", json!({})).await;
    assert_eq!(result["isError"], true);
    assert_eq!(result["content"][0]["text"], "no verified caller");
    assert!(result.get("structuredContent").is_none());
}

#[actix_web::test]
async fn echo_returns_its_message_and_reports_bad_arguments_as_tool_errors() {
    let url = start(false);
    let result = call(&url, "echo", json!({ "message": "héllo, MCP" })).await;
    assert_eq!(result["isError"], false);
    assert_eq!(
        result["content"],
        json!([{ "type": "text", "text": "héllo, MCP" }])
    );

    for arguments in [
        json!({}),
        json!({ "message": 42 }),
        json!(null),
        json!("message"),
    ] {
        let result = call(&url, "echo", arguments.clone()).await;
        assert_eq!(result["isError"], true, "{arguments}");
        let text = result["content"][0]["text"].as_str().unwrap();
        assert!(text.contains("message"), "{text}");
    }
}

#[actix_web::test]
async fn unknown_tools_and_methods_are_json_rpc_errors() {
    let url = start(false);
    let (status, reply) = rpc(
        &url,
        "tools/call",
        json!({ "name": "rm-rf", "arguments": {} }),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(reply["id"], 7);
    assert_eq!(reply["error"]["code"], -32602);
    assert!(
        reply["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unknown tool")
    );
    assert!(reply.get("result").is_none());

    let (_, reply) = rpc(&url, "tools/call", json!({ "arguments": {} })).await;
    assert_eq!(reply["error"]["code"], -32602);

    let (status, reply) = rpc(&url, "resources/list", json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(reply["error"]["code"], -32601);
}

#[actix_web::test]
async fn malformed_json_is_a_400_parse_error() {
    let url = start(false);
    let (status, reply) = send(post(&url, "{\"jsonrpc\": \"2.0\", \"id\": 1,")).await;
    assert_eq!(status, 400);
    assert_eq!(reply["error"]["code"], -32700);
    assert_eq!(reply["id"], Value::Null);
}

#[actix_web::test]
async fn batches_and_non_requests_are_invalid_requests() {
    let url = start(false);
    let ping = json!({ "jsonrpc": "2.0", "id": 1, "method": "ping" });
    for body in [
        json!([ping.clone(), ping.clone()]),
        json!([]),
        json!("ping"),
        json!({ "jsonrpc": "1.0", "id": 1, "method": "ping" }),
        json!({ "jsonrpc": "2.0", "id": 1 }),
        json!({ "jsonrpc": "2.0", "id": null, "method": "ping" }),
        json!({ "jsonrpc": "2.0", "id": 1, "method": "ping", "params": [1] }),
        json!({ "jsonrpc": "2.0", "id": 1, "result": {} }),
    ] {
        let (status, reply) = send(post(&url, body.to_string())).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(reply["error"]["code"], -32600, "{body}");
        assert_eq!(reply["id"], Value::Null, "{body}");
    }
}

#[actix_web::test]
async fn get_and_delete_are_405_with_allow_post() {
    let url = start(false);
    for request in [
        http().get(&url).header("accept", "text/event-stream"),
        http().delete(&url),
    ] {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 405);
        assert_eq!(response.headers()["allow"], "POST");
        assert_eq!(response.headers()["content-type"], "application/json");
    }
}

#[actix_web::test]
async fn wrong_content_type_or_accept_is_refused() {
    let url = start(false);
    let ping = json!({ "jsonrpc": "2.0", "id": 1, "method": "ping" }).to_string();
    let text = post_with(&url, ping.clone(), &[("content-type", "text/plain")]);
    assert_eq!(send(text).await.0, 415);
    let sse_only = post_with(&url, ping.clone(), &[("accept", "text/event-stream")]);
    assert_eq!(send(sse_only).await.0, 406);
    let charset = post_with(
        &url,
        ping,
        &[("content-type", "application/json; charset=utf-8")],
    );
    assert_eq!(send(charset).await.0, 200);
}

#[actix_web::test]
async fn modern_requests_are_served_without_a_handshake() {
    let url = start(true);
    let (status, reply) = send(modern(&url, "server/discover", json!({}), &[])).await;
    assert_eq!(status, 200);
    let result = &reply["result"];
    assert_eq!(result["supportedVersions"], json!(["2026-07-28"]));
    assert_eq!(result["resultType"], "complete");
    let server_info = &result["_meta"]["io.modelcontextprotocol/serverInfo"];
    assert_eq!(server_info["name"], "token-broker-demo");

    let (_, reply) = send(modern(&url, "tools/list", json!({}), &[])).await;
    assert_eq!(reply["result"]["tools"][0]["name"], "whoami");
    assert_eq!(reply["result"]["cacheScope"], "public");
    assert!(reply["result"]["ttlMs"].is_u64());

    let whoami = json!({ "name": "whoami", "arguments": {} });
    let (status, reply) = send(modern(&url, "tools/call", whoami, &[])).await;
    assert_eq!(status, 200);
    assert_eq!(reply["id"], "m");
    assert_eq!(reply["result"]["structuredContent"]["subject"], "alice");
    assert_eq!(reply["result"]["resultType"], "complete");

    // Names that are not header-safe travel base64-encoded in Mcp-Name.
    let echo = json!({ "name": "echo", "arguments": { "message": "x" } });
    let encoded = modern(
        &url,
        "tools/call",
        echo,
        &[("mcp-name", "=?base64?ZWNobw==?=")],
    );
    let (status, reply) = send(encoded).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["result"]["content"][0]["text"], "x");
}

#[actix_web::test]
async fn modern_requests_must_agree_with_their_headers_and_name_a_known_version() {
    let url = start(false);
    let echo = json!({ "name": "echo", "arguments": { "message": "x" } });
    let list = json!({});
    let refusals = [
        (
            modern(&url, "tools/call", echo.clone(), &[("mcp-name", "whoami")]),
            400,
            -32020,
        ),
        (
            modern(&url, "tools/call", echo, &[("mcp-name", "=?base64?!!?=")]),
            400,
            -32020,
        ),
        (
            modern(
                &url,
                "tools/list",
                list.clone(),
                &[("mcp-method", "tools/call")],
            ),
            400,
            -32020,
        ),
        (
            modern(
                &url,
                "tools/list",
                list.clone(),
                &[("mcp-protocol-version", "2025-11-25")],
            ),
            400,
            -32020,
        ),
        // The modern era has no handshake: initialize is just an unknown method, and
        // 404 lets the client tell "no such method" from "no such endpoint".
        (
            modern(
                &url,
                "initialize",
                json!({ "protocolVersion": "2026-07-28" }),
                &[],
            ),
            404,
            -32601,
        ),
        (modern(&url, "resources/list", list, &[]), 404, -32601),
    ];
    for (request, status, code) in refusals {
        let (got, reply) = send(request).await;
        assert_eq!(got.as_u16(), status, "{reply}");
        assert_eq!(reply["error"]["code"], code, "{reply}");
        assert_eq!(reply["id"], "m");
    }

    let list = json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/list" }).to_string();
    let unknown = post_with(
        &url,
        list.clone(),
        &[("mcp-protocol-version", "1999-01-01")],
    );
    let (status, reply) = send(unknown).await;
    assert_eq!(status, 400);
    assert_eq!(reply["error"]["code"], -32022);
    assert_eq!(reply["error"]["data"]["requested"], "1999-01-01");
    let supported = reply["error"]["data"]["supported"].as_array().unwrap();
    assert!(supported.contains(&json!("2026-07-28")) && supported.contains(&json!("2025-11-25")));

    // The modern header without the `_meta` it mirrors is a malformed modern request.
    let bare = post_with(&url, list, &[("mcp-protocol-version", "2026-07-28")]);
    let (status, reply) = send(bare).await;
    assert_eq!(status, 400);
    assert_eq!(reply["error"]["code"], -32602);
}
