//! Forward-auth cannot read the body, so through a real nginx (the README snippet) a
//! POST whose `Mcp-Method` is missing, or whose `MCP-Protocol-Version` predates the
//! servers' duty to check the headers against the body (2026-07-28), must satisfy what
//! every tool needs: leaving the header out, or claiming an older revision, is no way
//! past a tool rule. Challenges name every scope the operation needs in one go.

use serde_json::{Value, json};

use crate::nginx::{Example, Stack, all};
use crate::support::{client_credentials, config_text, http};

const RESOURCE: &str = "http://127.0.0.1:9/mcp";
const METADATA: &str = "http://127.0.0.1:9/.well-known/oauth-protected-resource/mcp";

/// `notes_write` needs `notes:write` on top of `notes:read`; the dev IdP's own client
/// `token-broker` may use `notes_read` and `health` only.
fn rules() -> String {
    format!(
        r#"{}
[[resources.tools]]
name = "notes_write"
scopes = ["notes:write"]

[[resources.tools]]
name = "health"
public = true

[[resources.clients]]
client_id = "token-broker"
tools = ["notes_read", "health"]
"#,
        config_text()
    )
}

/// A client-credentials token from the dev IdP for `client`, with `scope`.
async fn token(stack: &Stack, client: &str, secret: &str, scope: &str) -> String {
    let token_url = format!("{}/token", stack.broker.idp.url);
    client_credentials(&token_url, client, secret, RESOURCE, scope).await
}

/// A POST of `tools/call` for `tool` (the body) through nginx, with exactly the MCP
/// headers given: none is what a 2025-11-25 client sends.
async fn post(
    stack: &Stack,
    token: Option<&str>,
    tool: &str,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let body = json!({
        "jsonrpc": "2.0", "id": 9, "method": "tools/call",
        "params": { "name": tool, "arguments": { "text": "from an unseen call" } },
    });
    let mut request = http()
        .post(stack.nginx.at("/mcp"))
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

const OLD_CLIENT: &[(&str, &str)] = &[("mcp-protocol-version", "2025-11-25")];

fn challenge(response: &reqwest::Response) -> String {
    all(response, "www-authenticate").join("\n")
}

#[actix_web::test]
async fn a_post_without_mcp_method_needs_what_every_tool_needs_through_nginx() {
    let stack = Stack::start_with(Example::Readme, &rules()).await;
    let reader = token(&stack, "demo-service", "demo-service-secret", "notes:read").await;
    let before = stack.reached_mcp();

    // notes_write with only notes:read, the header left out: the union of the rules'
    // scopes, in the one challenge, and the reason.
    let refused = post(&stack, Some(&reader), "notes_write", OLD_CLIENT).await;
    assert_eq!(refused.status(), 403, "{}", stack.nginx.error_log());
    assert_eq!(
        challenge(&refused),
        format!(
            "Bearer resource_metadata=\"{METADATA}\", scope=\"notes:read notes:write\", error=\"insufficient_scope\", error_description=\"the request carried no Mcp-Method; missing scope: notes:write\""
        )
    );
    // Without a token, the first challenge already names all of it: an older client
    // logs in once.
    let anonymous = post(&stack, None, "notes_write", OLD_CLIENT).await;
    assert_eq!(anonymous.status(), 401);
    assert_eq!(
        challenge(&anonymous),
        format!("Bearer resource_metadata=\"{METADATA}\", scope=\"notes:read notes:write\"")
    );
    assert_eq!(stack.reached_mcp(), before, "the MCP server never saw them");

    // A client limited to some tools may not send what could be any call, whatever
    // its scopes.
    let limited = token(
        &stack,
        "token-broker",
        "token-broker-secret",
        "notes:read notes:write",
    )
    .await;
    let denied = post(&stack, Some(&limited), "notes_write", OLD_CLIENT).await;
    assert_eq!(denied.status(), 403);
    let value = challenge(&denied);
    assert!(value.contains(r#"error="access_denied""#), "{value}");
    assert!(value.contains("carried no Mcp-Method"), "{value}");
    assert!(!value.contains("scope="), "no step-up helps: {value}");
    assert_eq!(stack.reached_mcp(), before);

    // Holding what every tool needs, the older client gets through.
    let writer = token(
        &stack,
        "demo-service",
        "demo-service-secret",
        "notes:read notes:write",
    )
    .await;
    let written = post(&stack, Some(&writer), "notes_write", OLD_CLIENT).await;
    assert_eq!(written.status(), 200);
    let reply: Value = written.json().await.unwrap();
    assert_eq!(reply["result"]["isError"], false, "{reply}");
    assert_eq!(stack.reached_mcp(), before + 1);

    // A GET carries no call: the resource's own check, as before.
    let get = http()
        .get(stack.nginx.at("/mcp"))
        .bearer_auth(&reader)
        .send()
        .await
        .unwrap();
    assert!(!matches!(get.status().as_u16(), 401 | 403), "{get:?}");
    assert_eq!(stack.reached_mcp(), before + 2);
    stack.stop().await;
}

#[actix_web::test]
async fn mcp_headers_from_an_older_revision_are_not_trusted_through_nginx() {
    let stack = Stack::start_with(Example::Readme, &rules()).await;
    let reader = token(&stack, "demo-service", "demo-service-secret", "notes:read").await;
    let before = stack.reached_mcp();
    // A 2025-11-25 server need not check the headers against the body, so headers
    // naming notes_read say nothing about the notes_write in the body.
    let forged = [
        ("mcp-protocol-version", "2025-11-25"),
        ("mcp-method", "tools/call"),
        ("mcp-name", "notes_read"),
    ];
    let refused = post(&stack, Some(&reader), "notes_write", &forged).await;
    assert_eq!(refused.status(), 403);
    let value = challenge(&refused);
    assert!(value.contains(r#"error="insufficient_scope""#), "{value}");
    assert!(
        value.contains(r#"scope="notes:read notes:write""#),
        "{value}"
    );
    assert!(value.contains("predates"), "{value}");
    // No version at all, and a doubled Mcp-Method, are no better.
    let unversioned = [("mcp-method", "tools/call"), ("mcp-name", "notes_read")];
    let doubled = [
        ("mcp-protocol-version", "2026-07-28"),
        ("mcp-method", "tools/call"),
        ("mcp-method", "ping"),
        ("mcp-name", "notes_read"),
    ];
    for (headers, why) in [
        (&unversioned[..], "no MCP-Protocol-Version"),
        (&doubled[..], "more than once"),
    ] {
        let refused = post(&stack, Some(&reader), "notes_write", headers).await;
        assert_eq!(refused.status(), 403, "{why}");
        assert!(challenge(&refused).contains(why), "{}", challenge(&refused));
    }
    assert_eq!(stack.reached_mcp(), before, "the MCP server never saw them");

    // The same headers from a 2026-07-28 client are trusted: a read passes, and a
    // body that disagrees is the MCP server's to refuse (-32020).
    let body = |tool: &str| {
        json!({
            "jsonrpc": "2.0", "id": 4, "method": "tools/call",
            "params": {
                "name": tool, "arguments": {},
                "_meta": { "io.modelcontextprotocol/protocolVersion": "2026-07-28" },
            },
        })
        .to_string()
    };
    for (tool, status) in [("notes_read", 200), ("notes_write", 400)] {
        let response = http()
            .post(stack.nginx.at("/mcp"))
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", "tools/call")
            .header("mcp-name", "notes_read")
            .bearer_auth(&reader)
            .body(body(tool))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{tool}");
    }
    assert_eq!(stack.reached_mcp(), before + 2);
    stack.stop().await;
}
