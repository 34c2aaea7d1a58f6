//! `token-broker serve` on Redis over TLS (`rediss://`, `[store.tls]`): two replicas
//! on a `redis-server` that speaks TLS only and requires client certificates act as
//! one broker (a login moves between them, a revocation reaches both over pub/sub),
//! and `serve` refuses to start — exit code and reason — on a Redis whose
//! certificate its CA did not sign, or that wants a client certificate it lacks.

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::replicas::{Replicas, Shared, a_login_moves_between, replica_config};
use crate::support::{TestDevIdp, binary};

#[path = "../../src/store/redis/tests/harness.rs"]
#[allow(dead_code)]
mod harness;

use self::harness::RedisServer;
use self::harness::pki::Pki;

#[actix_web::test]
async fn replicas_on_a_tls_redis_act_as_one_broker() {
    let redis = RedisServer::start_tls(true);
    let idp = TestDevIdp::start().await;
    let replicas = Replicas::start_with(
        &idp,
        Shared::Redis(redis.url()),
        &format!("\n{}", redis.store_tls_section()),
    )
    .await;
    a_login_moves_between(&replicas).await;
    // What they shared is in the TLS Redis.
    let keys: Vec<String> = ::redis::cmd("KEYS")
        .arg("replicas:*")
        .query(&mut redis.connection())
        .unwrap();
    assert!(keys.iter().any(|k| k.contains("grant")), "{keys:?}");
}

/// Runs `serve` on `config`; its exit code and output once it exits (bounded).
fn serve_until_exit(config: &str) -> (Option<i32>, String) {
    serve_until_exit_with(config, &[])
}

/// [`serve_until_exit`] with `env` set for the broker.
fn serve_until_exit_with(config: &str, env: &[(&str, &str)]) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broker.toml");
    std::fs::write(&path, config).unwrap();
    let mut child: Child = binary()
        .envs(env.iter().copied())
        .arg("serve")
        .arg("--config")
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let output = child.wait_with_output().unwrap();
            panic!(
                "serve did not refuse to start: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn serve_refuses_a_redis_it_cannot_trust_or_that_refuses_it() {
    let redis = RedisServer::start_tls(true);
    let base = replica_config("http://127.0.0.1:9", "http://127.0.0.1:9", &redis.url());
    let dir = tempfile::tempdir().unwrap();
    let stranger = Pki::generate().write(dir.path());
    let files = &redis.tls().files;

    let wrong_ca = format!("{base}\n{}", redis.store_tls_section_trusting(&stranger.ca));
    let (code, stderr) = serve_until_exit(&wrong_ca);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("cannot open the store"), "{stderr}");
    assert!(stderr.contains("TLS handshake"), "{stderr}");
    assert!(stderr.contains("store.tls.ca"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    let no_client_cert = format!(
        "{base}\n[store.tls]\nca = \"file:{}\"\n",
        files.ca.display()
    );
    let (code, stderr) = serve_until_exit(&no_client_cert);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("client_cert"), "{stderr}");
    // Never a silent plain-text fallback: the plain port is closed (`--port 0`).
    assert!(!stderr.contains("listening"), "{stderr}");
}

/// A `rediss://` url on Redis's plain-text port: the TLS greeting goes unanswered
/// (Redis waits for the end of a "command"), which alone would look like an outage;
/// `serve` asks the port a plain `PING`, and refuses to start naming the mistake.
#[test]
fn serve_refuses_a_rediss_url_on_a_plain_text_port() {
    let redis = RedisServer::start();
    let plain = redis.url();
    let url = plain.replacen("redis://", "rediss://", 1);
    assert_ne!(url, plain);
    let config = replica_config("http://127.0.0.1:9", "http://127.0.0.1:9", &url);
    let (code, stderr) = serve_until_exit(&config);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("answers plain-text Redis"), "{stderr}");
    assert!(stderr.contains("tls-port"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// The redis client reads the system's CA store on every TLS connection, even with
/// `store.tls.ca` set, and fails the connection when it cannot: `serve` refuses to
/// start naming that, instead of running with a store that never connects, and
/// `check-config` says the same before a deployment.
#[test]
fn a_system_ca_store_the_redis_client_cannot_read_is_reported() {
    let redis = RedisServer::start_tls(true);
    let base = replica_config("http://127.0.0.1:9", "http://127.0.0.1:9", &redis.url());
    let config = format!("{base}\n{}", redis.store_tls_section());
    let missing = [("SSL_CERT_FILE", "/nonexistent/ca.pem")];
    let (code, stderr) = serve_until_exit_with(&config, &missing);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("cannot open the store"), "{stderr}");
    let named = |text: &str| {
        text.contains("the system's CA certificates cannot be read")
            && text.contains("/nonexistent/ca.pem")
            && text.contains("SSL_CERT_FILE")
    };
    assert!(named(&stderr), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broker.toml");
    std::fs::write(&path, &config).unwrap();
    let check = |env: &[(&str, &str)]| {
        binary()
            .envs(env.iter().copied())
            .arg("check-config")
            .arg("--config")
            .arg(&path)
            .output()
            .unwrap()
    };
    let refused = check(&missing);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(named(&stderr), "{stderr}");
    assert!(refused.stdout.is_empty(), "no `ok`");
    // The same file with the machine's own store is fine.
    let passed = check(&[]);
    assert!(passed.status.success(), "{passed:?}");
    assert!(String::from_utf8_lossy(&passed.stdout).starts_with("ok"));
}
