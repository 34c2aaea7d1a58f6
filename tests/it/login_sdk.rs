//! The MCP TypeScript SDK's real OAuth client logs in through the broker to the
//! demo's MCP server (fixtures/mcp-client/sdk-login.mjs, installed by
//! scripts/mcp-client-setup.sh). A missing fixture fails the test; it never skips.

use std::path::PathBuf;

use actix_web::middleware::from_fn;
use actix_web::web;
use serde_json::Value;
use token_broker::http::protect;

use crate::support::{TestBroker, config_text};

/// The fixture directory, checked to be installed.
pub fn fixture_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/mcp-client");
    assert!(
        dir.join("node_modules/@modelcontextprotocol/sdk").exists()
            && dir.join("node_modules/playwright-core").exists(),
        "the MCP client fixture is not installed: run `bash scripts/mcp-client-setup.sh` (scripts/test.sh does)"
    );
    dir
}

/// A broker at its real address with the demo's MCP server mounted at `/mcp`.
pub async fn broker_with_mcp() -> TestBroker {
    TestBroker::start_live(&config_text(), Default::default(), |cfg| {
        cfg.service(
            web::scope("/mcp")
                .wrap(from_fn(protect::require_token))
                .configure(|inner| token_broker::demo::mcp::configure(inner, "")),
        );
    })
    .await
}

/// Runs `node SCRIPT ARGS…` in the fixture directory without blocking the runtime;
/// returns the JSON line it printed (and its stderr on failure).
pub async fn run_node(script: &str, args: Vec<String>) -> Value {
    let dir = fixture_dir();
    let script = dir.join(script);
    let output = actix_web::rt::task::spawn_blocking(move || {
        std::process::Command::new("node")
            .arg(script)
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|_| {
        panic!(
            "no JSON result; stdout: {stdout}\nstderr: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

#[actix_web::test]
async fn the_typescript_sdk_logs_in_calls_a_tool_and_refreshes() {
    let broker = broker_with_mcp().await;
    let result = run_node("sdk-login.mjs", vec![broker.url.clone()]).await;
    assert_eq!(result["ok"], true, "{result:#}");
    assert_eq!(result["registered"], true);
    assert_eq!(result["resource"], broker.at("/mcp"));
    assert_eq!(result["code_challenge_method"], "S256");
    assert_eq!(result["state_matches"], true);
    assert_eq!(result["iss"], broker.url.as_str());
    assert_eq!(result["refresh_token_issued"], true);
    let tools: Vec<&str> = result["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(tools.contains(&"whoami"), "{tools:?}");
    assert!(
        result["whoami"].as_str().unwrap().contains("alice"),
        "{result:#}"
    );
    assert_eq!(result["refreshed"], true, "{result:#}");
    assert!(
        result["whoami_after_refresh"]
            .as_str()
            .unwrap()
            .contains("alice")
    );
    // authorize → consent (approve) → provider → callback → client.
    let hops: Vec<&str> = result["hops"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        hops,
        [
            "GET /oauth/authorize 200",
            "POST /oauth/consent 303",
            "GET /authorize 302",
            "GET /oauth/callback 303"
        ],
        "{hops:?}"
    );
}
