//! A real nginx in front of the demo's MCP server, asking the broker through
//! `auth_request`. The configuration is the snippet in README.md ("Putting it in front of
//! an MCP server", and its variant handing on a downstream token) or docker/nginx.conf,
//! read from those files, so the documentation is what these tests prove. nginx comes from `scripts/ensure-nginx.sh`; without it these
//! tests fail.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::{Next, from_fn};
use actix_web::{App, Error, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::support::{TestBroker, config_text, http};

const RESOURCE: &str = "http://127.0.0.1:9/mcp";
const METADATA: &str = "http://127.0.0.1:9/.well-known/oauth-protected-resource/mcp";
/// The addresses the README snippet uses for the broker and the MCP server.
const README_BROKER: &str = "127.0.0.1:8080";
const README_MCP: &str = "127.0.0.1:3000";
/// The same in docker/nginx.conf, and the listen directive there.
const DOCKER_BROKER: &str = "broker:8080";
const DOCKER_MCP: &str = "mcp-server:3000";
const DOCKER_LISTEN: &str = "listen 80;";

fn repository_file(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap()
}

/// The body of the ```nginx block in README.md's section on reverse proxies.
fn readme_snippet() -> String {
    let readme = repository_file("README.md");
    let section = readme
        .split("## Putting it in front of an MCP server")
        .nth(1)
        .expect("README.md lost its section \"Putting it in front of an MCP server\"");
    let block = section
        .split("```nginx\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("README.md's reverse-proxy section lost its ```nginx block");
    assert!(
        block.contains(README_BROKER) && block.contains(README_MCP),
        "the README snippet should proxy to {README_BROKER} (broker) and {README_MCP} (MCP server)"
    );
    block.to_owned()
}

/// README.md's section on reverse proxies, with its subsection on the downstream token:
/// the first snippet with its `location /mcp` block replaced by the subsection's, as
/// the README tells the reader to.
fn readme_exchange_snippet() -> String {
    let readme = repository_file("README.md");
    let variant = readme
        .split("### Handing the MCP server a downstream token")
        .nth(1)
        .expect("README.md lost its subsection \"Handing the MCP server a downstream token\"")
        .split("```nginx\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("README.md's downstream-token subsection lost its ```nginx block");
    for needle in [
        "auth_request_set $downstream $upstream_http_x_auth_access_token;",
        "proxy_set_header Authorization \"Bearer $downstream\";",
        README_MCP,
    ] {
        assert!(
            variant.contains(needle),
            "the README's downstream-token snippet lost `{needle}`"
        );
    }
    let base = readme_snippet();
    let start = base
        .find("location /mcp {")
        .expect("the README snippet has a `location /mcp` block");
    let end = start
        + base[start..]
            .find("\n}\n")
            .expect("the README snippet's `location /mcp` block ends")
        + "\n}\n".len();
    format!("{}{variant}{}", &base[..start], &base[end..])
}

/// README.md's snippet with the lines its "Per-tool rules" section adds to the
/// `location` of a resource with `anonymous = "public-tools"`.
fn readme_anonymous_snippet() -> String {
    let readme = repository_file("README.md");
    let lines = readme
        .split("## Per-tool rules")
        .nth(1)
        .and_then(|section| section.split("```nginx\n").nth(1))
        .and_then(|rest| rest.split("```").next())
        .expect("README.md's per-tool section lost its ```nginx block");
    let lines: String = lines
        .lines()
        .map(|line| format!("    {}\n", line.trim_start_matches("  ")))
        .collect();
    let base = readme_snippet();
    let at = base
        .find("location /mcp {\n")
        .expect("the README snippet has a `location /mcp` block")
        + "location /mcp {\n".len();
    format!("{}{lines}{}", &base[..at], &base[at..])
}

/// Which documented configuration nginx runs.
#[derive(Clone, Copy)]
pub(crate) enum Example {
    /// The README snippet inside a minimal server block.
    Readme,
    /// docker/nginx.conf, a complete server block.
    Docker,
    /// The README snippet with the downstream-token `location /mcp`.
    ReadmeExchange,
    /// The README snippet with the lines for `anonymous = "public-tools"`.
    ReadmeAnonymous,
}

impl Example {
    /// The server block, proxying to the given broker and MCP server addresses and
    /// listening on `127.0.0.1:port`.
    fn server_block(self, broker: &str, mcp: &str, port: u16) -> String {
        let listen = format!("listen 127.0.0.1:{port};");
        match self {
            Self::Readme | Self::ReadmeExchange | Self::ReadmeAnonymous => format!(
                "server {{\n    {listen}\n{}}}\n",
                match self {
                    Self::ReadmeExchange => readme_exchange_snippet(),
                    Self::ReadmeAnonymous => readme_anonymous_snippet(),
                    _ => readme_snippet(),
                }
                .replace(README_BROKER, broker)
                .replace(README_MCP, mcp)
            ),
            Self::Docker => {
                let conf = repository_file("docker/nginx.conf");
                for needle in [DOCKER_BROKER, DOCKER_MCP, DOCKER_LISTEN] {
                    assert!(conf.contains(needle), "docker/nginx.conf lost `{needle}`");
                }
                conf.replace(DOCKER_BROKER, broker)
                    .replace(DOCKER_MCP, mcp)
                    .replace(DOCKER_LISTEN, &listen)
            }
        }
    }
}

/// The nginx binary, or a failure telling how to get one: never a silent skip.
fn nginx_binary() -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join("nginx"));
    on_path
        .chain([PathBuf::from("/usr/sbin/nginx")])
        .find(|path| path.is_file())
        .unwrap_or_else(|| {
            panic!(
                "nginx not found on PATH or at /usr/sbin/nginx: run `bash scripts/ensure-nginx.sh`"
            )
        })
}

/// Counts the requests that reach the MCP server and echoes the identity headers nginx
/// passed on, so a test sees both what got through and as whom.
async fn echo_identity(
    seen: web::Data<AtomicUsize>,
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    seen.fetch_add(1, Ordering::SeqCst);
    let received: Vec<(&str, HeaderValue)> = [
        ("x-auth-subject", "x-seen-auth-subject"),
        ("x-auth-scopes", "x-seen-auth-scopes"),
        ("x-auth-client-id", "x-seen-auth-client-id"),
        ("x-auth-access-token", "x-seen-auth-access-token"),
        ("x-auth-email", "x-seen-auth-email"),
        ("x-auth-user", "x-seen-auth-user"),
        ("x-auth-groups", "x-seen-auth-groups"),
    ]
    .into_iter()
    .flat_map(|(from, to)| {
        req.headers()
            .get_all(from)
            .cloned()
            .map(move |value| (to, value))
            .collect::<Vec<_>>()
    })
    .collect();
    let mut response = next.call(req).await?;
    for (name, value) in received {
        response
            .headers_mut()
            .append(HeaderName::from_static(name), value);
    }
    Ok(response)
}

/// The demo's MCP server at `/mcp` with no protection of its own; returns its address
/// and how many requests reached it. It ends with the test's runtime.
pub(crate) fn start_mcp_server() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = web::Data::new(AtomicUsize::new(0));
    let count = seen.clone().into_inner();
    let server = HttpServer::new(move || {
        let seen = seen.clone();
        App::new()
            .wrap(from_fn(move |req, next| {
                echo_identity(seen.clone(), req, next)
            }))
            .configure(|cfg| token_broker::demo::mcp::configure(cfg, "/mcp"))
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    actix_web::rt::spawn(server);
    (addr.to_string(), count)
}

/// nginx as a child process with its whole state (config, logs, pid, temp files) in a
/// temporary directory; killed on drop.
pub(crate) struct Nginx {
    child: Child,
    url: String,
    dir: tempfile::TempDir,
}

impl Nginx {
    /// Serves `server(port)`, a server block, on a free port. The kernel picks the
    /// port, which is released for nginx to bind; if another process takes it first,
    /// nginx exits and we try another. (Handing nginx the bound socket through its
    /// `NGINX` variable would avoid that race, but nginx 1.22 segfaults on inherited
    /// sockets with `master_process off`, and a master process could orphan its worker
    /// when killed.)
    async fn start(binary: &Path, server: impl Fn(u16) -> String) -> Self {
        let mut last_log = String::new();
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let mut nginx = Self::spawn(binary, port, &server(port));
            match nginx.wait_ready().await {
                Ok(()) => return nginx,
                Err(log) if log.contains("Address already in use") => last_log = log,
                Err(log) => panic!("nginx did not start; error.log:\n{log}"),
            }
        }
        panic!("nginx never got a free port; error.log:\n{last_log}");
    }

    fn spawn(binary: &Path, port: u16, server: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let at = |name: &str| dir.path().join(name).display().to_string();
        let conf = format!(
            r#"daemon off;
master_process off;
pid {pid};
error_log {error_log} info;
events {{ worker_connections 64; }}
http {{
    access_log {access_log};
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
{server}
}}
"#,
            pid = at("nginx.pid"),
            error_log = at("error.log"),
            access_log = at("access.log"),
            tmp = dir.path().display(),
        );
        let conf_path = dir.path().join("nginx.conf");
        std::fs::write(&conf_path, conf).unwrap();
        // `-e` keeps even the messages before the configuration is read (nginx would
        // otherwise try /var/log/nginx) in the temporary directory.
        let child = Command::new(binary)
            .arg("-p")
            .arg(dir.path())
            .arg("-e")
            .arg(at("error.log"))
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", binary.display()));
        Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            dir,
        }
    }

    /// Waits until nginx listens: it writes its pid file after binding, and then the
    /// port accepts. Err carries error.log if nginx exited or never got there.
    async fn wait_ready(&mut self) -> Result<(), String> {
        let pid = self.dir.path().join("nginx.pid");
        let addr = self.url.trim_start_matches("http://").to_owned();
        for _ in 0..400 {
            if self.child.try_wait().unwrap().is_some() {
                return Err(self.error_log());
            }
            if pid.exists() && std::net::TcpStream::connect(&addr).is_ok() {
                return Ok(());
            }
            actix_web::rt::time::sleep(Duration::from_millis(25)).await;
        }
        Err(self.error_log())
    }

    pub(crate) fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }

    pub(crate) fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The broker, the unprotected MCP server and nginx in front of both, configured with
