//! The forward-auth bypasses of the security review (issue #24, findings 1–4), each sent
//! through a real nginx running the README's snippet (and docker/nginx.conf) in front of
//! two resources: `/mcp` (notes:read, a public `health` tool, open to anonymous callers) and `/mcp-admin`
//! (notes:write). Every attack must be refused without reaching the MCP server, and
//! the MCP server must never see an identity header the client wrote.

use std::io::{Read, Write};

use serde_json::json;

use crate::nginx::{Example, Stack, all};
use crate::support::{config_text, http};

const MCP: &str = "http://127.0.0.1:9/mcp";
const ADMIN: &str = "http://127.0.0.1:9/mcp-admin";

/// `/mcp` with a public tool (and `anonymous = "public-tools"`), and `/mcp-admin`
/// needing `notes:write`.
fn two_resources() -> String {
    format!(
        r#"{}anonymous = "public-tools"

[[resources.tools]]
name = "health"
public = true

[[resources]]
uri = "{ADMIN}"
name = "Admin MCP server"
required_scopes = ["notes:write"]
"#,
        config_text()
    )
}

/// A client-credentials token from the dev IdP for `resource`.
async fn token(stack: &Stack, resource: &str, scope: &str) -> String {
    stack.broker.idp.service_token(resource, scope).await
}

/// A `tools/call` of `tool` as a 2026-07-28 client sends it, to `path` through nginx,
/// with extra headers the client chose.
async fn call(
    stack: &Stack,
    path: &str,
    token: Option<&str>,
    tool: &str,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let body = json!({
        "jsonrpc": "2.0", "id": 3, "method": "tools/call",
        "params": {
            "name": tool, "arguments": {},
            "_meta": { "io.modelcontextprotocol/protocolVersion": "2026-07-28" },
        },
    });
    let mut request = http()
        .post(stack.nginx.at(path))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", tool)
        .body(body.to_string());
    for (name, value) in extra {
        request = request.header(*name, *value);
    }
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

/// The status nginx answers a request whose target is sent byte for byte as written
/// (an HTTP client library would resolve `..` and `%2e%2e` before sending).
async fn raw_status(stack: &Stack, method: &str, target: &str, headers: &[(&str, &str)]) -> u16 {
    let addr = stack.nginx.at("").trim_start_matches("http://").to_owned();
    let mut request =
        format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("Content-Length: 0\r\n\r\n");
    actix_web::rt::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(&addr).unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        let status = answer.split(' ').nth(1).unwrap_or_default();
        status
            .parse()
            .unwrap_or_else(|_| panic!("no status in {answer:?}"))
    })
    .await
    .unwrap()
}

async fn client_headers_do_not_choose_the_resource(example: Example) {
    let stack = Stack::start_with(example, &two_resources()).await;
    let reader = token(&stack, MCP, "notes:read").await;
    // The token works where it belongs, so the refusals below are the attack's.
    let before = stack.reached_mcp();
    let response = call(&stack, "/mcp", Some(&reader), "notes_read", &[]).await;
    assert_eq!(response.status(), 200, "{}", stack.nginx.error_log());
    assert_eq!(stack.reached_mcp(), before + 1);

    let before = stack.reached_mcp();
    for header in ["X-Forwarded-Uri", "X-Original-URI", "X-Forwarded-Path"] {
        let response = call(
            &stack,
            "/mcp-admin",
            Some(&reader),
            "notes_read",
            &[(header, "/mcp")],
        )
        .await;
        assert!(
            [401, 403].contains(&response.status().as_u16()),
            "{header}: /mcp-admin with a /mcp token answered {}",
            response.status()
        );
        // No token at all, through /mcp's public tool.
        let response = call(&stack, "/mcp-admin", None, "health", &[(header, "/mcp")]).await;
        assert_eq!(response.status(), 401, "{header}: anonymous public tool");
    }
    assert_eq!(
        stack.reached_mcp(),
        before,
        "an attack reached the MCP server"
    );
    stack.stop().await;
}

#[actix_web::test]
async fn a_client_sent_original_uri_header_never_picks_the_resource_judged() {
    client_headers_do_not_choose_the_resource(Example::Readme).await;
}

#[actix_web::test]
async fn the_docker_example_lets_no_client_header_pick_the_resource() {
    client_headers_do_not_choose_the_resource(Example::Docker).await;
}

