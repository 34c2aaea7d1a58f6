//! A real Caddy running docker/Caddyfile (read from the file, hosts replaced) in front
//! of the demo's MCP server, asking the broker through `forward_auth`: the broker's
//! challenge reaches the client, a token reaches the MCP server with the verified
//! identity and nothing a client wrote, and the single-host deployment works though
//! Caddy's Host is not the resource URI's (the path alone decides). Caddy comes from
//! `scripts/ensure-caddy.sh`; without it this fails, never skips.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::json;

use crate::nginx::start_mcp_server;
use crate::support::{TestBroker, config_text, http};

struct Caddy {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Caddy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn caddy_binary() -> PathBuf {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join("caddy"))
        .find(|path| path.is_file())
        .expect("caddy not found on PATH: run `bash scripts/ensure-caddy.sh`")
}

/// docker/Caddyfile with the broker's and the MCP server's addresses, served over
/// plain HTTP on a free port, with no admin endpoint.
async fn start_caddy(broker: &str, mcp: &str) -> Caddy {
    let example =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docker/Caddyfile"))
            .unwrap();
    for needle in ["mcp.example.com {", "broker:8080", "mcp-server:3000"] {
        assert!(example.contains(needle), "docker/Caddyfile lost `{needle}`");
    }
    for _ in 0..5 {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = format!(
            "{{\n\tadmin off\n\tauto_https off\n}}\n{}",
            example
                .replace("mcp.example.com {", &format!("http://127.0.0.1:{port} {{"))
                .replace("broker:8080", broker)
                .replace("mcp-server:3000", mcp)
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("Caddyfile");
        std::fs::write(&path, config).unwrap();
        let log = std::fs::File::create(dir.path().join("caddy.log")).unwrap();
        let child = Command::new(caddy_binary())
            .args(["run", "--adapter", "caddyfile", "--config"])
            .arg(&path)
            .env("HOME", dir.path())
            .env("XDG_DATA_HOME", dir.path())
            .env("XDG_CONFIG_HOME", dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut caddy = Caddy {
            child,
            url: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        };
        for _ in 0..400 {
            if caddy.child.try_wait().unwrap().is_some() {
                break;
            }
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return caddy;
            }
            actix_web::rt::time::sleep(Duration::from_millis(25)).await;
        }
        let log = std::fs::read_to_string(caddy._dir.path().join("caddy.log")).unwrap_or_default();
        assert!(
            log.contains("address already in use"),
            "caddy did not start:\n{log}"
        );
    }
    panic!("caddy never got a free port");
}

fn all(response: &reqwest::Response, name: &str) -> Vec<String> {
    response
        .headers()
        .get_all(name)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

#[actix_web::test]
async fn caddy_forward_auth_as_documented_challenges_and_passes_the_verified_identity() {
    let text = format!(
        "{}\n[forward_auth]\nuri_header = \"X-Forwarded-Uri\"\nmethod_header = \"X-Forwarded-Method\"\n",
        config_text()
    );
    let broker = TestBroker::start_with(&text, |_| {}).await;
    let (mcp, reached) = start_mcp_server();
    let caddy = start_caddy(broker.url.trim_start_matches("http://"), &mcp).await;
    let tools_list = |authorization: Option<String>| {
        let mut request = http()
            .post(format!("{}/mcp", caddy.url))
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-11-25")
            // A client cannot claim an identity or a token: Caddy removes these.
            .header("x-auth-subject", "mallory")
            .header("x-auth-access-token", "forged")
            // Nor move the check: Caddy sets X-Forwarded-Uri itself.
            .header("x-forwarded-uri", "/elsewhere")
            .body(
                json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {} })
                    .to_string(),
            );
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        request.send()
    };

    let refused = tools_list(None).await.unwrap();
    assert_eq!(refused.status(), 401);
    let challenge = all(&refused, "www-authenticate").join(" ");
    assert!(
        challenge.contains(
            "resource_metadata=\"http://127.0.0.1:9/.well-known/oauth-protected-resource/mcp\""
        ),
        "{challenge}"
    );
    assert_eq!(reached.load(std::sync::atomic::Ordering::SeqCst), 0);

    let token = broker
        .idp
        .service_token("http://127.0.0.1:9/mcp", "notes:read")
        .await;
    let response = tools_list(Some(format!("Bearer {token}"))).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(all(&response, "x-seen-auth-subject"), ["demo-service"]);
    assert_eq!(all(&response, "x-seen-auth-scopes"), ["notes:read"]);
    assert!(all(&response, "x-seen-auth-access-token").is_empty());
    assert_eq!(reached.load(std::sync::atomic::Ordering::SeqCst), 1);

    // The metadata the challenge links to, through Caddy.
    let metadata = http()
        .get(format!(
            "{}/.well-known/oauth-protected-resource/mcp",
            caddy.url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(metadata.status(), 200);
    drop(caddy);
    broker.stop().await;
}
