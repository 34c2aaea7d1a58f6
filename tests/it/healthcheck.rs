//! `token-broker healthcheck`, as a container probe runs it: exit 0 on a 2xx, 1 with
//! the reason on stderr otherwise (a closed port, a 503 `/readyz`, https); without
//! --url, `/readyz` on the configured management port, wildcards meaning loopback.

use std::net::TcpListener;

use crate::support::{TestBroker, run_binary};

async fn healthcheck(args: &[&str]) -> (Option<i32>, String) {
    let mut all = vec!["healthcheck".to_owned()];
    all.extend(args.iter().map(|a| (*a).to_owned()));
    let output = run_binary(all).await;
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[actix_web::test]
async fn a_running_broker_is_healthy_and_a_draining_one_is_not_ready() {
    let broker = TestBroker::start().await;
    let (code, stderr) = healthcheck(&["--url", &broker.at("/healthz")]).await;
    assert_eq!(code, Some(0), "{stderr}");
    let (code, stderr) = healthcheck(&["--url", &broker.at("/readyz")]).await;
    assert_eq!(code, Some(0), "{stderr}");

    broker.state.readiness.start_draining();
    let (code, stderr) = healthcheck(&["--url", &broker.at("/readyz")]).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("answered 503"), "{stderr}");
    // Liveness is not readiness.
    let (code, _) = healthcheck(&["--url", &broker.at("/healthz")]).await;
    assert_eq!(code, Some(0));
    broker.stop().await;
}

#[actix_web::test]
async fn a_closed_port_and_https_are_unhealthy_with_the_reason() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let (code, stderr) = healthcheck(&["--url", &format!("http://127.0.0.1:{port}/healthz")]).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("cannot connect"), "{stderr}");

    let (code, stderr) = healthcheck(&["--url", "https://127.0.0.1:9/healthz"]).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("https is not supported"), "{stderr}");
}

#[actix_web::test]
async fn without_a_url_the_configured_management_port_is_probed_on_loopback() {
    let broker = TestBroker::start_with(&crate::management_port::text(true), |_| {}).await;
    let management = broker.management.clone().unwrap();
    let port_of = |url: &str| url.rsplit(':').next().unwrap().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broker.toml");
    // As a container's configuration reads: every interface, fixed ports.
    let text = crate::management_port::text(false).replace(
        "listen = \"127.0.0.1:0\"",
        &format!(
            "listen = \"0.0.0.0:{}\"\nmanagement_listen = \"0.0.0.0:{}\"",
            port_of(&broker.url),
            port_of(&management)
        ),
    );
    std::fs::write(&path, text).unwrap();
    let config = path.to_str().unwrap();
    let (code, stderr) = healthcheck(&["--config", config]).await;
    assert_eq!(code, Some(0), "{stderr}");

    // It is /readyz that was asked: a draining broker fails the same probe.
    broker.state.readiness.start_draining();
    let (code, stderr) = healthcheck(&["--config", config]).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("http://127.0.0.1:{}/readyz", port_of(&management)))
            && stderr.contains("503"),
        "{stderr}"
    );
    broker.stop().await;
}
