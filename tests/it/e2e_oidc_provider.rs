//! End to end against a real, certified OpenID provider: the npm package
//! `oidc-provider` (fixtures/oidc-provider, installed by scripts/oidc-provider-setup.sh).
//! A missing rig fails these tests; it never skips them.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use token_broker::server;

use crate::support::{
    UPSTREAM_PLACEHOLDER, broker_config_file, client_credentials, config_text, http, load,
    run_binary,
};

/// The oidc-provider process; killed on drop.
pub struct Rig {
    child: Child,
    pub issuer: String,
}

impl Drop for Rig {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn start_rig() -> Rig {
    start_rig_with(&[])
}

/// [`start_rig`] with environment variables for provider.mjs.
pub fn start_rig_with(env: &[(&str, &str)]) -> Rig {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/oidc-provider");
    let node = dir.join("node_modules/.bin/node");
    assert!(
        node.exists() && dir.join("node_modules/oidc-provider").exists(),
        "the oidc-provider rig is not installed: run `bash scripts/oidc-provider-setup.sh` (scripts/test.sh does)"
    );
    let mut child = Command::new(node)
        .arg(dir.join("provider.mjs"))
        .args(["--port", "0"])
        .envs(env.iter().copied())
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

/// An oidc-provider that signs ID tokens and JWT access tokens with ES512 (ECDSA
/// P-521, as a Keycloak realm or ORY Hydra can be set to), with a P-521 key published
/// beside its RSA key. jsonwebtoken does not verify ES512; `upstream::jws` does.
pub fn start_es512_rig() -> Rig {
    start_rig_with(&[("OIDC_PROVIDER_SIGNING_ALG", "ES512")])
}

/// The `alg` a compact JWS's header names.
pub(crate) fn alg_of(token: &str) -> String {
    let header = token.split('.').next().unwrap();
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
    header["alg"].as_str().unwrap().to_owned()
}

/// `check-upstream` against `rig`, which publishes `keys` signing keys, all usable.
async fn check_upstream_passes(rig: &Rig, keys: usize) {
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
    assert!(
        stdout.contains(&format!("ok    jwks: {keys} signing key(s)"))
            && stdout.contains(", 0 skipped"),
        "{stdout}"
    );
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
async fn check_upstream_passes_against_oidc_provider() {
    check_upstream_passes(&start_rig(), 1).await;
}

#[actix_web::test]
async fn check_upstream_verifies_an_es512_token() {
    check_upstream_passes(&start_es512_rig(), 2).await;
}

/// A client-credentials access token of the rig for `client_id` (its secret is
/// `<client_id>-secret`), for the broker's resource.
pub(crate) async fn rig_service_token(
    rig: &Rig,
    client_id: &str,
    resource: &str,
    scope: &str,
) -> String {
    let token_url = format!("{}/token", rig.issuer);
    let secret = format!("{client_id}-secret");
    client_credentials(&token_url, client_id, &secret, resource, scope).await
}

/// The broker's own client-credentials token at `rig` for `resource`, signed with `alg`.
async fn provider_token(rig: &Rig, resource: &str, alg: &str) -> String {
    let access = rig_service_token(rig, "token-broker", resource, "notes:read").await;
    assert_eq!(alg_of(&access), alg);
    access
}

/// A broker in front of `rig` accepts `rig`'s `alg` access tokens for its resource,
/// and refuses one for another resource and one with a changed signature.
async fn the_broker_verifies_tokens_of(rig: &Rig, alg: &str) {
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
    let verify = |token: String| {
        http()
            .get(format!("{url}/auth/verify"))
            .header("X-Original-URI", "/mcp")
            .bearer_auth(token)
            .send()
    };
    let access = provider_token(rig, "http://127.0.0.1:9/mcp", alg).await;
    let ok = verify(access.clone()).await.unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.headers()["x-auth-subject"], "token-broker");
    assert_eq!(ok.headers()["x-auth-scopes"], "notes:read");
    // A token of the same provider for another resource is refused.
    let other = provider_token(rig, "https://other.example/api", alg).await;
    assert_eq!(verify(other).await.unwrap().status(), 401);
    // So is the token with its signature changed.
    let mut forged = access.into_bytes();
    let at = forged.len() - 3;
    forged[at] = if forged[at] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    assert_eq!(verify(forged).await.unwrap().status(), 401);
    handle.stop(false).await;
}

#[actix_web::test]
async fn the_broker_verifies_tokens_issued_by_oidc_provider() {
    the_broker_verifies_tokens_of(&start_rig(), "RS256").await;
}

#[actix_web::test]
async fn the_broker_verifies_es512_tokens_issued_by_oidc_provider() {
    the_broker_verifies_tokens_of(&start_es512_rig(), "ES512").await;
}

#[actix_web::test]
async fn a_registration_is_proxied_to_oidc_provider() {
    let rig = start_rig();
    let text = config_text()
        .replace(UPSTREAM_PLACEHOLDER, &rig.issuer)
        .replace("\"test-secret\"", "\"token-broker-secret\"")
        .replace(
            "[upstream]",
            "[registration]\nmode = \"proxy\"\n\n[upstream]",
        );
    let running = server::start_with(
        Arc::new(load(&text)),
        TcpListener::bind("127.0.0.1:0").unwrap(),
        token_broker::clock::Clock::system(),
        |_| {},
    )
    .unwrap();
    let url = format!("http://{}", running.addr);
    let handle = running.handle.clone();
    let state = running.state.clone();
    actix_web::rt::spawn(running.server);
    token_broker::server::startup_checks(&state).await.unwrap();

    let response = http()
        .post(format!("{url}/oauth/register"))
        .json(&serde_json::json!({
            "redirect_uris": ["http://localhost:6274/oauth/callback"],
            "token_endpoint_auth_method": "none",
            "client_name": "MCP Inspector"
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let answer: Value = response.json().await.unwrap();
    let stored = state
        .store
        .get_client(answer["client_id"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    let token_broker::store::ClientOrigin::Proxied {
        upstream_client_id,
        registration_client_uri: Some(uri),
        registration_access_token: Some(rat),
        ..
    } = stored.origin
    else {
        panic!("not proxied with RFC 7592 management: {:?}", stored.origin);
    };
    // oidc-provider knows the client, with the broker's callback.
    let upstream: Value = http()
        .get(uri)
        .bearer_auth(rat)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(upstream["client_id"], upstream_client_id);
    assert_eq!(
        upstream["redirect_uris"],
        serde_json::json!(["http://127.0.0.1:9/oauth/callback"])
    );
    handle.stop(false).await;
}
