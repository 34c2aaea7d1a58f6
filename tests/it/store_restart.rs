//! What a crash leaves: `token-broker serve` on a sqlite store, killed with SIGKILL
//! after a login and started again on the same file, key file and address, still
//! knows the client, the grant and the refresh token — and still refuses a spent one
//! — and honours an approval remembered before the crash (the consent cookie key is
//! kept in the store).
//! The same run on the memory store forgets all three, so the test can fail.

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::header::LOCATION;

use crate::login_consent::{authorize_url, open_consent, register, skipped_consent};
use crate::login_flow::{login, redeem, refresh, verify};
use crate::login_remember::remembered_approval;
use crate::support::{
    BrokerProcess, TestDevIdp, UPSTREAM_PLACEHOLDER, config_text, free_port, http,
};

/// Where the broker keeps its state in one run of the scenario.
#[derive(Clone, Copy)]
enum Backend {
    Sqlite,
    Memory,
}

/// One broker deployment: its configuration, fixed address and state directory,
/// started as often as a test likes. The address is chosen before the first start
/// because it is also the issuer (`server.public_url`), which tokens and the
/// provider's redirect name and which must not change across a restart.
struct Deployment {
    base: String,
    config: String,
    store_key: String,
    _dir: tempfile::TempDir,
}

impl Deployment {
    fn new(idp: &TestDevIdp, backend: Backend) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let base = format!("http://127.0.0.1:{port}");
        let at = |name: &str| dir.path().join(name).display().to_string();
        let store = match backend {
            Backend::Sqlite => format!(
                "[store]\nbackend = \"sqlite\"\npath = \"{}\"\n\n\
                 [store.encryption]\nkey_id = \"restart-test\"\n",
                at("store.db")
            ),
            Backend::Memory => "[store]\nbackend = \"memory\"\n".to_owned(),
        };
        // The issuer placeholder begins with the broker's, so it is set aside first.
        let config = config_text()
            .replace(UPSTREAM_PLACEHOLDER, "@UPSTREAM@")
            .replace(
                "listen = \"127.0.0.1:0\"",
                &format!("listen = \"127.0.0.1:{port}\""),
            )
            .replace("http://127.0.0.1:9", &base)
            .replace("@UPSTREAM@", &idp.url)
            // The dev IdP knows the broker as token-broker / token-broker-secret.
            .replace("\"test-secret\"", "\"token-broker-secret\"")
            + &format!(
                "\n[tokens]\nkey_file = \"{}\"\n\n\
                 # A spent refresh token is refused at once (no retry grace), so the\n\
                 # test needs no clock.\n[refresh]\nreuse_grace = \"0s\"\n\n{store}",
                at("signing-keys.json")
            );
        Self {
            base,
            config,
            // A fresh key per deployment: no fixed key to copy from here.
            store_key: STANDARD.encode(rand::random::<[u8; 32]>()),
            _dir: dir,
        }
    }

    /// `token-broker serve`, ready (upstream discovery done) before it returns.
    async fn start(&self) -> BrokerProcess {
        let config = self.config.clone();
        let key = self.store_key.clone();
        let broker = actix_web::rt::task::spawn_blocking(move || {
            BrokerProcess::spawn(&config, &[("TOKEN_BROKER_STORE_KEY", &key)])
        })
        .await
        .unwrap();
        assert_eq!(broker.url(""), self.base, "the broker moved");
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

/// What a client holds after logging in.
struct LoggedIn {
    client: String,
    access: String,
    refresh: String,
}

/// Registers a client and logs it in through the broker at `base`; checks that the
/// access token verifies there.
async fn log_in(base: &str) -> LoggedIn {
    let client = register(base, "Survivor").await;
    let code = login(base, &client, &[]).await;
    let (status, body) = redeem(base, &client, &code).await;
    assert_eq!(status, 200, "{body}");
    let logged_in = LoggedIn {
        client,
        access: body["access_token"].as_str().unwrap().to_owned(),
        refresh: body["refresh_token"].as_str().unwrap().to_owned(),
    };
    assert_eq!(
        verify(base, &logged_in.access).await,
        (200, Some("alice".into()))
    );
    logged_in
}

#[actix_web::test]
async fn a_sqlite_broker_killed_with_sigkill_still_knows_clients_grants_and_refresh_tokens() {
    let started = Instant::now();
    let idp = TestDevIdp::start().await;
    let deployment = Deployment::new(&idp, Backend::Sqlite);
    let base = deployment.base.as_str();
    let mut first = deployment.start().await;
    let held = log_in(base).await;
    let remembered = remembered_approval(base, &held.client).await;
    first.kill9();

    let restarted = Instant::now();
    let second = deployment.start().await;
    let restart_time = restarted.elapsed();
    let logs = || second.logs();

    // The client is known: its authorization request gets the consent page.
    let consent = open_consent(&authorize_url(base, &held.client, &[])).await;
    assert!(consent.page.contains("Survivor"), "{}", consent.page);
    // The approval remembered before the restart still skips it: the cookie key is
    // in the file too (no `consent.cookie_key` is configured).
    assert!(
        skipped_consent(base, &held.client, &remembered)
            .await
            .is_some(),
        "logs:\n{}",
        logs()
    );

    // The old access token still verifies: same signing key, the grant is in the file.
    assert_eq!(
        verify(base, &held.access).await,
        (200, Some("alice".into())),
        "logs:\n{}",
        logs()
    );

    // The refresh token still rotates into a new pair that works.
    let (status, body) = refresh(base, &held.client, &held.refresh).await;
    assert_eq!(status, 200, "{body}\nlogs:\n{}", logs());
    let (access, refresh_token) = (
        body["access_token"].as_str().unwrap(),
        body["refresh_token"].as_str().unwrap(),
    );
    assert_ne!(refresh_token, held.refresh);
    assert_ne!(access, held.access);
    assert_eq!(verify(base, access).await.0, 200);

    // The token it replaced is spent for good.
    let (status, body) = refresh(base, &held.client, &held.refresh).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    eprintln!(
        "store_restart: sqlite restart to ready {restart_time:?}, whole test {:?}",
        started.elapsed()
    );
}

#[actix_web::test]
async fn a_memory_broker_killed_with_sigkill_forgets_clients_grants_and_refresh_tokens() {
    let idp = TestDevIdp::start().await;
    let deployment = Deployment::new(&idp, Backend::Memory);
    let base = deployment.base.as_str();
    let mut first = deployment.start().await;
    let held = log_in(base).await;
    first.kill9();
    let _second = deployment.start().await;

    // An unknown client: the error page, never a redirect.
    let response = http()
        .get(authorize_url(base, &held.client, &[]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert!(response.headers().get(LOCATION).is_none());
    // The signing key survived in its file, but the grant behind the token did not.
    assert_eq!(verify(base, &held.access).await.0, 401);
    let (status, body) = refresh(base, &held.client, &held.refresh).await;
    assert_ne!(status, 200, "{body}");
}
