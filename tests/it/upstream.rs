//! `check-upstream` against a real provider: the development IdP here, oidc-provider in
//! `e2e_oidc_provider`.

use crate::support::{TestDevIdp, broker_config_file, run_binary};

async fn check(issuer: &str, secret: &str) -> (bool, String) {
    let (_dir, path) = broker_config_file(issuer, secret);
    let out = run_binary(vec![
        "check-upstream".into(),
        "--config".into(),
        path.display().to_string(),
    ])
    .await;
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[actix_web::test]
async fn a_working_provider_passes_every_step() {
    let idp = TestDevIdp::start().await;
    let (ok, out) = check(&idp.url, "token-broker-secret").await;
    assert!(ok, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("ok    discovery: OpenidConfiguration document"),
        "{out}"
    );
    assert!(
        lines[1].starts_with("ok    jwks: 1 signing key(s)"),
        "{out}"
    );
    assert!(
        lines[2].starts_with("ok    client credentials accepted: Bearer token"),
        "{out}"
    );
    assert!(
        lines[3].starts_with("ok    token signature verified with key"),
        "{out}"
    );
    // One call each: discovery, JWKS, token.
    assert_eq!(idp.calls("discovery").await, 1);
    assert_eq!(idp.calls("jwks").await, 1);
    assert_eq!(idp.calls("token:client_credentials").await, 1);
    idp.stop().await;
}

#[actix_web::test]
async fn a_wrong_secret_fails_naming_the_client() {
    let idp = TestDevIdp::start().await;
    let (ok, out) = check(&idp.url, "not-the-secret").await;
    assert!(!ok);
    assert!(
        out.contains(
            "FAIL  client credentials for `token-broker`: the provider answered `invalid_client`"
        ),
        "{out}"
    );
    idp.stop().await;
}

#[actix_web::test]
async fn an_issuer_that_differs_by_a_slash_is_refused() {
    let idp = TestDevIdp::start().await;
    let (ok, out) = check(&format!("{}/", idp.url), "token-broker-secret").await;
    assert!(!ok);
    assert!(out.contains("issuer mismatch"), "{out}");
    idp.stop().await;
}

#[actix_web::test]
async fn an_unreachable_provider_is_reported() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (ok, out) = check(&format!("http://127.0.0.1:{port}"), "x").await;
    assert!(!ok);
    assert!(out.contains("FAIL  discovery: cannot reach"), "{out}");
}
