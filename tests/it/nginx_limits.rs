//! Rate limits through a real nginx running the README snippet: `auth_request` turns
//! the broker's 429 into 500, and the snippet's `error_page 500` maps it back from
//! `X-Auth-Status`, so the client sees 429 with `Retry-After` and the `RateLimit`
//! fields; allowed answers carry the remaining budget.

use serde_json::json;

use crate::nginx::{Example, Stack};
use crate::support::{config_text, http};

const RESOURCE: &str = "http://127.0.0.1:9/mcp";

async fn tools_list(stack: &Stack, token: Option<&str>) -> reqwest::Response {
    let body = json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {} });
    let mut request = http()
        .post(stack.nginx.at("/mcp"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-11-25")
        .body(body.to_string());
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

fn header(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

#[actix_web::test]
async fn nginx_answers_the_brokers_429_with_retry_after() {
    let config = format!(
        "{}\n[resources.rate_limit]\nupstream_token = 2\nanonymous = 1\n",
        config_text()
    );
    let stack = Stack::start_with(Example::Readme, &config).await;
    let token = stack.broker.idp.service_token(RESOURCE, "notes:read").await;

    let first = tools_list(&stack, Some(&token)).await;
    assert_eq!(first.status(), 200);
    assert_eq!(
        header(&first, "ratelimit-policy"),
        "\"upstream_token\";q=2;w=60"
    );
    assert!(header(&first, "ratelimit").starts_with("\"upstream_token\";r=1;t="));
    assert_eq!(tools_list(&stack, Some(&token)).await.status(), 200);

    let refused = tools_list(&stack, Some(&token)).await;
    assert_eq!(refused.status(), 429, "{}", stack.nginx.error_log());
    // 30 s when the three requests fall in one second; real seconds pass between them on
    // a busy machine, and both fields count them down alike.
    let wait = seconds(&refused, "retry-after");
    assert!((25..=30).contains(&wait), "Retry-After {wait}");
    assert_eq!(
        header(&refused, "ratelimit"),
        format!("\"upstream_token\";r=0;t={wait}")
    );
    assert_eq!(
        header(&refused, "ratelimit-policy"),
        "\"upstream_token\";q=2;w=60"
    );
    assert!(
        refused.headers().get("x-auth-status").is_none(),
        "the broker's signal to nginx stays between them"
    );

    // Without a token: 401 (the login's start) until the anonymous budget is spent.
    assert_eq!(tools_list(&stack, None).await.status(), 401);
    let anonymous = tools_list(&stack, None).await;
    assert_eq!(anonymous.status(), 429);
    let wait = seconds(&anonymous, "retry-after");
    assert!((55..=60).contains(&wait), "Retry-After {wait}");
}

/// A header holding a number of seconds (0 when absent or not a number, which no
/// assertion accepts).
fn seconds(response: &reqwest::Response, name: &str) -> u64 {
    header(response, name).parse().unwrap_or(0)
}
