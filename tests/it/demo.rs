//! `token-broker demo` as a newcomer runs it: start it, then run every command it
//! prints, exactly as printed, in one shell.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

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
    let mut child = binary()
        .args([
            "demo",
            "--listen",
            "127.0.0.1:0",
            "--idp-listen",
            "127.0.0.1:0",
        ])
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

/// The shell lines of the instructions: indented commands, comments dropped.
fn commands(printed: &str) -> Vec<String> {
    printed
        .lines()
        .filter(|l| l.starts_with("  curl") || l.starts_with("  TOKEN="))
        .map(|l| l.trim().to_owned())
        .collect()
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
    assert_eq!(lines.len(), 7, "{}", demo.printed);
    // Run them all in one shell, as a person pasting them would; mark each output.
    let script: String = lines
        .iter()
        .enumerate()
        .map(|(i, l)| format!("echo '=== {i}'\n{l}\necho\n"))
        .collect();
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let outputs: Vec<&str> = stdout.split("=== ").skip(1).collect();

    let metadata: serde_json::Value = serde_json::from_str(outputs[0][2..].trim()).unwrap();
    assert_eq!(
        metadata["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    let resource: serde_json::Value = serde_json::from_str(outputs[1][2..].trim()).unwrap();
    assert!(resource["resource"].as_str().unwrap().ends_with("/mcp"));
    let registered: serde_json::Value = serde_json::from_str(outputs[2][2..].trim()).unwrap();
    assert!(registered["client_id"].is_string(), "{registered}");
    assert_eq!(registered["client_name"], "demo client");
    let outputs = &outputs[1..];
    assert!(outputs[2].contains("HTTP/1.1 401"), "{}", outputs[2]);
    assert!(outputs[2].contains("resource_metadata="), "{}", outputs[2]);
    let call: serde_json::Value = serde_json::from_str(outputs[4][2..].trim()).unwrap();
    assert_eq!(
        call["result"]["structuredContent"],
        serde_json::json!({"subject": "demo-service", "scope": "notes:read",
                           "scopes": ["notes:read"], "client_id": "demo-service"})
    );
    assert!(outputs[5].contains("HTTP/1.1 200"), "{}", outputs[5]);
    assert!(
        outputs[5]
            .to_ascii_lowercase()
            .contains("x-auth-subject: demo-service"),
        "{}",
        outputs[5]
    );
}
