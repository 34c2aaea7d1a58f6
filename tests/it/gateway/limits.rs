//! Rate limits through the gateway: the remaining budget on every allowed answer, and a
//! refused call answered with a JSON-RPC error inside a 429 (`Retry-After`, the
//! draft-ietf-httpapi-ratelimit-headers fields), which an MCP client can parse; nothing
//! of it reaches the MCP server.

use serde_json::Value;

use super::{call, list, rig_with, rpc};

const LIMITS: &str = r#"
[resources.rate_limit]
api_key = 3

[[resources.rate_limit.tools]]
name = "get_*"
budget = 1
"#;

fn header(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

#[actix_web::test]
async fn a_refused_call_is_a_json_rpc_error_inside_a_429() {
    let rig = rig_with(LIMITS).await;
    let key = Some(rig.key.as_str());
    let allowed = rpc(&rig.broker, "/mcp", key, &call(1, "get_note"), &[]).await;
    assert_eq!(allowed.status(), 200);
    assert_eq!(
        header(&allowed, "ratelimit-policy"),
        "\"tool:get_*\";q=1;w=60"
    );
    assert_eq!(header(&allowed, "ratelimit"), "\"tool:get_*\";r=0;t=60");

    let refused = rpc(&rig.broker, "/mcp", key, &call(2, "get_other"), &[]).await;
    assert_eq!(refused.status(), 429);
    assert_eq!(header(&refused, "retry-after"), "60");
    assert_eq!(header(&refused, "ratelimit"), "\"tool:get_*\";r=0;t=60");
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["jsonrpc"], "2.0", "{body}");
    assert_eq!(body["id"], 2, "{body}");
    assert_eq!(body["error"]["code"], -32029, "{body}");

    // The caller's own budget (3: two spent above) is the tightest now.
    let listed = rpc(&rig.broker, "/mcp", key, &list(3), &[]).await;
    assert_eq!(listed.status(), 200);
    assert_eq!(header(&listed, "ratelimit"), "\"api_key\";r=0;t=60");
    let over = rpc(&rig.broker, "/mcp", key, &list(4), &[]).await;
    assert_eq!(over.status(), 429);
    assert_eq!(header(&over, "ratelimit-policy"), "\"api_key\";q=3;w=60");
    let body: Value = over.json().await.unwrap();
    assert_eq!(body["id"], 4, "{body}");
    assert_eq!(body["error"]["code"], -32029, "{body}");
    assert_eq!(
        rig.upstream.seen().len(),
        2,
        "refused calls never reach the MCP server"
    );
}
