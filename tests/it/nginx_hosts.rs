//! Two MCP servers on one path on two hosts, behind a real nginx running the README
//! snippet and docker/nginx.conf: nginx sends the broker the client's host as
//! `X-Forwarded-Host` (its `proxy_pass` replaces `Host`), so each host keeps its own
//! rules and metadata once nginx is a trusted proxy, and nothing passes when it is not
//! (the host then names neither resource, and the shared path is refused).

use serde_json::{Value, json};

use crate::nginx::{Example, Stack, all};
use crate::support::{config_text, http};

const A: &str = "http://a.example/mcp";
const B: &str = "http://b.example/mcp";

/// The two resources, with nginx (on loopback) trusted or not.
fn two_hosts(trust_nginx: bool) -> String {
    let base = config_text();
    let mut base = base[..base.find("[[resources]]").unwrap()].to_owned();
    if trust_nginx {
        base = base.replace(
            "workers = 1\n",
            "workers = 1\ntrusted_proxies = [\"127.0.0.1/32\"]\n",
        );
    }
    format!(
        "{base}\n[[resources]]\nuri = \"{A}\"\nrequired_scopes = [\"notes:read\"]\n\n\
         [[resources]]\nuri = \"{B}\"\nrequired_scopes = [\"notes:read\"]\n"
    )
}

/// `tools/list` through nginx at `host`.
async fn tools_list(stack: &Stack, host: &str, token: &str) -> reqwest::Response {
    let body = json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {} });
    http()
        .post(stack.nginx.at("/mcp"))
        .header("host", host)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-11-25")
        .bearer_auth(token)
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

async fn each_host_keeps_its_own_resource(example: Example) {
    let stack = Stack::start_with(example, &two_hosts(true)).await;
    let for_a = stack.broker.idp.service_token(A, "notes:read").await;
    let for_b = stack.broker.idp.service_token(B, "notes:read").await;

    let passed = tools_list(&stack, "a.example", &for_a).await;
    assert_eq!(passed.status(), 200, "{}", stack.nginx.error_log());
    assert_eq!(tools_list(&stack, "b.example", &for_b).await.status(), 200);
    assert_eq!(stack.reached_mcp(), 2);

    // A token for a.example is no key to b.example, and b.example's challenge points
    // at b.example's metadata.
    let refused = tools_list(&stack, "b.example", &for_a).await;
    assert_eq!(refused.status(), 401);
    let challenge = all(&refused, "www-authenticate").join(", ");
    assert!(
        challenge.contains(
            "resource_metadata=\"http://b.example/.well-known/oauth-protected-resource/mcp\""
        ),
        "{challenge}"
    );
    assert_eq!(stack.reached_mcp(), 2);

    // The metadata location sends the host too: each host's own resource.
    for (host, resource) in [("a.example", A), ("b.example", B)] {
        let metadata: Value = http()
            .get(stack.nginx.at("/.well-known/oauth-protected-resource/mcp"))
            .header("host", host)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(metadata["resource"], resource, "{metadata}");
    }
    stack.stop().await;
}

#[actix_web::test]
async fn the_readme_snippet_sends_the_clients_host_to_the_broker() {
    each_host_keeps_its_own_resource(Example::Readme).await;
}

#[actix_web::test]
async fn docker_nginx_conf_sends_the_clients_host_to_the_broker() {
    each_host_keeps_its_own_resource(Example::Docker).await;
}

#[actix_web::test]
async fn an_untrusted_nginx_cannot_choose_the_resource_and_nothing_passes() {
    let stack = Stack::start_with(Example::Readme, &two_hosts(false)).await;
    let for_a = stack.broker.idp.service_token(A, "notes:read").await;
    // The broker ignores the header and sees nginx's own Host, which names neither
    // resource sharing /mcp: refused (400, which auth_request answers as 500).
    let refused = tools_list(&stack, "a.example", &for_a).await;
    assert!(!refused.status().is_success(), "{}", refused.status());
    assert_eq!(stack.reached_mcp(), 0);
    stack.stop().await;
}
