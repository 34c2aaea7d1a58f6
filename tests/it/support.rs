//! Shared test harness: brokers in-process or as a child process, on ephemeral ports.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::web;
use actix_web::web::ServiceConfig;
use token_broker::config::{self, Config, Environment};
use token_broker::server::{self, Broker};

/// A configuration for tests: loopback issuer, one worker, no upstream contacted.
pub fn config_text() -> String {
    r#"
[server]
listen = "127.0.0.1:0"
public_url = "http://127.0.0.1:9"
workers = 1
shutdown_timeout = "5s"

[upstream]
issuer = "http://127.0.0.1:9/realms/test"
client_id = "token-broker"
client_secret = "test-secret"

[[resources]]
uri = "http://127.0.0.1:9/mcp"
name = "Test MCP server"
required_scopes = ["notes:read"]
scopes_supported = ["notes:read", "notes:write"]
"#
    .to_owned()
}

pub fn load(text: &str) -> Config {
    config::load_str(text, &Environment::default()).unwrap()
}

/// The placeholder issuer in `config_text()`, replaced by the dev IdP's URL.
pub const UPSTREAM_PLACEHOLDER: &str = "http://127.0.0.1:9/realms/test";

/// A broker running in this process, in front of its own development IdP; both share
/// one clock, so a test moves time for both.
pub struct TestBroker {
    pub url: String,
    /// The management port's base URL, when the configuration sets
    /// `server.management_listen` (the test binds it to `127.0.0.1:0`).
    pub management: Option<String>,
    pub state: std::sync::Arc<Broker>,
    pub idp: TestDevIdp,
    pub clock: token_broker::clock::Clock,
    handle: ServerHandle,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    stopped: Option<actix_web::rt::task::JoinHandle<std::io::Result<()>>>,
}

impl TestBroker {
    /// The stored grant behind a broker access token.
    pub async fn grant_behind(&self, access: &str) -> token_broker::store::Grant {
        let verified = self.state.verifier.verify_broker(access).await.unwrap();
        let grant_id = verified.principal.grant_id.as_deref().unwrap();
        self.state.store.get_grant(grant_id).await.unwrap().unwrap()
    }

    pub async fn start() -> Self {
        Self::start_with(&config_text(), |_| {}).await
    }

    /// Like [`start_with`](Self::start_with) with a dev IdP configured by the test.
    pub async fn start_with_idp(
        text: &str,
        idp_config: token_broker::dev_idp::DevIdpConfig,
        extra: impl Fn(&mut ServiceConfig) + Clone + Send + 'static,
    ) -> Self {
        let clock = token_broker::clock::Clock::system();
        let idp = TestDevIdp::start_with_clock(idp_config, clock.clone()).await;
        Self::start_on(text, idp, clock, extra).await
    }

    /// Starts the full application plus `extra` routes (probes that drive the error
    /// boundary, the demo's MCP server) from configuration text whose upstream issuer
    /// is [`UPSTREAM_PLACEHOLDER`].
    pub async fn start_with(
        text: &str,
        extra: impl Fn(&mut ServiceConfig) + Clone + Send + 'static,
    ) -> Self {
        let clock = token_broker::clock::Clock::system();
        let idp = TestDevIdp::start_with_clock(Default::default(), clock.clone()).await;
        Self::start_on(text, idp, clock, extra).await
    }

    /// Like [`start_with_idp`](Self::start_with_idp), but the broker's public URL and
    /// the resource are its real address (`http://127.0.0.1:9` in the text becomes
    /// it), so browsers and MCP clients can follow every redirect and link.
    pub async fn start_live(
        text: &str,
        idp_config: token_broker::dev_idp::DevIdpConfig,
        extra: impl Fn(&mut ServiceConfig) + Clone + Send + 'static,
    ) -> Self {
        let clock = token_broker::clock::Clock::system();
        let idp = TestDevIdp::start_with_clock(idp_config, clock.clone()).await;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let real = format!("http://{}", listener.local_addr().unwrap());
        let text = text
            .replace(UPSTREAM_PLACEHOLDER, &idp.url)
            .replace("http://127.0.0.1:9", &real);
        Self::start_listening(&text, idp, clock, listener, extra).await
    }

    async fn start_on(
        text: &str,
        idp: TestDevIdp,
        clock: token_broker::clock::Clock,
        extra: impl Fn(&mut ServiceConfig) + Clone + Send + 'static,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        Self::start_listening(text, idp, clock, listener, extra).await
    }

