//! `token-broker demo` as a newcomer runs it: start it, then run every command it
//! prints, exactly as printed, in one shell.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;
use token_broker::demo::app::NOTES_API;

use crate::support::binary;

struct Demo {
    child: std::process::Child,
    printed: String,
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_demo() -> Demo {
    start_demo_with(&[])
}

fn start_demo_with(extra: &[&str]) -> Demo {
    let mut child = binary()
        .args([
            "demo",
            "--listen",
            "127.0.0.1:0",
            "--idp-listen",
            "127.0.0.1:0",
        ])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut text = String::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            text.push_str(&line);
            text.push('\n');
            if line.starts_with("Ctrl-C stops the demo") {
                let _ = tx.send(text.clone());
            }
        }
    });
    let printed = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the demo printed no instructions");
    Demo { child, printed }
}

/// The shell lines of the instructions: the indented lines after "Try it" that are
/// not comments (the address table above it is indented too).
fn commands(printed: &str) -> Vec<String> {
    printed
        .lines()
        .skip_while(|l| !l.starts_with("Try it"))
        .filter(|l| l.starts_with("  ") && !l.trim_start().starts_with('#'))
        .map(|l| l.trim().to_owned())
        .collect()
}

/// Runs `lines` in one shell, as a person pasting them would; returns each line's output.
fn run(lines: &[String]) -> Vec<String> {
    let script: String = lines
        .iter()
        .enumerate()
        .map(|(i, l)| format!("echo '=== {i}'\n{l}\necho\n"))
        .collect();
    // `token-broker` as the person running the demo has it: on the PATH.
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_token-broker"))
        .parent()
        .unwrap()
        .to_owned();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("bash")
        .env("PATH", path)
        .args(["-euo", "pipefail", "-c", &script])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .split("=== ")
        .skip(1)
        .map(|chunk| {
            chunk
                .split_once('\n')
                .map_or("", |(_, rest)| rest)
                .trim()
                .to_owned()
        })
        .collect()
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|_| panic!("not JSON: {text}"))
}