/// one of the documented examples.
pub(crate) struct Stack {
    pub(crate) broker: TestBroker,
    pub(crate) nginx: Nginx,
    reached_mcp: Arc<AtomicUsize>,
}

impl Stack {
    async fn start(example: Example) -> Self {
        Self::start_with(example, &config_text()).await
    }

    pub(crate) async fn start_with(example: Example, config: &str) -> Self {
        let binary = nginx_binary();
        let broker = TestBroker::start_with(config, |_| {}).await;
        let (mcp, reached_mcp) = start_mcp_server();
        let broker_addr = broker.url.trim_start_matches("http://").to_owned();
        let nginx = Nginx::start(&binary, |port| {
            example.server_block(&broker_addr, &mcp, port)
        })
        .await;
        Self {
            broker,
            nginx,
            reached_mcp,
        }
    }

    /// A client-credentials token from the dev IdP as `demo-service`, with `scope`.
    async fn token(&self, scope: &str) -> String {
        let mut form = vec![("grant_type", "client_credentials"), ("resource", RESOURCE)];
        if !scope.is_empty() {
            form.push(("scope", scope));
        }
        let body: Value = http()
            .post(format!("{}/token", self.broker.idp.url))
            .basic_auth("demo-service", Some("demo-service-secret"))
            .form(&form)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }

