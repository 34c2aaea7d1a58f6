//! A real client of the MCP OAuth client-credentials extension: the MCP TypeScript
//! SDK's `ClientCredentialsProvider` (a client secret) and `PrivateKeyJwtProvider` (a
//! client assertion) find the broker from the gateway's 401, get a token with
//! `grant_type=client_credentials` and call a tool of the demo's MCP server through the
//! broker's gateway (fixtures/mcp-client/sdk-machine.mjs). Also the same call made by
//! hand, with the tool rules applied to the machine's token.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use token_broker::tokens::keypair::{KeyPair, SigningAlg};

use crate::login_sdk::run_node;
use crate::support::{TestBroker, config_text, http};

const SECRET: &str = "ci-bot-secret-0123456789";

/// The broker at its real address fronting the demo's MCP server at `/mcp`, with the
/// demo's tool rules and two machine clients: ci-bot (secret, notes:read) and key-bot
/// (`key`'s public JWK, notes:read notes:write).
async fn broker(key: &KeyPair) -> TestBroker {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mcp = listener.local_addr().unwrap();
    actix_web::rt::spawn(token_broker::demo::mcp::serve_behind_gateway(listener).unwrap());
    let jwks = json!({ "keys": [key.jwk] }).to_string();
    let text = format!(
        r#"{}
[[resources.tools]]
name = "notes_read"
scopes = ["notes:read"]

[[resources.tools]]
name = "notes_write"
scopes = ["notes:write"]

[[gateway]]
path = "/mcp"
upstream = "http://{mcp}/mcp"

[[clients]]
client_id = "ci-bot"
client_secret = "{SECRET}"
resources = ["http://127.0.0.1:9/mcp"]
scopes = ["notes:read"]

[[clients]]
client_id = "key-bot"
jwks = '{jwks}'
resources = ["http://127.0.0.1:9/mcp"]
scopes = ["notes:read", "notes:write"]
"#,
        config_text()
    );
    TestBroker::start_live(&text, Default::default(), |_| {}).await
}

fn pem(key: &KeyPair) -> String {
    let body = STANDARD.encode(key.pkcs8());
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        lines.join("\n")
    )
}

fn assert_machine_call(result: &Value, client: &str, method: &str) {
    assert_eq!(result["ok"], true, "{result:#}");
    // One token request: the 401 sends the SDK to the token endpoint once, and the
    // token serves every request after it.
    assert_eq!(result["token_requests"], 1, "{result:#}");
    assert_eq!(result["token_auth"], json!([method]), "{result:#}");
    assert_eq!(result["refresh_token"], false, "{result:#}");
    let whoami: Value = serde_json::from_str(result["whoami"].as_str().unwrap()).unwrap();
    assert_eq!(whoami["subject"], client, "{whoami:#}");
    assert_eq!(whoami["client_id"], client, "{whoami:#}");
}

#[actix_web::test]
async fn the_typescript_sdk_calls_a_tool_with_client_credentials_and_a_secret() {
    let key = KeyPair::generate(SigningAlg::Es256).unwrap();
    let broker = broker(&key).await;
    let args = ["secret", "ci-bot", SECRET].map(String::from);
    let result = run_node(
        "sdk-machine.mjs",
        [vec![broker.url.clone()], args.to_vec()].concat(),
    )
    .await;
    assert_machine_call(&result, "ci-bot", "client_secret_basic");
    assert_eq!(result["scope"], "notes:read");
}

#[actix_web::test]
async fn the_typescript_sdk_calls_a_tool_with_client_credentials_and_private_key_jwt() {
    for alg in [SigningAlg::Es256, SigningAlg::Rs256] {
        let key = KeyPair::generate(alg).unwrap();
        let broker = broker(&key).await;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key-bot.pem");
        std::fs::write(&path, pem(&key)).unwrap();
        let args = vec![
            broker.url.clone(),
            "private_key_jwt".to_owned(),
            "key-bot".to_owned(),
            path.display().to_string(),
            alg.name().to_owned(),
        ];
        let result = run_node("sdk-machine.mjs", args).await;
        assert_machine_call(&result, "key-bot", "private_key_jwt");
        assert_eq!(result["scope"], "notes:read notes:write");
    }
}

#[actix_web::test]
async fn a_machine_token_passes_the_gateway_under_the_tool_rules() {
    let key = KeyPair::generate(SigningAlg::Es256).unwrap();
    let broker = broker(&key).await;
    let resource = broker.at("/mcp");
    let body: Value = http()
        .post(broker.at("/oauth/token"))
        .basic_auth("ci-bot", Some(SECRET))
        .form(&[
            ("grant_type", "client_credentials"),
            ("resource", &resource),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = body["access_token"].as_str().unwrap();
    let call = |tool: &str| {
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
               "params": {"name": tool, "arguments": {}}})
    };
    let send = |payload: Value| {
        http()
            .post(broker.at("/mcp"))
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-11-25")
            .bearer_auth(token)
            .body(payload.to_string())
            .send()
    };
    let read = send(call("notes_read")).await.unwrap();
    assert_eq!(read.status(), 200);
    let read: Value = read.json().await.unwrap();
    assert!(read.get("result").is_some(), "{read}");
    // notes_write needs notes:write, beyond ci-bot's ceiling: a step-up challenge.
    let write = send(call("notes_write")).await.unwrap();
    assert_eq!(write.status(), 403);
    let challenge = write.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.contains("insufficient_scope"), "{challenge}");
}