    async fn start_listening(
        text: &str,
        idp: TestDevIdp,
        clock: token_broker::clock::Clock,
        listener: TcpListener,
        extra: impl Fn(&mut ServiceConfig) + Clone + Send + 'static,
    ) -> Self {
        // The dev IdP knows the broker as token-broker / token-broker-secret.
        let config = load(
            &text
                .replace(UPSTREAM_PLACEHOLDER, &idp.url)
                .replace("\"test-secret\"", "\"token-broker-secret\""),
        );
        let listeners = server::Listeners {
            public: listener,
            management: config
                .server
                .management_listen
                .map(|_| TcpListener::bind("127.0.0.1:0").unwrap()),
        };
        let running = server::start_on(Arc::new(config), listeners, clock.clone(), extra).unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let url = format!("http://{}", running.addr);
        let management = running
            .management
            .as_ref()
            .map(|port| format!("http://{}", port.addr));
        let state = running.state.clone();
        let handle = running.handle.clone();
        let done = actix_web::rt::spawn(running.serve_until(async {
            let _ = rx.await;
        }));
        Self {
            url,
            management,
            state,
            idp,
            clock,
            handle,
            shutdown: Some(tx),
            stopped: Some(done),
        }
    }

    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    pub async fn stop(self) {
        self.handle.stop(false).await;
    }

    /// Starts the graceful shutdown `serve` performs on SIGTERM, without waiting.
    pub fn begin_shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }

    /// Waits until the server has stopped.
    pub async fn stopped(&mut self) -> std::io::Result<()> {
        match self.stopped.take() {
            Some(done) => done.await.unwrap(),
            None => Ok(()),
        }
    }
}

/// Where a broker answers: a [`TestBroker`], or the base URL (no trailing slash) of one
/// in another process, so the login helpers drive either.
pub trait BaseUrl {
    /// The broker's base URL, which is also its issuer (`server.public_url`).
    fn base_url(&self) -> &str;

    fn at(&self, path: &str) -> String {
        format!("{}{path}", self.base_url())
    }
}

impl BaseUrl for TestBroker {
    fn base_url(&self) -> &str {
        &self.url
    }
}

impl BaseUrl for str {
    fn base_url(&self) -> &str {
        self
    }
}

/// A loopback port free a moment ago, for a broker whose `server.public_url` must be
/// known before it starts and stay the same across restarts. Another process may take
/// it in between, so use it at once.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// The Prometheus text a broker serves at `{base}/metrics`.
pub async fn metrics(base: &str) -> String {
    let response = http().get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.text().await.unwrap()
}

pub fn binary() -> Command {
    Command::new(env!("CARGO_BIN_EXE_token-broker"))
}

pub fn fixture(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(path)
}

/// `token-broker serve` as a child process, its stderr (the logs) collected.
pub struct BrokerProcess {
    pub child: Child,
    pub addr: SocketAddr,
    logs: Arc<Mutex<String>>,
    _dir: Option<tempfile::TempDir>,
}

impl BrokerProcess {
    /// Writes `config` to a file in a new directory (where a configuration without
    /// `[store]` keeps its state) and serves it; returns once the broker logs the
    /// address it listens on.
    pub fn spawn(config: &str, env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broker.toml");
        std::fs::write(&path, config).unwrap();
        let mut broker = Self::spawn_file(&path, env);
        broker._dir = Some(dir);
        broker
    }

    /// Serves the configuration file at `path` (left in place, with whatever state
    /// the broker keeps beside it).
    pub fn spawn_file(path: &std::path::Path, env: &[(&str, &str)]) -> Self {
        let mut command = binary();
        command
            .arg("serve")
            .arg("--config")
            .arg(path)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().unwrap();
        let logs = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        let sink = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Ok(json) = serde_json::from_str::<serde_json::Value>(&line)
                    && json["message"] == "listening"
                {
                    let _ = tx.send(json["addr"].as_str().unwrap_or_default().to_owned());
                }
                let mut logs = sink.lock().unwrap();
                logs.push_str(&line);
                logs.push('\n');
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(addr) => addr.parse().unwrap(),
            Err(_) => {
                let _ = child.kill();
                panic!("broker did not start; logs:\n{}", logs.lock().unwrap());
            }
        };
        Self {
            child,
            addr,
            logs,
            _dir: None,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().clone()
    }

