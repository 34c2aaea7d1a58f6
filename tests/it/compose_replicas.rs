//! docker/compose.yaml runs two broker replicas on one Redis behind nginx. Docker is
//! not available to the tests, so the file is checked as text (no YAML parser: the
//! few shapes it uses are read line by line): both replicas take their settings from
//! one shared block — the Redis-backed replica.toml, which holds the signing keys
//! too, and the store key — and start together. replica.toml passes
//! `check-config` with the environment compose gives it, and replicas.nginx.conf runs
//! in a real nginx: the login routes stick to one replica, the rest alternate.

use std::collections::HashSet;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use actix_web::{App, HttpResponse, HttpServer, web};

use crate::support::{binary, http};

const REPLICAS: [&str; 2] = ["broker-1", "broker-2"];
fn repository_file(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap()
}

/// The lines under `name:` written at `indent` spaces (a top-level key at 0, a
/// service at 2), up to the next key at that indentation or less.
fn block(text: &str, indent: usize, name: &str) -> Option<String> {
    let key = format!("{}{name}:", " ".repeat(indent));
    let mut lines = text.lines().skip_while(|line| {
        !(line.starts_with(&key) && line[key.len()..].trim_start().starts_with(['&', '#']))
            && line.trim_end() != key
    });
    lines.next()?;
    let body: Vec<&str> = lines
        .take_while(|line| {
            let trimmed = line.trim_start();
            trimmed.is_empty() || trimmed.starts_with('#') || line.len() - trimmed.len() > indent
        })
        .collect();
    Some(body.join("\n"))
}

fn service(compose: &str, name: &str) -> String {
    let services = block(compose, 0, "services").expect("compose.yaml lost `services:`");
    block(&services, 2, name)
        .unwrap_or_else(|| panic!("docker/compose.yaml lost the `{name}` service"))
}

/// `${NAME:-default}` in the compose file: the value a replica gets when the host
/// does not set NAME.
fn compose_default(compose: &str, name: &str) -> String {
    let start = format!("${{{name}:-");
    let from = compose
        .find(&start)
        .unwrap_or_else(|| panic!("compose.yaml gives no default for {name}"))
        + start.len();
    compose[from..from + compose[from..].find('}').unwrap()].to_owned()
}

#[test]
fn compose_runs_two_replicas_on_one_redis_behind_the_proxy() {
    let compose = repository_file("docker/compose.yaml");
    let replica: toml::Table = toml::from_str(&repository_file("docker/replica.toml")).unwrap();
    let shared = block(&compose, 0, "x-broker").expect("compose.yaml lost `x-broker: &broker`");
    for service_name in ["keycloak", "redis", "proxy"] {
        service(&compose, service_name);
    }

    // Both replicas are the shared block and nothing that replaces a part of it (a
    // YAML merge would drop the shared list or map wholesale).
    for needle in [
        "./replica.toml:/etc/token-broker/broker.toml",
        "TOKEN_BROKER_STORE_KEY: ${TOKEN_BROKER_STORE_KEY:-",
        "TOKEN_BROKER_COOKIE_KEY: ${TOKEN_BROKER_COOKIE_KEY:-",
        "image: token-broker:dev",
    ] {
        assert!(shared.contains(needle), "x-broker lost `{needle}`");
    }
    assert!(compose.contains("x-broker: &broker"));
    for name in REPLICAS {
        let own = service(&compose, name);
        assert!(
            own.contains("<<: *broker"),
            "{name} is not the shared block"
        );
        for key in ["volumes", "environment", "image", "command", "entrypoint"] {
            assert!(
                !own.contains(&format!("\n    {key}:")) && !own.starts_with(&format!("    {key}:")),
                "{name} sets its own `{key}:`, replacing the shared one"
            );
        }
        let redis = block(&own, 6, "redis").unwrap_or_else(|| panic!("{name} not after redis"));
        assert!(redis.contains("service_healthy"), "{name}: {redis}");
    }
    // replica.toml: the `redis` service, which holds the signing keys: no key file,
    // so no volume for one and no replica waiting for another.
    let store = replica["store"].as_table().unwrap();
    assert_eq!(store["backend"].as_str(), Some("redis"));
    let url = url::Url::parse(store["url"].as_str().unwrap()).unwrap();
    assert_eq!((url.host_str(), url.port()), (Some("redis"), Some(6379)));
    assert!(
        replica
            .get("tokens")
            .and_then(|t| t.get("key_file"))
            .is_none()
    );
    assert!(
        !compose.contains("broker-keys"),
        "a volume no replica needs"
    );

    // The proxy is the issuer's address and routes with replicas.nginx.conf.
    let proxy = service(&compose, "proxy");
    assert!(proxy.contains("\"8080:80\""), "{proxy}");
    assert!(proxy.contains("./replicas.nginx.conf:/etc/nginx/conf.d/default.conf"));
    assert_eq!(
        replica["server"]["public_url"].as_str(),
        Some("http://localhost:8080")
    );
    let nginx = repository_file("docker/replicas.nginx.conf");
    for name in REPLICAS {
        assert_eq!(
            nginx.matches(&format!("server {name}:8080;")).count(),
            2,
            "both upstreams must list {name}"
        );
    }
}

