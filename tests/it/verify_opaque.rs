//! Credentials that are not upstream JWTs: static API keys (configured by hash) and
//! opaque upstream tokens verified by introspection.

use std::time::Duration;

use token_broker::dev_idp::DevIdpConfig;
use token_broker::tokens::api_keys::{generate_key, hash_key};

use crate::support::{TestBroker, binary, config_text, http};

async fn forward(broker: &TestBroker, token: &str) -> reqwest::Response {
    http()
        .get(broker.at("/auth/verify"))
        .header("X-Original-URI", "/mcp")
        .header("Authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap()
}

fn with_keys(keys: &str) -> String {
    format!("{}\n{keys}", config_text())
}

#[actix_web::test]
async fn an_api_key_acts_as_its_configured_subject() {
    let key = generate_key();
    let text = with_keys(&format!(
        "[[api_keys]]\nname = \"ci\"\nhash = \"{}\"\nsubject = \"service:ci\"\nscopes = [\"notes:read\"]\n",
        hash_key(&key)
    ));
    let broker = TestBroker::start_with(&text, |_| {}).await;
    let response = forward(&broker, &key).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-auth-subject"], "service:ci");
    assert_eq!(response.headers()["x-auth-scopes"], "notes:read");
    assert_eq!(response.headers()["x-auth-client-id"], "api-key:ci");
    // One character off is not the key.
    let mut near = key.clone();
    near.pop();
    near.push('x');
    assert_eq!(forward(&broker, &near).await.status(), 401);
    broker.stop().await;
}

#[actix_web::test]
async fn inactive_expired_and_misplaced_keys_are_refused() {
    let (off, expiring, elsewhere) = (generate_key(), generate_key(), generate_key());
    let soon =
        humantime::format_rfc3339_seconds(std::time::SystemTime::now() + Duration::from_secs(3600));
    let text = with_keys(&format!(
        r#"
[[api_keys]]
name = "off"
hash = "{}"
subject = "s1"
scopes = ["notes:read"]
active = false

[[api_keys]]
name = "expiring"
hash = "{}"
subject = "s2"
scopes = ["notes:read"]
expires_at = "{soon}"

[[api_keys]]
name = "elsewhere"
hash = "{}"
subject = "s3"
scopes = ["notes:read"]
resources = ["https://other.example/mcp"]
"#,
        hash_key(&off),
        hash_key(&expiring),
        hash_key(&elsewhere)
    ));
    let broker = TestBroker::start_with(&text, |_| {}).await;
    assert_eq!(forward(&broker, &off).await.status(), 401);
    assert_eq!(forward(&broker, &expiring).await.status(), 200);
    broker.clock.advance(Duration::from_secs(3601));
    assert_eq!(forward(&broker, &expiring).await.status(), 401);
    assert_eq!(forward(&broker, &elsewhere).await.status(), 401);
    broker.stop().await;
}

#[actix_web::test]
async fn a_key_without_the_required_scope_is_403() {
    let key = generate_key();
    let text = with_keys(&format!(
        "[[api_keys]]\nhash = \"{}\"\nsubject = \"s\"\nscopes = [\"other\"]\n",
        hash_key(&key)
    ));
    let broker = TestBroker::start_with(&text, |_| {}).await;
    assert_eq!(forward(&broker, &key).await.status(), 403);
    broker.stop().await;
}

#[test]
fn hash_key_prints_the_configured_form() {
    let out = binary().args(["hash-key", "--generate"]).output().unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    let key = stdout
        .lines()
        .next()
        .unwrap()
        .strip_prefix("key:  ")
        .unwrap()
        .to_owned();
    let hash = stdout
        .lines()
        .last()
        .unwrap()
        .strip_prefix("hash: ")
        .unwrap()
        .to_owned();
    assert_eq!(hash, hash_key(&key));

    use std::io::Write;
    let mut child = binary()
        .arg("hash-key")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{key}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        format!("hash: {hash}")
    );
}

pub(crate) async fn opaque_token(broker: &TestBroker, scope: &str) -> String {
    let token = broker
        .idp
        .service_token("http://127.0.0.1:9/mcp", scope)
        .await;
    assert!(!token.contains('.'), "expected an opaque token");
    token
}

#[actix_web::test]
async fn opaque_tokens_are_introspected_once_and_cached() {
    let idp = DevIdpConfig {
        opaque_access_tokens: true,
        ..Default::default()
    };
    let broker = TestBroker::start_with_idp(&config_text(), idp, |_| {}).await;
    let token = opaque_token(&broker, "notes:read").await;
    for _ in 0..3 {
        let response = forward(&broker, &token).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["x-auth-subject"], "demo-service");
    }
    assert_eq!(broker.idp.calls("introspect").await, 1);
    // Past the cache TTL (60 s) the provider is asked again.
    broker.clock.advance(Duration::from_secs(61));
    assert_eq!(forward(&broker, &token).await.status(), 200);
    assert_eq!(broker.idp.calls("introspect").await, 2);
    broker.stop().await;
}

#[actix_web::test]
async fn revoked_and_unknown_opaque_tokens_are_refused() {
    let idp = DevIdpConfig {
        opaque_access_tokens: true,
        ..Default::default()
    };
    let broker = TestBroker::start_with_idp(&config_text(), idp, |_| {}).await;
    let token = opaque_token(&broker, "notes:read").await;
    http()
        .post(format!("{}/revoke", broker.idp.url))
        .basic_auth("demo-service", Some("demo-service-secret"))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(forward(&broker, &token).await.status(), 401);
    assert_eq!(
        forward(&broker, "never-issued-opaque-token").await.status(),
        401
    );
    broker.stop().await;
}

#[actix_web::test]
async fn introspection_can_be_turned_off() {
    let idp = DevIdpConfig {
        opaque_access_tokens: true,
        ..Default::default()
    };
    let text = config_text().replace(
        "[upstream]",
        "[verify]\nintrospection = false\n\n[upstream]",
    );
    let broker = TestBroker::start_with_idp(&text, idp, |_| {}).await;
    let token = opaque_token(&broker, "notes:read").await;
    assert_eq!(forward(&broker, &token).await.status(), 401);
    assert_eq!(broker.idp.calls("introspect").await, 0);
    broker.stop().await;
}
