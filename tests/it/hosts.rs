//! Several MCP servers on one broker: resources are matched by host and path, so two
//! servers on one path keep their own rules (audiences, required scopes, tool rules,
//! anonymous access) and their own metadata; `X-Forwarded-Host` counts only from a
//! trusted proxy; Envoy's `ext_authz` asks `/auth/verify/<original path>`.

use serde_json::Value;

use crate::support::{TestBroker, config_text, http};

const A: &str = "http://a.example/mcp";
const B: &str = "http://b.example/mcp";

/// Two resources on one path: `a.example` lets its public tool through anonymously,
/// `b.example` has no public tool and a stricter rule for `notes_write`.
fn two_hosts(extra: &str) -> String {
    let base = config_text();
    let base = &base[..base.find("[[resources]]").unwrap()];
    format!(
        r#"{base}
[[resources]]
uri = "{A}"
required_scopes = ["notes:read"]
anonymous = "public-tools"

[[resources.tools]]
name = "health"
public = true

[[resources]]
uri = "{B}"
required_scopes = ["notes:read"]

[[resources.tools]]
name = "notes_write"
scopes = ["notes:write"]
{extra}"#
    )
}

/// Forward-auth as nginx asks it: for `/mcp`, a `tools/call` of `tool`.
async fn verify(
    broker: &TestBroker,
    headers: &[(&str, &str)],
    token: Option<&str>,
    tool: &str,
) -> reqwest::Response {
    let mut request = http()
        .post(broker.at("/auth/verify"))
        .header("x-original-uri", "/mcp")
        .header("x-original-method", "POST")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", tool);
    for (name, value) in headers {
        request = request.header(*name, *value);
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

async fn metadata(broker: &TestBroker, path: &str, host: &str) -> reqwest::Response {
    http()
        .get(broker.at(&format!("/.well-known/oauth-protected-resource{path}")))
        .header("host", host)
        .send()
        .await
        .unwrap()
}

#[actix_web::test]
async fn two_servers_on_one_path_keep_their_own_rules_tokens_and_metadata() {
    let broker = TestBroker::start_with(&two_hosts(""), |_| {}).await;
    let for_a = broker.idp.service_token(A, "notes:read").await;
    let for_b = broker.idp.service_token(B, "notes:read").await;
    let a = [("host", "a.example")];
    let b = [("host", "b.example")];

    // Anonymous: a.example's public tool passes; b.example has none.
    assert_eq!(verify(&broker, &a, None, "health").await.status(), 200);
    let refused = verify(&broker, &b, None, "health").await;
    assert_eq!(refused.status(), 401);
    assert!(
        challenge(&refused).contains(
            "resource_metadata=\"http://b.example/.well-known/oauth-protected-resource/mcp\""
        ),
        "{}",
        challenge(&refused)
    );

    // Each token at its own host only.
    assert_eq!(
        verify(&broker, &a, Some(&for_a), "notes_write")
            .await
            .status(),
        200
    );
    assert_eq!(
        verify(&broker, &b, Some(&for_b), "notes_read")
            .await
            .status(),
        200
    );
    assert_eq!(
        verify(&broker, &b, Some(&for_a), "notes_read")
            .await
            .status(),
        401
    );
    assert_eq!(
        verify(&broker, &a, Some(&for_b), "notes_read")
            .await
            .status(),
        401
    );
    // b.example's tool rule, not a.example's lack of one.
    let step_up = verify(&broker, &b, Some(&for_b), "notes_write").await;
    assert_eq!(step_up.status(), 403);
    assert!(
        challenge(&step_up).contains("notes:write"),
        "{}",
        challenge(&step_up)
    );

    // A host that names neither: refused, never judged by either's rules.
    let unknown = verify(
        &broker,
        &[("host", "c.example")],
        Some(&for_a),
        "notes_read",
    )
    .await;
    assert_eq!(unknown.status(), 400);
    let body: Value = unknown.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
    assert!(
        body["error_description"].as_str().unwrap().contains("host"),
        "{body}"
    );

    // The metadata each host's challenge points at, and the root form, per host.
    for (host, uri) in [("a.example", A), ("B.example:80", B)] {
        for path in ["/mcp", ""] {
            let response = metadata(&broker, path, host).await;
            assert_eq!(response.status(), 200, "{host}{path}");
            let doc: Value = response.json().await.unwrap();
            assert_eq!(doc["resource"], uri, "{host}{path}");
        }
    }
    assert_eq!(metadata(&broker, "/mcp", "c.example").await.status(), 400);
    assert_eq!(metadata(&broker, "/other", "a.example").await.status(), 404);
    broker.stop().await;
}

#[actix_web::test]
async fn x_forwarded_host_counts_only_from_a_trusted_proxy() {
    let trusting = two_hosts("").replacen(
        "[server]\n",
        "[server]\ntrusted_proxies = [\"127.0.0.1/32\"]\n",
        1,
    );
    let for_a_then_b = [("host", "a.example"), ("x-forwarded-host", "b.example")];

    // From an untrusted peer the header is the client's: Host decides.
    let broker = TestBroker::start_with(&two_hosts(""), |_| {}).await;
    let for_a = broker.idp.service_token(A, "notes:read").await;
    let for_b = broker.idp.service_token(B, "notes:read").await;
    assert_eq!(
        verify(&broker, &for_a_then_b, Some(&for_a), "x")
            .await
            .status(),
        200
    );
    assert_eq!(
        verify(&broker, &for_a_then_b, Some(&for_b), "x")
            .await
            .status(),
        401
    );
    let doc: Value = http()
        .get(broker.at("/.well-known/oauth-protected-resource/mcp"))
        .header("host", "a.example")
        .header("x-forwarded-host", "b.example")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["resource"], A);
    broker.stop().await;

    // From a trusted proxy it names the host the client asked for.
    let broker = TestBroker::start_with(&trusting, |_| {}).await;
    let for_a = broker.idp.service_token(A, "notes:read").await;
    let for_b = broker.idp.service_token(B, "notes:read").await;
    assert_eq!(
        verify(&broker, &for_a_then_b, Some(&for_b), "x")
            .await
            .status(),
        200
    );
    assert_eq!(
        verify(&broker, &for_a_then_b, Some(&for_a), "x")
            .await
            .status(),
        401
    );
    // A list: the last entry is the one the nearest (trusted) proxy saw.
    let listed = [("host", "x"), ("x-forwarded-host", "a.example, b.example")];
    assert_eq!(
        verify(&broker, &listed, Some(&for_b), "x").await.status(),
        200
    );
    broker.stop().await;
}

/// Envoy's ext_authz (HTTP): the original method and path, appended to the check URL.
async fn envoy(
    broker: &TestBroker,
    method: reqwest::Method,
    path: &str,
    headers: &[(&str, &str)],
    token: Option<&str>,
) -> reqwest::Response {
    let mut request = http()
        .request(method, broker.at(&format!("/auth/verify{path}")))
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "health");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

#[actix_web::test]
async fn envoy_appends_the_original_path_and_no_header_overrides_it() {
    use reqwest::Method;
    let broker = TestBroker::start_with(&two_hosts(""), |_| {}).await;
    let for_a = broker.idp.service_token(A, "notes:read").await;
    let a = [("host", "a.example")];
    let token = Some(for_a.as_str());

    assert_eq!(
        envoy(&broker, Method::POST, "/mcp", &a, token)
            .await
            .status(),
        200
    );
    assert_eq!(
        envoy(&broker, Method::GET, "/mcp/sub?x=1", &a, token)
            .await
            .status(),
        200
    );
    // The path decides: one no resource covers is refused.
    assert_eq!(
        envoy(&broker, Method::POST, "/other", &a, token)
            .await
            .status(),
        403
    );
    // A client's X-Original-URI, passed on by the proxy, cannot move the check ...
    let moved = [("host", "a.example"), ("x-original-uri", "/mcp")];
    let response = envoy(&broker, Method::POST, "/other", &moved, token).await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("disagree"),
        "{body}"
    );
    // ... and one that says the same changes nothing.
    assert_eq!(
        envoy(&broker, Method::POST, "/mcp", &moved, token)
            .await
            .status(),
        200
    );

    // The original method is the check's own: an anonymous public-tool POST passes, a
    // GET (a stream) is 405, and a method header that disagrees lets nothing through
    // anonymously.
    assert_eq!(
        envoy(&broker, Method::POST, "/mcp", &a, None)
            .await
            .status(),
        200
    );
    assert_eq!(
        envoy(&broker, Method::GET, "/mcp", &a, None).await.status(),
        405
    );
    let disagreeing = [("host", "a.example"), ("x-original-method", "GET")];
    let response = envoy(&broker, Method::POST, "/mcp", &disagreeing, None).await;
    assert_eq!(response.status(), 401);
    broker.stop().await;
}