#[test]
fn the_replicas_configuration_passes_check_config_with_the_composes_environment() {
    let compose = repository_file("docker/compose.yaml");
    let output = binary()
        .args(["check-config", "--config"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("docker/replica.toml"))
        .env_clear()
        .env(
            "TOKEN_BROKER__UPSTREAM__CLIENT_SECRET",
            compose_default(&compose, "TOKEN_BROKER_CLIENT_SECRET"),
        )
        .env(
            "TOKEN_BROKER_STORE_KEY",
            compose_default(&compose, "TOKEN_BROKER_STORE_KEY"),
        )
        .env(
            "TOKEN_BROKER_COOKIE_KEY",
            compose_default(&compose, "TOKEN_BROKER_COOKIE_KEY"),
        )
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A stand-in replica that names itself in every answer.
fn fake_replica(name: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = HttpServer::new(move || {
        App::new().default_service(web::to(
            move || async move { HttpResponse::Ok().body(name) },
        ))
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    actix_web::rt::spawn(server);
    addr.to_string()
}

/// The nginx binary (scripts/ensure-nginx.sh installs it), never a silent skip.
fn nginx_binary() -> PathBuf {
    ["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx"]
        .into_iter()
        .map(PathBuf::from)
        .find(|path| path.is_file())
        .expect("nginx not found: run `bash scripts/ensure-nginx.sh`")
}

#[actix_web::test]
async fn the_proxy_keeps_a_login_on_one_replica_and_spreads_the_rest() {
    let server = repository_file("docker/replicas.nginx.conf");
    assert!(server.contains("listen 80;"));
    let one = fake_replica("broker-1");
    let two = fake_replica("broker-2");
    let mut last_log = String::new();
    for _ in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let port = crate::support::free_port();
        let at = |name: &str| dir.path().join(name).display().to_string();
        let conf = format!(
            "daemon off;\nmaster_process off;\npid {pid};\nerror_log {log};\n\
             events {{ worker_connections 64; }}\nhttp {{\n    access_log off;\n\
             client_body_temp_path {tmp}/cb;\n    proxy_temp_path {tmp}/proxy;\n\
             fastcgi_temp_path {tmp}/fcgi;\n    uwsgi_temp_path {tmp}/uwsgi;\n\
             scgi_temp_path {tmp}/scgi;\n{server}\n}}\n",
            pid = at("nginx.pid"),
            log = at("error.log"),
            tmp = dir.path().display(),
            server = server
                .replace("broker-1:8080", &one)
                .replace("broker-2:8080", &two)
                .replace("listen 80;", &format!("listen 127.0.0.1:{port};")),
        );
        std::fs::write(dir.path().join("nginx.conf"), conf).unwrap();
        let mut nginx = Command::new(nginx_binary())
            .arg("-p")
            .arg(dir.path())
            .arg("-e")
            .arg(at("error.log"))
            .arg("-c")
            .arg(at("nginx.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let mut up = false;
        for _ in 0..200 {
            if nginx.try_wait().unwrap().is_some() {
                break;
            }
            if http().get(format!("{base}/healthz")).send().await.is_ok() {
                up = true;
                break;
            }
            actix_web::rt::time::sleep(Duration::from_millis(25)).await;
        }
        if !up {
            let _ = nginx.kill();
            let _ = nginx.wait();
            last_log = std::fs::read_to_string(at("error.log")).unwrap_or_default();
            assert!(
                last_log.contains("Address already in use"),
                "nginx did not start:\n{last_log}"
            );
            continue;
        }
        let answered = |path: &'static str| {
            let base = base.clone();
            async move {
                let mut seen = HashSet::new();
                for _ in 0..6 {
                    let response = http().get(format!("{base}{path}")).send().await.unwrap();
                    seen.insert(response.text().await.unwrap());
                }
                seen
            }
        };
        for path in [
            "/oauth/authorize?client_id=c",
            "/oauth/consent",
            "/oauth/callback?state=s",
            "/oauth/token",
        ] {
            assert_eq!(answered(path).await.len(), 1, "{path} must stick");
        }
        for path in ["/healthz", "/oauth/register", "/auth/verify", "/jwks.json"] {
            assert_eq!(answered(path).await.len(), 2, "{path} should alternate");
        }
        let _ = nginx.kill();
        let _ = nginx.wait();
        return;
    }
    panic!("nginx never got a free port:\n{last_log}");
}
