//! Two `token-broker serve` processes on one Redis act as one broker: a login started
//! on replica A continues on B (consent and callback), its code is redeemed on A, the
//! refresh token works on B, a code redeemed on A is a replay on B, and the replay's
//! revocation reaches A. (`replicas_exchange` runs exchanges over the same two.)
//!
//! Both replicas share what docker/replica.toml says they must: the store (which
//! also holds the signing keys), its key, the cookie key and the issuer (A's address stands in for the
//! proxy's). Redis is a `redis-server` of the test's own on a free port; the
//! development IdP runs in the test process.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::login_consent::{answer, authorize_url, location, open_consent, query, register};
use crate::login_flow::{redeem, refresh, verify};
use crate::support::{BrokerProcess, TestDevIdp, free_port, http};

/// A redis-server on a free loopback port, nothing persisted; killed when dropped.
pub(crate) struct Redis {
    pub(crate) port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Redis {
    pub(crate) fn start() -> Self {
        Self::start_on(free_port())
    }

    /// On `port` (to bring a stopped one back where the brokers look for it).
    pub(crate) fn start_on(port: u16) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is not installed: run `bash scripts/ensure-redis.sh`");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !pong(port) {
            assert!(Instant::now() < deadline, "redis-server never answered");
            std::thread::sleep(Duration::from_millis(20));
        }
        Self {
            port,
            child,
            _dir: dir,
        }
    }

    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn pong(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let mut reply = [0u8; 7];
    stream.write_all(b"PING\r\n").is_ok()
        && stream.read_exact(&mut reply).is_ok()
        && &reply == b"+PONG\r\n"
}

/// The audience replicas exchange for, and the resource server allowed to ask.
pub(crate) const NOTES: &str = "https://notes.example/api";
pub(crate) const CALLER: (&str, &str) = ("notes-mcp", "notes-mcp-secret-0123456789");

/// One replica's configuration: issuer `public_url`, the shared Redis (which holds the
/// signing keys too), an exchange audience and caller.
pub(crate) fn replica_config(public_url: &str, idp: &str, redis: &str) -> String {
    let store_key = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [7u8; 32]);
    let store = format!(
        "[store]\nbackend = \"redis\"\nurl = \"{redis}\"\nkey_prefix = \"replicas:\"\n\n\
         [store.encryption]\nkey_id = \"k1\"\nkeys = {{ k1 = \"{store_key}\" }}\n"
    );
    config_with_store(public_url, idp, &store)
}

/// `store`: the `[store]` section, and whatever else the replicas must share for it.
fn config_with_store(public_url: &str, idp: &str, store: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
public_url = "{public_url}"
workers = 1
shutdown_timeout = "5s"

[upstream]
issuer = "{idp}"
client_id = "token-broker"
client_secret = "token-broker-secret"

[consent]
cookie_key = "a shared cookie key for both replicas"

{store}
[[resources]]
uri = "{public_url}/mcp"
name = "Test MCP server"
required_scopes = ["notes:read"]
scopes_supported = ["notes:read", "notes:write"]

[[exchange.audiences]]
audience = "{NOTES}"
scopes = ["notes:read", "notes:write"]

[[exchange.clients]]
client_id = "{}"
client_secret = "{}"
audiences = ["{NOTES}"]
"#,
        CALLER.0, CALLER.1
    )
}

/// What the two replicas keep their state in.
pub(crate) enum Shared {
    /// One Redis: the replicas act as one broker.
    Redis(String),
    /// Each its own memory: only a signing key file is shared.
    Nothing,
}

/// Replicas A and B as `token-broker serve` processes. A listens on a port chosen
/// first, because its address is the issuer both share (in production: the proxy's).
pub(crate) struct Replicas {
    a: BrokerProcess,
    b: BrokerProcess,
    _dir: tempfile::TempDir,
}

impl Replicas {
    pub(crate) async fn start(idp: &TestDevIdp, shared: Shared) -> Self {
        Self::start_with(idp, shared, "").await
    }

