//! Two brokers on one Redis act as one: a login started on replica A continues on B
//! (consent and callback), its code is redeemed on A, the refresh token works on B,
//! a code redeemed on A is a replay on B, and the replay's revocation reaches A.
//! Both replicas share what docker/replica.toml says they must: the store (which
//! also holds the signing keys), its key, the cookie key and the issuer (A's address
//! stands in for the proxy's). Redis is a `redis-server` of the test's own on a free port.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use token_broker::clock::Clock;
use token_broker::server;

use crate::login_consent::{answer, authorize_url, location, open_consent, query, register};
use crate::login_flow::{redeem, refresh, verify};
use crate::support::{TestDevIdp, free_port, http};

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

/// One replica's configuration: issuer `public_url` and the shared Redis, which holds
/// the signing keys too.
pub(crate) fn replica_config(public_url: &str, idp: &str, redis: &str) -> String {
    let store_key = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [7u8; 32]);
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

[store]
backend = "redis"
url = "{redis}"
key_prefix = "replicas:"

[store.encryption]
key_id = "k1"
keys = {{ k1 = "{store_key}" }}

[[resources]]
uri = "{public_url}/mcp"
name = "Test MCP server"
required_scopes = ["notes:read"]
scopes_supported = ["notes:read", "notes:write"]
"#
    )
}

/// Starts a replica on `listener`; answers its base URL.
pub(crate) fn start_replica(text: &str, listener: TcpListener, clock: &Clock) -> String {
    let config = token_broker::config::load_str(text, &Default::default()).unwrap();
    let running = server::start_with(Arc::new(config), listener, clock.clone(), |_| {}).unwrap();
    let url = format!("http://{}", running.addr);
    actix_web::rt::spawn(running.serve_until(std::future::pending::<()>()));
    url
}

#[actix_web::test]
async fn a_login_moves_between_replicas_and_a_code_is_spent_for_both() {
    let redis = Redis::start();
    let clock = Clock::system();
    let idp = TestDevIdp::start_with_clock(Default::default(), clock.clone()).await;
    let (listener_a, listener_b) = (
        TcpListener::bind("127.0.0.1:0").unwrap(),
        TcpListener::bind("127.0.0.1:0").unwrap(),
    );
    // The issuer both replicas share (in production: the proxy in front of them).
    let issuer = format!("http://{}", listener_a.local_addr().unwrap());
    let text = replica_config(&issuer, &idp.url, &redis.url());
    let a = start_replica(&text, listener_a, &clock);
    let b = start_replica(&text, listener_b, &clock);

    // Registered and authorized on A; consent and callback on B.
    let client_id = register(a.as_str(), "replicated client").await;
    let consent = open_consent(&authorize_url(a.as_str(), &client_id, &[])).await;
    let approved = answer(b.as_str(), &consent, "approve").await;
    assert_eq!(approved.status(), 303);
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
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (status, _) = verify(a.as_str(), &access).await;
        if status == 401 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "A still accepts a revoked grant's token"
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, _) = refresh(
        a.as_str(),
        &client_id,
        refreshed["refresh_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(status, 400);
}