    /// `tools/list` through nginx, as a 2025-11-25 MCP client sends it.
    async fn tools_list(&self, authorization: Option<&str>) -> reqwest::Response {
        let body = json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {} });
        let mut request = http()
            .post(self.nginx.at("/mcp"))
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-11-25")
            // A client cannot claim an identity: nginx replaces these.
            .header("x-auth-subject", "mallory")
            .header("x-auth-scopes", "notes:write")
            .header("x-auth-groups", "admins")
            .header("x-auth-email", "mallory@example.com")
            .body(body.to_string());
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        request.send().await.unwrap()
    }

    /// `tools/call` through nginx as a 2026-07-28 client sends it: the body, and the
    /// `Mcp-Method` / `Mcp-Name` headers the broker decides on (`header_name` may lie).
    async fn call_tool(
        &self,
        token: Option<&str>,
        header_name: &str,
        name: &str,
        arguments: Value,
    ) -> reqwest::Response {
        let body = json!({
            "jsonrpc": "2.0", "id": 7, "method": "tools/call",
            "params": {
                "name": name, "arguments": arguments,
                "_meta": { "io.modelcontextprotocol/protocolVersion": "2026-07-28" },
            },
        });
        let mut request = http()
            .post(self.nginx.at("/mcp"))
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", "tools/call")
            .header("mcp-name", header_name)
            .body(body.to_string());
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap()
    }

    pub(crate) fn reached_mcp(&self) -> usize {
        self.reached_mcp.load(Ordering::SeqCst)
    }

    pub(crate) async fn stop(self) {
        drop(self.nginx);
        self.broker.stop().await;
    }
}