    /// Like [`start`](Self::start), with `extra` configuration appended for both.
    pub(crate) async fn start_with(idp: &TestDevIdp, shared: Shared, extra: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let key_file = dir.path().join("signing-keys.json");
        let key_file = key_file.to_str().unwrap();
        let port = free_port();
        let issuer = format!("http://127.0.0.1:{port}");
        let text = match shared {
            Shared::Redis(url) => replica_config(&issuer, &idp.url, &url),
            Shared::Nothing => config_with_store(
                &issuer,
                &idp.url,
                &format!("[tokens]\nkey_file = \"{key_file}\"\n\n[store]\nbackend = \"memory\"\n"),
            ),
        } + extra;
        let on_port = text.replacen(
            "listen = \"127.0.0.1:0\"",
            &format!("listen = \"127.0.0.1:{port}\""),
            1,
        );
        // A first: it creates the signing key (in Redis, or the key file) B then reads.
        let a = serve(on_port).await;
        assert_eq!(a.url(""), issuer, "A is not where the issuer says");
        let b = serve(text).await;
        Self { a, b, _dir: dir }
    }

    pub(crate) fn a(&self) -> String {
        self.a.url("")
    }

    pub(crate) fn b(&self) -> String {
        self.b.url("")
    }

    pub(crate) fn logs(&self) -> String {
        format!("A:\n{}\nB:\n{}", self.a.logs(), self.b.logs())
    }
}

/// `token-broker serve` on `config`, ready (upstream discovery done) when returned.
async fn serve(config: String) -> BrokerProcess {
    let broker = actix_web::rt::task::spawn_blocking(move || BrokerProcess::spawn(&config, &[]))
        .await
        .unwrap();
    for _ in 0..200 {
        let ready = http().get(broker.url("/readyz")).send().await;
        if ready.is_ok_and(|r| r.status() == 200) {
            return broker;
        }
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the replica never became ready; logs:\n{}", broker.logs());
}

#[actix_web::test]
async fn a_login_moves_between_replicas_and_a_code_is_spent_for_both() {
    let redis = Redis::start();
    let idp = TestDevIdp::start().await;
    let replicas = Replicas::start(&idp, Shared::Redis(redis.url())).await;
    a_login_moves_between(&replicas).await;
}

/// A login started on A continues on B, its code redeemed on A is a replay on B, and
/// the replay's revocation reaches A (over the store's pub/sub).
pub(crate) async fn a_login_moves_between(replicas: &Replicas) {
    let (a, b, issuer) = (replicas.a(), replicas.b(), replicas.a());

    // Registered and authorized on A; consent and callback on B.
    let client_id = register(a.as_str(), "replicated client").await;
    let consent = open_consent(&authorize_url(a.as_str(), &client_id, &[])).await;
    let approved = answer(b.as_str(), &consent, "approve").await;
    assert_eq!(approved.status(), 303, "{}", replicas.logs());
    let at_idp = http()
        .get(location(&approved).as_str())
        .send()
        .await
        .unwrap();
    assert!(at_idp.status().is_redirection(), "{}", at_idp.status());
    let callback = location(&at_idp);
    assert!(
        callback
            .as_str()
            .starts_with(&format!("{issuer}/oauth/callback"))
    );
    let on_b = callback.as_str().replacen(&issuer, &b, 1);
    let back = http()
        .get(on_b)
        .header("cookie", &consent.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(
        back.status(),
        303,
        "{}",
        back.text().await.unwrap_or_default()
    );
    let code = query(&location(&back), "code").expect("a code for the client");

    // Token on A, refresh on B, the new access token accepted by A.
    let (status, tokens) = redeem(a.as_str(), &client_id, &code).await;
    assert_eq!(status, 200, "{tokens}");
    let refresh_token = tokens["refresh_token"].as_str().unwrap().to_owned();
    let (status, refreshed) = refresh(b.as_str(), &client_id, &refresh_token).await;
    assert_eq!(status, 200, "{refreshed}");
    let access = refreshed["access_token"].as_str().unwrap().to_owned();
    assert_eq!(verify(a.as_str(), &access).await.0, 200);
    assert_eq!(verify(b.as_str(), &access).await.0, 200);

    // The code, spent on A, is a replay on B: refused, and the grant is revoked —
    // which A learns through Redis and enforces on its next request.
    let (status, replay) = redeem(b.as_str(), &client_id, &code).await;
    assert_eq!(status, 400, "{replay}");
    assert_eq!(replay["error"], "invalid_grant");
    until_refused(&a, &access).await;
    let (status, _) = refresh(
        a.as_str(),
        &client_id,
        refreshed["refresh_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(status, 400);
}

/// Waits (bounded) until `broker` refuses `access`: a revocation made elsewhere
/// arrives over Redis's pub/sub.
pub(crate) async fn until_refused(broker: &str, access: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (status, _) = verify(broker, access).await;
        if status == 401 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{broker} still accepts a revoked grant's token"
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}
