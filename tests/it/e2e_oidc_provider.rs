//! End to end against a real, certified OpenID provider: the npm package
//! `oidc-provider` (fixtures/oidc-provider, installed by scripts/oidc-provider-setup.sh).
//! A missing rig fails these tests; it never skips them.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use serde_json::Value;
use token_broker::server;

use crate::support::{
    UPSTREAM_PLACEHOLDER, broker_config_file, config_text, http, load, run_binary,
};

/// The oidc-provider process; killed on drop.
struct Rig {
    child: Child,
    issuer: String,
}

impl Drop for Rig {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_rig() -> Rig {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/oidc-provider");
    let node = dir.join("node_modules/.bin/node");
    assert!(
        node.exists() && dir.join("node_modules/oidc-provider").exists(),
        "the oidc-provider rig is not installed: run `bash scripts/oidc-provider-setup.sh` (scripts/test.sh does)"
    );
    let mut child = Command::new(node)
        .arg(dir.join("provider.mjs"))
        .args(["--port", "0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let started: Value = serde_json::from_str(&line)
        .unwrap_or_else(|_| panic!("oidc-provider printed {line:?} instead of its issuer"));
    Rig {
        issuer: started["issuer"].as_str().unwrap().to_owned(),
        child,
    }
}

#[actix_web::test]
async fn check_upstream_passes_against_oidc_provider() {
    let rig = start_rig();
    let (_dir, path) = broker_config_file(&rig.issuer, "token-broker-secret");
    let out = run_binary(vec![
        "check-upstream".into(),
        "--config".into(),
        path.display().to_string(),
    ])
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("ok    discovery: OpenidConfiguration document"),
        "{stdout}"
    );
    assert!(stdout.contains("ok    jwks: 1 signing key(s)"), "{stdout}");
    assert!(
        stdout.contains("ok    client credentials accepted: Bearer token"),
        "{stdout}"
    );
    assert!(
        stdout.contains("ok    token signature verified with key"),
        "{stdout}"
    );
}

#[actix_web::test]
async fn the_broker_verifies_tokens_issued_by_oidc_provider() {
    let rig = start_rig();
    let text = config_text()
        .replace(UPSTREAM_PLACEHOLDER, &rig.issuer)
        .replace("\"test-secret\"", "\"token-broker-secret\"");
    let running = server::start_with(
        Arc::new(load(&text)),
        TcpListener::bind("127.0.0.1:0").unwrap(),
        token_broker::clock::Clock::system(),
        |_| {},
    )
    .unwrap();
    let url = format!("http://{}", running.addr);
    let handle = running.handle.clone();
    actix_web::rt::spawn(running.server);

    // The broker fetched the provider's discovery document and JWKS.
    assert_eq!(
        http()
            .get(format!("{url}/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    let token: Value = http()
        .post(format!("{}/token", rig.issuer))
        .basic_auth("token-broker", Some("token-broker-secret"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("resource", "http://127.0.0.1:9/mcp"),
            ("scope", "notes:read"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = token["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no token: {token}"));
    let verify = |authorization: String| {
        http()
            .get(format!("{url}/auth/verify"))
            .header("X-Forwarded-Uri", "/mcp")
            .header("Authorization", authorization)
            .send()
    };
    let ok = verify(format!("Bearer {access}")).await.unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.headers()["x-auth-subject"], "token-broker");
    assert_eq!(ok.headers()["x-auth-scopes"], "notes:read");
    // A token of the same provider for another resource is refused.
    let other: Value = http()
        .post(format!("{}/token", rig.issuer))
        .basic_auth("token-broker", Some("token-broker-secret"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("resource", "https://other.example/api"),
            ("scope", "notes:read"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let refused = verify(format!(
        "Bearer {}",
        other["access_token"].as_str().unwrap()
    ))
    .await
    .unwrap();
    assert_eq!(refused.status(), 401);
    handle.stop(false).await;
}