/// Every value of header `name`, so a doubled header shows up in an assertion.
pub(crate) fn all(response: &reqwest::Response, name: &str) -> Vec<String> {
    response
        .headers()
        .get_all(name)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

// Each check works on a running stack and leaves it usable, so the docker example can
// run them all on one.

/// (a) A valid token gets the MCP server's answer, which saw the verified identity.
async fn check_valid_token_reaches_the_mcp_server(stack: &Stack) {
    let before = stack.reached_mcp();
    let token = stack.token("notes:read").await;
    let response = stack.tools_list(Some(&format!("Bearer {token}"))).await;
    assert_eq!(response.status(), 200, "{}", stack.nginx.error_log());
    assert_eq!(all(&response, "x-seen-auth-subject"), ["demo-service"]);
    assert_eq!(all(&response, "x-seen-auth-scopes"), ["notes:read"]);
    // The service token states no groups or email: nginx cleared the client's own.
    assert!(all(&response, "x-seen-auth-groups").is_empty());
    assert!(all(&response, "x-seen-auth-email").is_empty());
    let reply: Value = response.json().await.unwrap();
    assert_eq!(reply["id"], 1);
    let names: Vec<&str> = reply["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["whoami", "echo", "notes_read", "notes_write", "health"]
    );
    assert_eq!(stack.reached_mcp(), before + 1);

    // A provider token that states groups and a username: nginx copies what the
    // broker's 200 says onto the request.
    let now = stack.broker.clock.unix();
    let claims = json!({
        "iss": stack.broker.idp.url, "sub": "svc", "aud": RESOURCE, "exp": now + 300,
        "iat": now, "scope": "notes:read", "groups": ["mcp-users", "robots"],
        "preferred_username": "svc-bot",
    });
    let token = stack.broker.idp.idp.sign("at+jwt", &claims).unwrap();
    let response = stack.tools_list(Some(&format!("Bearer {token}"))).await;
    assert_eq!(response.status(), 200, "{}", stack.nginx.error_log());
    assert_eq!(all(&response, "x-seen-auth-groups"), ["mcp-users,robots"]);
    assert_eq!(all(&response, "x-seen-auth-user"), ["svc-bot"]);
}

/// (b) No token: the broker's challenge, exactly once, and the MCP server untouched.
async fn check_no_token_is_challenged(stack: &Stack) {
    let before = stack.reached_mcp();
    let response = stack.tools_list(None).await;
    assert_eq!(response.status(), 401);
    assert_eq!(
        all(&response, "www-authenticate"),
        [format!(
            "Bearer resource_metadata=\"{METADATA}\", scope=\"notes:read\""
        )]
    );
    assert_eq!(stack.reached_mcp(), before);
}

/// (c) A token that is no JWT at all.
async fn check_garbage_token_is_invalid(stack: &Stack) {
    let before = stack.reached_mcp();
    let response = stack.tools_list(Some("Bearer not-a-jwt")).await;
    assert_eq!(response.status(), 401);
    assert_eq!(
        all(&response, "www-authenticate"),
        [format!(
            "Bearer resource_metadata=\"{METADATA}\", scope=\"notes:read\", error=\"invalid_token\""
        )]
    );
    assert_eq!(stack.reached_mcp(), before);
}

/// (d) A valid token without `notes:read`.
async fn check_missing_scope_is_forbidden(stack: &Stack) {
    let before = stack.reached_mcp();
    let token = stack.token("").await;
    let response = stack.tools_list(Some(&format!("Bearer {token}"))).await;
    assert_eq!(response.status(), 403);
    // nginx copies WWW-Authenticate from the auth subrequest only on 401; on 403 the
    // example's error_page location must add it.
    assert_eq!(
        all(&response, "www-authenticate"),
        [format!(
            "Bearer resource_metadata=\"{METADATA}\", scope=\"notes:read\", error=\"insufficient_scope\", error_description=\"missing scope: notes:read\""
        )]
    );
    assert_eq!(stack.reached_mcp(), before);
}

/// (e) The RFC 9728 document the challenges point to, served by the broker.
async fn check_metadata_is_reachable(stack: &Stack) {
    let before = stack.reached_mcp();
    let response = http()
        .get(stack.nginx.at("/.well-known/oauth-protected-resource/mcp"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let doc: Value = response.json().await.unwrap();
    assert_eq!(doc["resource"], RESOURCE);
    assert_eq!(
        doc["scopes_supported"],
        json!(["notes:read", "notes:write"])
    );
    assert_eq!(stack.reached_mcp(), before);
}

#[actix_web::test]
async fn a_valid_token_reaches_the_mcp_server_with_the_verified_identity() {
    let stack = Stack::start(Example::Readme).await;
    check_valid_token_reaches_the_mcp_server(&stack).await;
    stack.stop().await;
}

#[actix_web::test]
async fn no_token_gets_the_brokers_challenge_through_nginx() {
    let stack = Stack::start(Example::Readme).await;
    check_no_token_is_challenged(&stack).await;
    stack.stop().await;
}

#[actix_web::test]
async fn a_garbage_token_is_401_invalid_token_through_nginx() {
    let stack = Stack::start(Example::Readme).await;
    check_garbage_token_is_invalid(&stack).await;
    stack.stop().await;
}

#[actix_web::test]
async fn a_token_without_the_required_scope_is_403_insufficient_scope_through_nginx() {
    let stack = Stack::start(Example::Readme).await;
    check_missing_scope_is_forbidden(&stack).await;
    stack.stop().await;
}

#[actix_web::test]
async fn protected_resource_metadata_is_reachable_through_nginx() {
    let stack = Stack::start(Example::Readme).await;
    check_metadata_is_reachable(&stack).await;
    stack.stop().await;
}

#[actix_web::test]
async fn the_docker_example_behaves_like_the_readme_snippet() {
    let stack = Stack::start(Example::Docker).await;
    check_valid_token_reaches_the_mcp_server(&stack).await;
    check_no_token_is_challenged(&stack).await;
    check_garbage_token_is_invalid(&stack).await;
    check_missing_scope_is_forbidden(&stack).await;
    check_metadata_is_reachable(&stack).await;
    stack.stop().await;
}

/// The audience the protected resource's forward-auth exchanges for, and its name at
/// the dev IdP (the downstream token's `aud`).
const NOTES: &str = "https://notes.example/api";
const NOTES_UPSTREAM: &str = "https://notes.internal.example/api";

/// A backend that records the `Authorization` header of every request it receives
/// (`None` when there is none) and answers 200; returns its address and the record.
fn start_recording_backend() -> (String, Arc<Mutex<Vec<Option<String>>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let record = Arc::new(Mutex::new(Vec::new()));
    let seen = record.clone();
    let server = HttpServer::new(move || {
        let seen = seen.clone();
        App::new().default_service(web::to(move |req: HttpRequest| {
            let authorization = req
                .headers()
                .get("authorization")
                .map(|v| v.to_str().unwrap().to_owned());
            seen.lock().unwrap().push(authorization);
            async { HttpResponse::Ok().body("backend") }
        }))
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    actix_web::rt::spawn(server);
    (addr.to_string(), record)
}

fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

#[actix_web::test]
async fn nginx_hands_the_backend_the_downstream_token_never_the_clients() {
    let binary = nginx_binary();
    let text = format!(
        r#"{}
[[exchange.audiences]]
audience = "{NOTES}"
scopes = ["notes:read"]
upstream_audience = "{NOTES_UPSTREAM}"
"#,
        config_text().replacen(
            "scopes_supported = [\"notes:read\", \"notes:write\"]\n",
            &format!(
                "scopes_supported = [\"notes:read\", \"notes:write\"]\nexchange_audience = \"{NOTES}\"\n"
            ),
            1,
        )
    );
    let broker = TestBroker::start_with(&text, |_| {}).await;
    let (backend, received) = start_recording_backend();
    let broker_addr = broker.url.trim_start_matches("http://").to_owned();
    let nginx = Nginx::start(&binary, |port| {
        Example::ReadmeExchange.server_block(&broker_addr, &backend, port)
    })
    .await;
    let client_token = |broker: &TestBroker| {
        let idp = broker.idp.url.clone();
        async move {
            let body: Value = http()
                .post(format!("{idp}/token"))
                .basic_auth("demo-service", Some("demo-service-secret"))
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("resource", RESOURCE),
                    ("scope", "notes:read"),
                ])
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            body["access_token"].as_str().unwrap().to_owned()
        }
    };
    let call = |token: String| {
        http()
            .post(nginx.at("/mcp"))
            .header("authorization", format!("Bearer {token}"))
            .body("{}")
            .send()
    };

    let token = client_token(&broker).await;
    let response = call(token.clone()).await.unwrap();
    assert_eq!(response.status(), 200, "{}", nginx.error_log());
    let seen = received.lock().unwrap().clone();
    let [Some(authorization)] = seen.as_slice() else {
        panic!("the backend should have had one request with a token: {seen:?}");
    };
    let downstream = authorization
        .strip_prefix("Bearer ")
        .unwrap_or_else(|| panic!("not a bearer token: {authorization}"));
    assert_ne!(downstream, token, "never the client's token");
    assert!(!authorization.contains(&token));
    let c = claims(downstream);
    assert_eq!(
        c["aud"], NOTES_UPSTREAM,
        "the exchange audience's name upstream"
    );
    assert_eq!(c["sub"], "demo-service");
    assert_eq!(c["iss"], broker.idp.url.as_str());

    // The provider refuses: the client gets an error, the backend nothing. (A fresh
    // client token, so no cached exchange answers.)
    http()
        .post(format!("{}/_dev/exchange", broker.idp.url))
        .json(&json!({ "refuse": true }))
        .send()
        .await
        .unwrap();
    let token = client_token(&broker).await;
    let refused = call(token.clone()).await.unwrap();
    assert_eq!(refused.status(), 500, "nginx's answer to the broker's 503");
    assert!(all(&refused, "authorization").is_empty());
    assert!(!refused.text().await.unwrap().contains(&token));
    assert_eq!(received.lock().unwrap().len(), 1, "nothing passed through");
    drop(nginx);
    broker.stop().await;
}

#[actix_web::test]
async fn per_tool_rules_apply_through_nginx_from_the_mcp_headers() {
    let rules = format!(
        "{}anonymous = \"public-tools\"\n\n[[resources.tools]]\nname = \"notes_write\"\nscopes = [\"notes:write\"]\n\n[[resources.tools]]\nname = \"health\"\npublic = true\n",
        config_text()
    );
    let stack = Stack::start_with(Example::Readme, &rules).await;
    // A public tool: no token, and the MCP server answers.
    let before = stack.reached_mcp();
    let health = stack.call_tool(None, "health", "health", json!({})).await;
    assert_eq!(health.status(), 200, "{}", stack.nginx.error_log());
    let reply: Value = health.json().await.unwrap();
    assert_eq!(reply["result"]["content"][0]["text"], "ok", "{reply}");
    assert_eq!(stack.reached_mcp(), before + 1);

    // A write tool with a read token: the step-up challenge, passed back by nginx.
    let reader = stack.token("notes:read").await;
    let refused = stack
        .call_tool(
            Some(&reader),
            "notes_write",
            "notes_write",
            json!({"text": "no"}),
        )
        .await;
    assert_eq!(refused.status(), 403);
    let challenge = all(&refused, "www-authenticate").join(" ");
    assert!(
        challenge.contains(r#"error="insufficient_scope""#),
        "{challenge}"
    );
    assert!(challenge.contains("notes:write"), "{challenge}");
    assert_eq!(
        stack.reached_mcp(),
        before + 1,
        "the MCP server never saw it"
    );

    // With the wider token it goes through.
    let writer = stack.token("notes:read notes:write").await;
    let written = stack
        .call_tool(
            Some(&writer),
            "notes_write",
            "notes_write",
            json!({"text": "yes"}),
        )
        .await;
    assert_eq!(written.status(), 200);
    let reply: Value = written.json().await.unwrap();
    assert_eq!(reply["result"]["isError"], false, "{reply}");

    // Headers that lie about the tool pass the broker (it trusts them) but not the
    // MCP server, which checks them against the body as the transport requires.
    let lying = stack
        .call_tool(None, "health", "notes_write", json!({"text": "sneaky"}))
        .await;
    assert_ne!(lying.status(), 200);
    let reply: Value = lying.json().await.unwrap();
    assert_eq!(reply["error"]["code"], -32020, "{reply}");
    stack.stop().await;
}
