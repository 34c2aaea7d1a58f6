//! `token-broker serve` as operators run it: a child process, signals and logs.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::support::{BrokerProcess, config_text};

const SECRET: &str = "sup3r-s3cret-upstream-value";

fn process_config() -> String {
    config_text()
        .replace("test-secret", SECRET)
        .replace("[upstream]", "[log]\nlevel = \"debug\"\n\n[upstream]")
}

#[test]
fn sigterm_stops_the_process_gracefully() {
    let mut broker = BrokerProcess::spawn(&process_config(), &[]);
    // An idle keep-alive connection must not hold the shutdown up.
    let mut stream = TcpStream::connect(broker.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: broker\r\n\r\n")
        .unwrap();
    assert!(read_response(&mut stream).starts_with("HTTP/1.1 200 OK"));

    broker.terminate();
    assert_eq!(broker.wait_exit(), Some(0), "logs:\n{}", broker.logs());
    let logs = broker.logs();
    assert!(logs.contains("shutdown signal received"), "{logs}");
    assert!(logs.contains("\"message\":\"stopped\""), "{logs}");
    assert!(TcpStream::connect(broker.addr).is_err());
}

/// Reads one response with a `content-length` body from a keep-alive connection.
fn read_response(stream: &mut TcpStream) -> String {
    let mut bytes = Vec::new();
    let mut byte = [0u8; 1];
    while !bytes.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).unwrap();
        bytes.push(byte[0]);
    }
    let head = String::from_utf8(bytes).unwrap();
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length: ")
                .map(str::to_owned)
        })
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).unwrap();
    head + &String::from_utf8(body).unwrap()
}

#[test]
fn secrets_never_reach_the_logs() {
    let mut broker = BrokerProcess::spawn(&process_config(), &[]);
    let client = reqwest::blocking::Client::new();
    for path in [
        "/healthz",
        "/.well-known/oauth-authorization-server",
        "/nope",
    ] {
        client.get(broker.url(path)).send().unwrap();
    }
    broker.terminate();
    broker.wait_exit();
    let logs = broker.logs();
    // The whole configuration is logged at debug level, secret redacted.
    assert!(logs.contains("configuration loaded"), "{logs}");
    assert!(logs.contains("Secret(<redacted>)"), "{logs}");
    assert!(!logs.contains(SECRET), "secret leaked:\n{logs}");
    // Every request's log line names its request id.
    let completed: Vec<serde_json::Value> = logs
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|v: &serde_json::Value| v["message"] == "request completed")
        .collect();
    assert_eq!(completed.len(), 3, "{logs}");
    for line in completed {
        assert_eq!(
            line["span"]["request_id"].as_str().unwrap().len(),
            32,
            "{line}"
        );
    }
}

#[test]
fn an_environment_override_wins_when_serving() {
    let broker = BrokerProcess::spawn(
        &process_config(),
        &[("TOKEN_BROKER__SERVER__PUBLIC_URL", "http://localhost:7777")],
    );
    let doc: serde_json::Value =
        reqwest::blocking::get(broker.url("/.well-known/oauth-authorization-server"))
            .unwrap()
            .json()
            .unwrap();
    assert_eq!(doc["issuer"], "http://localhost:7777");
}

#[test]
fn a_port_in_use_is_a_clear_startup_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broker.toml");
    std::fs::write(&path, process_config().replace("127.0.0.1:0", &addr)).unwrap();
    let out = crate::support::binary()
        .args(["serve", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("cannot listen on {addr}")),
        "{stderr}"
    );
}
