//! `token-broker serve` with a minimal configuration — no `[store]`, no `[tokens]`:
//! the broker keeps its state in a sqlite file beside the configuration, sealed with
//! a key it generates there once, so a client registered before `kill -9` is still
//! known after a restart, and tokens it issued still verify. A state directory the
//! broker cannot write, or a key file others can read, stops it at start-up with the
//! reason.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::login_consent::{authorize_url, open_consent, register};
use crate::login_flow::{login, redeem, verify};
use crate::support::{
    BrokerProcess, TestDevIdp, UPSTREAM_PLACEHOLDER, binary, config_text, free_port, http,
};

/// A configuration file with nothing about state in it, in a directory of its own,
/// on a fixed address (the issuer must not change across restarts).
struct Minimal {
    dir: tempfile::TempDir,
    config: PathBuf,
    base: String,
}

impl Minimal {
    fn new(idp: &TestDevIdp) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let base = format!("http://127.0.0.1:{port}");
        let text = config_text()
            .replace(UPSTREAM_PLACEHOLDER, "@UPSTREAM@")
            .replace(
                "listen = \"127.0.0.1:0\"",
                &format!("listen = \"127.0.0.1:{port}\""),
            )
            .replace("http://127.0.0.1:9", &base)
            .replace("@UPSTREAM@", &idp.url)
            .replace("\"test-secret\"", "\"token-broker-secret\"");
        assert!(!text.contains("[store]") && !text.contains("[tokens]"));
        let config = dir.path().join("broker.toml");
        std::fs::write(&config, text).unwrap();
        Self { dir, config, base }
    }

    fn state(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    async fn start(&self) -> BrokerProcess {
        let config = self.config.clone();
        let broker =
            actix_web::rt::task::spawn_blocking(move || BrokerProcess::spawn_file(&config, &[]))
                .await
                .unwrap();
        for _ in 0..200 {
            let ready = http().get(broker.url("/readyz")).send().await;
            if ready.is_ok_and(|r| r.status() == 200) {
                return broker;
            }
            actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the broker never became ready; logs:\n{}", broker.logs());
    }
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[actix_web::test]
async fn a_minimal_configuration_keeps_clients_and_tokens_across_a_kill_9() {
    let idp = TestDevIdp::start().await;
    let deployment = Minimal::new(&idp);
    let base = deployment.base.as_str();
    let mut first = deployment.start().await;
    let client = register(base, "Durable by default").await;
    let code = login(base, &client, &[]).await;
    let (status, body) = redeem(base, &client, &code).await;
    assert_eq!(status, 200, "{body}");
    let access = body["access_token"].as_str().unwrap().to_owned();

    let key_file = deployment.state("token-broker.db.store-key");
    assert!(deployment.state("token-broker.db").exists());
    assert_eq!(mode(&key_file), 0o600);
    let key = std::fs::read(&key_file).unwrap();
    assert!(
        first.logs().contains("created the store key file"),
        "{}",
        first.logs()
    );
    first.kill9();

    let second = deployment.start().await;
    let consent = open_consent(&authorize_url(base, &client, &[])).await;
    assert!(
        consent.page.contains("Durable by default"),
        "{}",
        consent.page
    );
    // The signing key lives in the same file: the token signed before still verifies.
    assert_eq!(
        verify(base, &access).await,
        (200, Some("alice".into())),
        "logs:\n{}",
        second.logs()
    );
    assert_eq!(
        std::fs::read(&key_file).unwrap(),
        key,
        "the key file is reused"
    );
    assert!(!second.logs().contains("created the store key file"));
    assert!(!second.logs().contains("created the first signing key"));
}

/// `serve` that is expected to stop at start-up: its exit code and standard error.
fn serve_failing(config: &Path, as_nobody: bool) -> (Option<i32>, String) {
    let mut command = binary();
    command.args(["serve", "--config"]).arg(config);
    if as_nobody {
        use std::os::unix::process::CommandExt;
        command.uid(65_534).gid(65_534);
    }
    let out = command.output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[actix_web::test]
async fn a_state_directory_the_broker_cannot_write_stops_it_with_the_reason() {
    use std::os::unix::fs::PermissionsExt;

    let idp = TestDevIdp::start().await;
    let deployment = Minimal::new(&idp);
    let dir = deployment.dir.path();
    // Root writes anywhere: then the broker runs as `nobody` in a directory it may
    // read but not write.
    let root =
        std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(&deployment.config).unwrap()) == 0;
    let readonly = if root { 0o755 } else { 0o555 };
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(readonly)).unwrap();
    let config = deployment.config.clone();
    let (code, stderr) = actix_web::rt::task::spawn_blocking(move || serve_failing(&config, root))
        .await
        .unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot create the store key file"),
        "{stderr}"
    );
    assert!(stderr.contains(&dir.display().to_string()), "{stderr}");
    assert!(stderr.contains("make it writable"), "{stderr}");
}

#[actix_web::test]
async fn a_store_key_file_others_can_read_stops_the_broker() {
    use std::os::unix::fs::PermissionsExt;

    let idp = TestDevIdp::start().await;
    let deployment = Minimal::new(&idp);
    let mut first = deployment.start().await;
    first.kill9();
    let key_file = deployment.state("token-broker.db.store-key");
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let config = deployment.config.clone();
    let (code, stderr) = actix_web::rt::task::spawn_blocking(move || serve_failing(&config, false))
        .await
        .unwrap();
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("chmod 600 {}", key_file.display())),
        "{stderr}"
    );
}