#[actix_web::test]
async fn paths_that_nginx_routes_elsewhere_are_refused() {
    let stack = Stack::start_with(Example::Readme, &two_resources()).await;
    let reader = token(&stack, MCP, "notes:read").await;
    let bearer = format!("Bearer {reader}");
    let headers = [("Authorization", bearer.as_str())];
    // The raw client reaches the MCP server with a plain path (which answers the empty
    // body as it likes), so what follows is refused for its path alone.
    let before = stack.reached_mcp();
    raw_status(&stack, "POST", "/mcp", &headers).await;
    assert_eq!(stack.reached_mcp(), before + 1);

    let before = stack.reached_mcp();
    for target in [
        "/mcp/../mcp-admin",
        "/mcp/..%2Fmcp-admin",
        "/mcp/..%2fmcp-admin",
        "/mcp/%2e%2e/mcp-admin",
        "/mcp/%2E%2E/mcp-admin",
        "/mcp/./../mcp-admin",
        "/mcp//../mcp-admin",
        "//mcp-admin",
        "/mcp%2f..%2fmcp-admin",
    ] {
        let status = raw_status(&stack, "POST", target, &headers).await;
        assert!(
            !(200..300).contains(&status),
            "{target} answered {status}: {}",
            stack.nginx.error_log()
        );
    }
    assert_eq!(
        stack.reached_mcp(),
        before,
        "a path trick reached the MCP server"
    );
    stack.stop().await;
}

#[actix_web::test]
async fn only_posts_pass_anonymously_never_a_get_or_delete_of_a_session() {
    let stack = Stack::start_with(Example::ReadmeAnonymous, &two_resources()).await;
    let session = [
        ("Mcp-Method", "ping"),
        ("Mcp-Session-Id", "someone-elses-session"),
        ("Accept", "text/event-stream"),
    ];
    let before = stack.reached_mcp();
    for method in ["GET", "DELETE"] {
        let status = raw_status(&stack, method, "/mcp", &session).await;
        // 405 (no stream for anonymous callers, and no challenge that would start a
        // second login), from the README's lines for anonymous = "public-tools":
        // nginx's auth_request would turn the broker's own 405 into 500.
        assert_eq!(status, 405, "anonymous {method} with Mcp-Method: ping");
    }
    assert_eq!(
        stack.reached_mcp(),
        before,
        "an anonymous stream reached the MCP server"
    );
    // The handshake itself still passes: the same headers on a POST from a client
    // whose server checks them against the body.
    let mut post = session.to_vec();
    post.push(("MCP-Protocol-Version", "2026-07-28"));
    raw_status(&stack, "POST", "/mcp", &post).await;
    assert_eq!(stack.reached_mcp(), before + 1, "an anonymous POST ping");
    // A stream with a token is the caller's own: past nginx's 405 lines to the broker.
    let bearer = format!("Bearer {}", token(&stack, MCP, "notes:read").await);
    let with_token = [
        ("Authorization", bearer.as_str()),
        ("Accept", "text/event-stream"),
    ];
    raw_status(&stack, "GET", "/mcp", &with_token).await;
    assert_eq!(stack.reached_mcp(), before + 2, "a GET with a token");
    stack.stop().await;
}

async fn forged_identity_headers_never_arrive(example: Example) {
    let stack = Stack::start_with(example, &two_resources()).await;
    let forged = [
        ("X-Auth-Subject", "mallory"),
        ("X-Auth-Scopes", "notes:write"),
        ("X-Auth-Client-Id", "reporting-bot"),
        ("X-Auth-Access-Token", "forged-downstream-token"),
    ];
    let reader = token(&stack, MCP, "notes:read").await;
    let response = call(&stack, "/mcp", Some(&reader), "notes_read", &forged).await;
    assert_eq!(response.status(), 200, "{}", stack.nginx.error_log());
    assert_eq!(all(&response, "x-seen-auth-subject"), ["demo-service"]);
    assert_eq!(all(&response, "x-seen-auth-scopes"), ["notes:read"]);
    assert_eq!(all(&response, "x-seen-auth-client-id"), ["demo-service"]);
    assert!(all(&response, "x-seen-auth-access-token").is_empty());
    // Anonymous, through the public tool: the broker names nobody, and nobody arrives.
    let response = call(&stack, "/mcp", None, "health", &forged).await;
    assert_eq!(response.status(), 200, "{}", stack.nginx.error_log());
    for name in [
        "x-seen-auth-subject",
        "x-seen-auth-scopes",
        "x-seen-auth-client-id",
        "x-seen-auth-access-token",
    ] {
        assert!(
            all(&response, name).is_empty(),
            "{name} arrived: {:?}",
            all(&response, name)
        );
    }
    stack.stop().await;
}

#[actix_web::test]
async fn the_readme_snippet_replaces_every_identity_header_a_client_forges() {
    forged_identity_headers_never_arrive(Example::Readme).await;
}

#[actix_web::test]
async fn the_docker_example_replaces_every_identity_header_a_client_forges() {
    forged_identity_headers_never_arrive(Example::Docker).await;
}