/// A gateway tools/call to `/mcp` on `host`.
async fn gateway_call(broker: &TestBroker, host: &str, token: &str) -> reqwest::Response {
    http()
        .post(broker.at("/mcp"))
        .header("host", host)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .bearer_auth(token)
        .body(
            serde_json::json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/call",
                "params": { "name": "notes_read", "arguments": {} } })
            .to_string(),
        )
        .send()
        .await
        .unwrap()
}

#[actix_web::test]
async fn two_gateways_on_one_path_send_each_host_to_its_own_server() {
    use crate::gateway::mcp_upstream::start_upstream;
    let (server_a, url_a) = start_upstream();
    let (server_b, url_b) = start_upstream();
    let gateways = format!(
        r#"
[[gateway]]
path = "/mcp"
resource = "{A}"
upstream = "{url_a}/json"

[[gateway]]
path = "/mcp"
resource = "{B}"
upstream = "{url_b}/json"
"#
    );
    let broker = TestBroker::start_with(&two_hosts(&gateways), |_| {}).await;
    let for_a = broker.idp.service_token(A, "notes:read").await;
    let for_b = broker.idp.service_token(B, "notes:read").await;

    assert_eq!(
        gateway_call(&broker, "a.example", &for_a).await.status(),
        200
    );
    assert_eq!((server_a.seen().len(), server_b.seen().len()), (1, 0));
    assert_eq!(
        gateway_call(&broker, "b.example:80", &for_b).await.status(),
        200
    );
    assert_eq!((server_a.seen().len(), server_b.seen().len()), (1, 1));

    // A token for a.example at b.example is judged by b.example's rules: refused, and
    // neither server sees it; a host naming neither server reaches neither.
    assert_eq!(
        gateway_call(&broker, "b.example", &for_a).await.status(),
        401
    );
    assert_eq!(
        gateway_call(&broker, "c.example", &for_a).await.status(),
        400
    );
    assert_eq!((server_a.seen().len(), server_b.seen().len()), (1, 1));
    broker.stop().await;
}

#[actix_web::test]
async fn a_gateway_serves_only_its_own_hosts_resource() {
    use crate::gateway::mcp_upstream::start_upstream;
    let (server_a, url_a) = start_upstream();
    let gateway = format!(
        "\n[[gateway]]\npath = \"/mcp\"\nresource = \"{A}\"\nupstream = \"{url_a}/json\"\n"
    );
    let broker = TestBroker::start_with(&two_hosts(&gateway), |_| {}).await;
    let for_b = broker.idp.service_token(B, "notes:read").await;
    // b.example's token passes b.example's rules, but no MCP server is b.example's here.
    let response = gateway_call(&broker, "b.example", &for_b).await;
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"]["message"].as_str().unwrap().contains("host"),
        "{body}"
    );
    assert!(server_a.seen().is_empty());
    broker.stop().await;
}
