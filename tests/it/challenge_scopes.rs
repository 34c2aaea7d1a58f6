//! Scopes in challenges and metadata (MCP 2026-07-28): a challenge names every scope
//! the operation needs in one go — the 401 without a token, the resource's 403 and the
//! tool's step-up alike, at forward-auth and in the gateway — and `offline_access`,
//! which asks the authorization server for refresh tokens, is never a resource's: not
//! in a challenge, not in its `scopes_supported`, refused in its configuration. The
//! broker's own metadata (RFC 8414) still offers it.

use serde_json::{Value, json};
use token_broker::tokens::api_keys::{generate_key, hash_key};

use crate::support::{TestBroker, config_text, http};

/// `notes_write` and `admin_*` need a scope each on top of `notes:read`; the gateway
/// fronts the demo's MCP server at `/mcp`; one key reads, one holds nothing.
fn text(mcp: &str, reader: &str, stranger: &str) -> String {
    format!(
        r#"{}
[[resources.tools]]
name = "notes_write"
scopes = ["notes:write"]

[[resources.tools]]
name = "admin_*"
scopes = ["notes:admin"]

[[api_keys]]
name = "reader"
hash = "{}"
subject = "service:reader"
scopes = ["notes:read"]

[[api_keys]]
name = "stranger"
hash = "{}"
subject = "service:stranger"
scopes = []

[[gateway]]
path = "/mcp"
upstream = "http://{mcp}/mcp"
"#,
        config_text(),
        hash_key(reader),
        hash_key(stranger)
    )
}

struct Rig {
    broker: TestBroker,
    reader: String,
    stranger: String,
}

async fn rig() -> Rig {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mcp = listener.local_addr().unwrap();
    actix_web::rt::spawn(token_broker::demo::mcp::serve_behind_gateway(listener).unwrap());
    let (reader, stranger) = (generate_key(), generate_key());
    let text = text(&mcp.to_string(), &reader, &stranger);
    let broker = TestBroker::start_live(&text, Default::default(), |_| {}).await;
    Rig {
        broker,
        reader,
        stranger,
    }
}

/// Forward-auth for a POST a 2026-07-28 client sends: `tool` called, or `tools/list`.
async fn verify(broker: &TestBroker, token: Option<&str>, tool: Option<&str>) -> reqwest::Response {
    let mut request = http()
        .post(broker.at("/auth/verify"))
        .header("x-original-uri", "/mcp")
        .header("x-original-method", "POST")
        .header("mcp-protocol-version", "2026-07-28")
        .header(
            "mcp-method",
            if tool.is_some() {
                "tools/call"
            } else {
                "tools/list"
            },
        );
    if let Some(tool) = tool {
        request = request.header("mcp-name", tool);
    }
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

/// A JSON-RPC body through the gateway.
async fn gateway(broker: &TestBroker, token: Option<&str>, body: &Value) -> reqwest::Response {
    let mut request = http()
        .post(broker.at("/mcp"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(body.to_string());
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

fn call(id: u64, tool: &str) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "method": "tools/call", "params": { "name": tool, "arguments": {} } })
}

/// The challenge's `scope` and `error_description`.
fn scope_and_description(response: &reqwest::Response) -> (String, String) {
    let value = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let attribute = |name: &str| {
        value
            .split(&format!("{name}=\""))
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_default()
            .to_owned()
    };
    (attribute("scope"), attribute("error_description"))
}

#[actix_web::test]
async fn every_challenge_names_all_the_scopes_the_operation_needs() {
    let rig = rig().await;
    let b = &rig.broker;
    let write = "notes:read notes:write";

    // No token: the 401 names what the call needs, not only the resource's scope, so
    // the client logs in once. Listing needs the resource's scope only.
    for response in [
        verify(b, None, Some("notes_write")).await,
        gateway(b, None, &call(1, "notes_write")).await,
    ] {
        assert_eq!(response.status(), 401);
        assert_eq!(scope_and_description(&response).0, write);
    }
    let listing = verify(b, None, None).await;
    assert_eq!(listing.status(), 401);
    assert_eq!(scope_and_description(&listing).0, "notes:read");

    // A token without the resource's scope: the 403 names the tool's too.
    for response in [
        verify(b, Some(&rig.stranger), Some("notes_write")).await,
        gateway(b, Some(&rig.stranger), &call(2, "notes_write")).await,
    ] {
        assert_eq!(response.status(), 403);
        assert_eq!(
            scope_and_description(&response),
            (write.to_owned(), format!("missing scope: {write}"))
        );
    }

    // A batch needing two tools' scopes asks for both at once.
    let batch = json!([call(3, "notes_write"), call(4, "admin_purge")]);
    let refused = gateway(b, Some(&rig.reader), &batch).await;
    assert_eq!(refused.status(), 403);
    assert_eq!(
        scope_and_description(&refused),
        (
            "notes:admin notes:read notes:write".to_owned(),
            "missing scope: notes:admin notes:write".to_owned()
        )
    );
    // One tool at a time, its own.
    let single = verify(b, Some(&rig.reader), Some("admin_purge")).await;
    assert_eq!(single.status(), 403);
    assert_eq!(scope_and_description(&single).0, "notes:admin notes:read");

    // offline_access is offered by the authorization server, never by the resource.
    let resource: Value = http()
        .get(b.at("/.well-known/oauth-protected-resource/mcp"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        resource["scopes_supported"],
        json!(["notes:read", "notes:write", "notes:admin"])
    );
    let server: Value = http()
        .get(b.at("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        server["scopes_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("offline_access")),
        "{server}"
    );
}

#[test]
fn offline_access_is_refused_in_a_resources_scopes() {
    let base = config_text();
    for (from, to, key) in [
        (
            r#"scopes_supported = ["notes:read", "notes:write"]"#,
            r#"scopes_supported = ["notes:read", "offline_access"]"#,
            "resources[0].scopes_supported",
        ),
        (
            r#"required_scopes = ["notes:read"]"#,
            r#"required_scopes = ["notes:read", "offline_access"]"#,
            "resources[0].required_scopes",
        ),
        (
            "",
            "\n[[resources.tools]]\nname = \"sync\"\nscopes = [\"offline_access\"]\n",
            "resources[0].tools[0].scopes",
        ),
    ] {
        let text = if from.is_empty() {
            format!("{base}{to}")
        } else {
            assert!(base.contains(from));
            base.replacen(from, to, 1)
        };
        let error = token_broker::config::load_str(&text, &Default::default())
            .unwrap_err()
            .to_string();
        assert!(error.contains(key), "{key}: {error}");
        assert!(
            error.contains("`offline_access` is not a resource's scope"),
            "{error}"
        );
    }
}