#[test]
fn every_printed_command_works_as_printed() {
    let demo = start_demo();
    assert!(
        !demo.printed.contains("127.0.0.1:0"),
        "ports must be the bound ones:\n{}",
        demo.printed
    );
    let lines = commands(&demo.printed);
    assert_eq!(lines.len(), 34, "{}", demo.printed);
    let outputs = run(&lines);
    let output = |starts: &str| -> &str {
        let index = lines
            .iter()
            .position(|l| l.starts_with(starts))
            .unwrap_or_else(|| panic!("no line starts with {starts}"));
        &outputs[index]
    };
    let nth = |i: usize| outputs[i].as_str();

    let metadata = json(nth(0));
    assert_eq!(
        metadata["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert!(json(nth(1))["resource"].as_str().unwrap().ends_with("/mcp"));
    let registered = json(nth(2));
    assert!(registered["client_id"].is_string(), "{registered}");
    assert_eq!(registered["client_name"], "demo client");
    // initialize without a token: 401, the one request that starts a client's login.
    assert!(nth(3).contains("HTTP/1.1 401"), "{}", nth(3));
    assert!(nth(3).contains("resource_metadata="), "{}", nth(3));
    // The public tool, without a token, on the path that lets tokenless callers in.
    let health = json(nth(4));
    assert_eq!(health["result"]["isError"], false, "{health}");
    assert_eq!(health["result"]["content"][0]["text"], "ok", "{health}");
    let call = json(nth(6));
    let who = &call["result"]["structuredContent"];
    assert_eq!(
        (&who["subject"], &who["scope"], &who["client_id"]),
        (
            &serde_json::json!("demo-service"),
            &serde_json::json!("notes:read"),
            &serde_json::json!("demo-service")
        ),
        "{call}"
    );
    // The MCP server got a token for the API behind it, never the client's.
    assert_eq!(who["received_token"]["audience"], NOTES_API, "{call}");
    // whoami's own budget (5 a minute, one spent by the call above) runs out.
    assert_eq!(nth(7), "200 200 200 200 429 429", "{}", nth(7));
    assert!(nth(8).contains("HTTP/1.1 200"), "{}", nth(8));
    assert!(
        nth(8)
            .to_ascii_lowercase()
            .contains("x-auth-subject: demo-service"),
        "{}",
        nth(8)
    );
    // The remaining budget on an allowed answer (draft-ietf-httpapi-ratelimit-headers).
    assert!(
        nth(8)
            .to_ascii_lowercase()
            .contains("ratelimit: \"upstream_token\";r="),
        "{}",
        nth(8)
    );

    // The line after `echo "$NAME"`: the tool call made with that token.
    let after = |starts: &str| -> &str {
        let index = lines.iter().position(|l| l.starts_with(starts)).unwrap();
        &outputs[index + 1]
    };
    // The ID-JAG from the IdP, traded at the broker: a token for the MCP server, and
    // whoami as alice through the gateway with it.
    let enterprise = json(output("echo \"$ENTERPRISE\""));
    assert_eq!(enterprise["token_type"], "Bearer", "{enterprise}");
    assert_eq!(enterprise["scope"], "notes:read", "{enterprise}");
    assert!(enterprise.get("refresh_token").is_none(), "{enterprise}");
    let call = json(after("echo \"$ENTERPRISE\""));
    let who = &call["result"]["structuredContent"];
    assert_eq!(
        (&who["subject"], &who["client_id"]),
        (
            &serde_json::json!("alice"),
            &serde_json::json!("demo-agent")
        ),
        "{call}"
    );

    // The machine client's own token for the MCP server: itself, no refresh token.
    let machine = json(output("echo \"$MACHINE\""));
    assert_eq!(machine["token_type"], "Bearer", "{machine}");
    assert_eq!(machine["scope"], "notes:read", "{machine}");
    assert!(machine.get("refresh_token").is_none(), "{machine}");
    let call = json(after("echo \"$MACHINE\""));
    let who = &call["result"]["structuredContent"];
    assert_eq!(
        (&who["subject"], &who["client_id"]),
        (
            &serde_json::json!("demo-machine"),
            &serde_json::json!("demo-machine")
        ),
        "{call}"
    );

    // The login: tokens from the code, whoami as alice, then a refresh.
    let login = json(output("echo \"$LOGIN\""));
    assert_eq!(login["token_type"], "Bearer", "{login}");
    assert_eq!(login["scope"], "notes:read");
    assert!(login["refresh_token"].is_string());
    let refresh_line = lines.len() - 6;
    let whoami = json(&outputs[refresh_line - 2]);
    assert_eq!(
        whoami["result"]["structuredContent"]["subject"], "alice",
        "{whoami}"
    );
    assert_eq!(
        whoami["result"]["structuredContent"]["received_token"]["audience"],
        NOTES_API
    );
    let exchanged = json(&outputs[refresh_line - 1]);
    assert_eq!(
        exchanged["issued_token_type"], "urn:ietf:params:oauth:token-type:access_token",
        "{exchanged}"
    );
    assert_eq!(exchanged["scope"], "notes:read");
    let refreshed = json(&outputs[refresh_line]);
    assert!(refreshed["access_token"].is_string(), "{refreshed}");
    assert_ne!(refreshed["refresh_token"], login["refresh_token"]);

    // Operating: alice's grants listed, alice offboarded (curl, then the CLI finding
    // nothing left), and her access token from the login refused at once.
    let grants = output("token-broker admin grants list --subject alice");
    assert!(grants.starts_with("GRANT_ID"), "{grants}");
    assert_eq!(
        grants.lines().count(),
        3,
        "the login's and the ID-JAG's: {grants}"
    );
    let offboarded = json(output("curl -s -X DELETE"));
    assert_eq!(offboarded["revoked"], 2, "{offboarded}");
    assert_eq!(
        output("token-broker admin offboard alice"),
        "revoked 0 grant(s) of subject alice"
    );
    assert_eq!(outputs[lines.len() - 1], "401");
}

/// The broker's address as the demo printed it.
fn broker_url(printed: &str) -> String {
    printed
        .lines()
        .find_map(|l| l.trim().strip_prefix("broker (authorization server)"))
        .map(|rest| rest.trim().to_owned())
        .expect("the demo printed no broker address")
}

#[test]
fn with_a_sqlite_store_the_demo_remembers_its_clients_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite:{}", dir.path().join("demo.db").display());
    let register = |broker: &str| -> serde_json::Value {
        reqwest::blocking::Client::new()
            .post(format!("{broker}/oauth/register"))
            .json(&serde_json::json!({
                "client_name": "kept", "redirect_uris": ["http://127.0.0.1:1/cb"],
                "token_endpoint_auth_method": "none"
            }))
            .send()
            .unwrap()
            .json()
            .unwrap()
    };
    let authorize = |broker: &str, client: &str| -> u16 {
        reqwest::blocking::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .get(format!("{broker}/oauth/authorize"))
            .query(&[
                ("response_type", "code"),
                ("client_id", client),
                ("redirect_uri", "http://127.0.0.1:1/cb"),
                (
                    "code_challenge",
                    "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
                ),
                ("code_challenge_method", "S256"),
                ("scope", "notes:read"),
                // The demo has two resources, so the broker must be told which.
                ("resource", &format!("{broker}/mcp")),
            ])
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    let first = start_demo_with(&["--store", &store]);
    let client = register(&broker_url(&first.printed))["client_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(authorize(&broker_url(&first.printed), &client), 200);
    drop(first);
    // The keys were made beside the file, private.
    let key = dir.path().join("demo.db.store-key");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );

    let second = start_demo_with(&["--store", &store]);
    assert_eq!(
        authorize(&broker_url(&second.printed), &client),
        200,
        "the consent page: the client is still registered"
    );
    // The in-memory default forgets it.
    let memory = start_demo();
    assert_eq!(authorize(&broker_url(&memory.printed), &client), 400);
}
