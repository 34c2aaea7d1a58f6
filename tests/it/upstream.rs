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

#[actix_web::test]
async fn signing_keys_the_broker_cannot_use_are_named_with_why() {
    use actix_web::{App, HttpResponse, HttpServer, web};
    use serde_json::json;

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let discovery = json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/auth"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
    });
    let (x, y) = (
        "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
        "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
    );
    let jwks = json!({"keys": [
        {"kty": "EC", "crv": "P-256", "kid": "good", "x": x, "y": y},
        {"kty": "EC", "crv": "secp256k1", "kid": "k256", "x": x, "y": y},
        {"kty": "EC", "crv": "P-256", "kid": "named-rs", "alg": "RS256", "x": x, "y": y},
        {"kty": "RSA", "use": "enc", "kid": "enc", "n": "sXch", "e": "AQAB"},
    ]});
    let server = HttpServer::new(move || {
        let (discovery, jwks) = (discovery.clone(), jwks.clone());
        App::new()
            .route(
                "/.well-known/openid-configuration",
                web::get().to(move || {
                    let discovery = discovery.clone();
                    async move { HttpResponse::Ok().json(discovery) }
                }),
            )
            .route(
                "/jwks",
                web::get().to(move || {
                    let jwks = jwks.clone();
                    async move { HttpResponse::Ok().json(jwks) }
                }),
            )
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    let handle = server.handle();
    actix_web::rt::spawn(server);

    let (_, out) = check(&issuer, "x").await;
    assert!(
        out.contains("ok    jwks: 1 signing key(s) [good], 2 skipped"),
        "{out}"
    );
    for note in [
        "jwks: key k256: its key type EC with curve secp256k1 is not supported: tokens it signs will be refused",
        "jwks: key named-rs: its alg RS256 does not fit its key type: tokens it signs will be refused",
    ] {
        assert!(out.contains(note), "{note}: {out}");
    }
    assert!(
        !out.contains("key enc"),
        "an encryption key is not a problem: {out}"
    );
    handle.stop(false).await;
}