    pub fn terminate(&self) {
        use nix::sys::signal::{Signal, kill};
        use nix::unistd::Pid;
        kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM).unwrap();
    }

    /// `kill -9`: no shutdown, no flush; returns once the process is gone (reaped, so
    /// its port is free again).
    pub fn kill9(&mut self) {
        use std::os::unix::process::ExitStatusExt;

        use nix::sys::signal::{Signal, kill};
        use nix::unistd::Pid;
        kill(Pid::from_raw(self.child.id() as i32), Signal::SIGKILL).unwrap();
        let status = self.child.wait().unwrap();
        assert_eq!(status.signal(), Some(9), "logs:\n{}", self.logs());
    }

    /// Waits (bounded) for the process to exit and returns its exit code.
    pub fn wait_exit(&mut self) -> Option<i32> {
        for _ in 0..300 {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("broker did not exit; logs:\n{}", self.logs());
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The development IdP running in this process, with a clock the test can move.
pub struct TestDevIdp {
    pub url: String,
    pub idp: web::Data<token_broker::dev_idp::idp::Idp>,
    handle: ServerHandle,
}

impl TestDevIdp {
    pub async fn start() -> Self {
        Self::start_with(token_broker::dev_idp::DevIdpConfig::default()).await
    }

    pub async fn start_with(config: token_broker::dev_idp::DevIdpConfig) -> Self {
        Self::start_with_clock(config, token_broker::clock::Clock::system()).await
    }

    pub async fn start_with_clock(
        config: token_broker::dev_idp::DevIdpConfig,
        clock: token_broker::clock::Clock,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let running = token_broker::dev_idp::start(config, listener, clock).unwrap();
        let url = running.url.clone();
        let idp = running.idp.clone();
        let handle = running.server.handle();
        actix_web::rt::spawn(running.server);
        Self { url, idp, handle }
    }

    pub async fn calls(&self, name: &str) -> u64 {
        let body: serde_json::Value = http()
            .get(format!("{}/_dev/calls", self.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        body["calls"][name]["count"].as_u64().unwrap_or(0)
    }

    /// Sets a fault knob (`dev_idp::faults::FaultSpec` as JSON) over `/_dev/faults`.
    pub async fn fault(&self, spec: serde_json::Value) {
        let set = http()
            .post(format!("{}/_dev/faults", self.url))
            .json(&spec)
            .send()
            .await
            .unwrap();
        assert_eq!(set.status(), 204, "{spec}");
    }

    /// Clears every fault knob (`/_dev/reset`): the provider is back.
    pub async fn reset(&self) {
        let reset = http()
            .post(format!("{}/_dev/reset", self.url))
            .send()
            .await
            .unwrap();
        assert_eq!(reset.status(), 204);
    }

    /// A client-credentials access token from this IdP as `demo-service`, for
    /// `resource` with `scope` (none when empty).
    pub async fn service_token(&self, resource: &str, scope: &str) -> String {
        let token_url = format!("{}/token", self.url);
        client_credentials(
            &token_url,
            "demo-service",
            "demo-service-secret",
            resource,
            scope,
        )
        .await
    }

    pub async fn stop(self) {
        self.handle.stop(false).await;
    }
}

/// A client-credentials access token from the token endpoint `token_url` for `client`
/// (Basic with `secret`), for `resource` with `scope` (none when empty).
pub async fn client_credentials(
    token_url: &str,
    client: &str,
    secret: &str,
    resource: &str,
    scope: &str,
) -> String {
    let mut form = vec![("grant_type", "client_credentials"), ("resource", resource)];
    if !scope.is_empty() {
        form.push(("scope", scope));
    }
    let body: serde_json::Value = http()
        .post(token_url)
        .basic_auth(client, Some(secret))
        .form(&form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no token: {body}"))
        .to_owned()
}

/// Runs the binary with `args` without blocking the test's runtime.
pub async fn run_binary(args: Vec<String>) -> std::process::Output {
    actix_web::rt::task::spawn_blocking(move || binary().args(args).output().unwrap())
        .await
        .unwrap()
}

/// A broker configuration pointing at `issuer`, written to a temporary file.
pub fn broker_config_file(issuer: &str, secret: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broker.toml");
    let text = config_text()
        .replace(UPSTREAM_PLACEHOLDER, issuer)
        .replace("test-secret", secret);
    std::fs::write(&path, text).unwrap();
    (dir, path)
}
