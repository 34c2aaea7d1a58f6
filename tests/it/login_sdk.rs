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
    // One login: one authorization URL, one registration, through every reconnection
    // and the refresh.
    assert_eq!(result["authorization_urls"], 1, "{result:#}");
    assert_eq!(result["registrations"], 1, "{result:#}");
    assert_eq!(registrations(&broker), 1);
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

/// How many registrations the broker answered (created or reused).
fn registrations(broker: &TestBroker) -> u64 {
    metric_sum(broker, "token_broker_registrations_total")
}

fn metric_sum(broker: &TestBroker, prefix: &str) -> u64 {
    let text = broker.state.metrics.render().unwrap();
    text.lines()
        .filter(|line| line.starts_with(prefix))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// A broker fronting the demo's MCP server through its gateway, with the demo's tool
/// rules: notes_read needs notes:read (alice's default), notes_write notes:write, and
/// a public health tool. `anonymous` is the resource's `anonymous` line, if any.
async fn broker_with_gateway(anonymous: &str) -> TestBroker {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mcp = listener.local_addr().unwrap();
    let server = token_broker::demo::mcp::serve_behind_gateway(listener).unwrap();
    actix_web::rt::spawn(server);
    let text = format!(
        r#"{}{anonymous}
[[resources.tools]]
name = "notes_read"
scopes = ["notes:read"]

[[resources.tools]]
name = "notes_write"
scopes = ["notes:write"]

[[resources.tools]]
name = "health"
public = true

[[gateway]]
path = "/mcp"
upstream = "http://{mcp}/mcp"
"#,
        config_text()
    );
    TestBroker::start_live(&text, Default::default(), |_| {}).await
}

#[actix_web::test]
async fn the_typescript_sdk_steps_up_for_a_tool_that_needs_more_scope() {
    let broker = broker_with_gateway("").await;
    let result = run_node("sdk-stepup.mjs", vec![broker.url.clone()]).await;
    assert_eq!(result["ok"], true, "{result:#}");
    // The login and the step-up: one authorization URL each, one registration.
    assert_eq!(result["authorization_urls"], 2, "{result:#}");
    assert_eq!(result["registrations"], 1, "{result:#}");
    assert_eq!(registrations(&broker), 1);
    // The first login asks for what the 401 named; the list shows only what it allows.
    assert_eq!(result["login_scope"], "notes:read", "{result:#}");
    let names = |key: &str| -> Vec<String> {
        result[key]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    };
    let first = names("tools_first");
    assert!(first.contains(&"notes_read".to_owned()), "{first:?}");
    assert!(!first.contains(&"notes_write".to_owned()), "{first:?}");
    assert_eq!(result["read_ok"], true);
    // notes_write: 403 → the SDK asks the user again, for the scope the challenge named.
    assert_eq!(result["step_up_asked"], true, "{result:#}");
    let asked = result["step_up_scope"].as_str().unwrap();
    assert!(asked.contains("notes:write"), "{asked}");
    assert_eq!(result["write_ok"], true, "{result:#}");
    assert!(names("tools_after").contains(&"notes_write".to_owned()));
    assert!(
        names("notes").contains(&"stepped up".to_owned()),
        "{result:#}"
    );
}

/// Runs sdk-one-login.mjs against `/mcp` and checks the one login: one registration
/// (the SDK's and the broker's count), one authorization URL, a tool called as alice.
async fn one_login(broker: &TestBroker) -> Value {
    let result = run_node(
        "sdk-one-login.mjs",
        vec![broker.at("/mcp"), "whoami".into()],
    )
    .await;
    assert_eq!(result["ok"], true, "{result:#}");
    assert_eq!(result["authorization_urls"], 1, "{result:#}");
    assert_eq!(result["registrations"], 1, "{result:#}");
    assert_eq!(registrations(broker), 1, "{result:#}");
    assert_eq!(result["state_matches"], true, "{result:#}");
    assert_eq!(result["called"], true, "{result:#}");
    assert_eq!(result["subject"], "alice", "{result:#}");
    result
}

/// The demo's setup (a public tool, `anonymous` left at `none`): `initialize` without
/// a token is answered 401, so the SDK starts exactly one login. With the handshake
/// answered anonymously the SDK's GET stream and its next POST both got 401 and it
/// started two logins at once.
#[actix_web::test]
async fn the_typescript_sdk_starts_one_login_when_initialize_needs_a_token() {
    let broker = broker_with_gateway("").await;
    let result = one_login(&broker).await;
    assert_eq!(result["connected_anonymously"], false, "{result:#}");
}

/// `anonymous = "public-tools"`: the SDK connects and calls the public tool without a
/// token; its GET stream gets 405 (no stream for anonymous callers, which the SDK
/// accepts), so only `tools/list` asks it to log in: one login.
#[actix_web::test]
async fn the_typescript_sdk_starts_one_login_on_a_resource_open_to_anonymous_callers() {
    let broker = broker_with_gateway("\nanonymous = \"public-tools\"").await;
    let result = one_login(&broker).await;
    assert_eq!(result["connected_anonymously"], true, "{result:#}");
    assert_eq!(result["anonymous_health"], "ok", "{result:#}");
    // The SDK did open its stream anonymously, and was refused without a challenge.
    assert!(
        metric_sum(
            &broker,
            "token_broker_auth_failures_total{reason=\"anonymous_stream\"}"
        ) >= 1,
        "{}",
        broker.state.metrics.render().unwrap()
    );
}
