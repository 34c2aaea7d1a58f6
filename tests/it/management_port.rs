//! `server.management_listen`: `/healthz`, `/readyz`, `/metrics` and `/admin/*` on a
//! port of their own and gone from the public one (404), the public routes absent from
//! the management port, one port serving everything without it, start-up errors that
//! name the key, and a graceful shutdown during which the management port still says
//! the broker is draining.

use std::net::TcpListener;
use std::sync::Arc;

use reqwest::Method;
use serde_json::Value;
use token_broker::clock::Clock;
use token_broker::server::{self, Listeners, StartError};

use crate::admin_api::ADMIN;
use crate::shutdown::{Upload, refuses_soon, upload_probe};
use crate::support::{TestBroker, config_text, http, load, metrics};

/// The test configuration with the admin API and, when `split`, a management port
/// (bound by the harness to `127.0.0.1:0`).
pub(crate) fn text(split: bool) -> String {
    let mut text = format!("{}\n[admin]\ntoken = \"{ADMIN}\"\n", config_text());
    if split {
        text = text.replace(
            "workers = 1\n",
            "workers = 1\nmanagement_listen = \"127.0.0.1:0\"\n",
        );
    }
    text
}

async fn status(method: Method, url: String, admin: bool) -> u16 {
    let mut request = http().request(method, url);
    if admin {
        request = request.bearer_auth(ADMIN);
    }
    request.send().await.unwrap().status().as_u16()
}

/// The operational routes, each with whether it needs the admin token.
const OPERATIONAL: &[(&str, bool)] = &[
    ("/healthz", false),
    ("/readyz", false),
    ("/metrics", false),
    ("/admin/clients", true),
    ("/admin/grants", true),
    ("/admin/openapi.json", true),
];

/// Public routes: verification, OAuth, keys, metadata.
const PUBLIC: &[(&str, &str)] = &[
    ("GET", "/auth/verify"),
    ("GET", "/auth/verify/mcp"),
    ("POST", "/oauth/token"),
    ("POST", "/oauth/register"),
    ("GET", "/oauth/authorize"),
    ("GET", "/jwks.json"),
    ("GET", "/.well-known/oauth-authorization-server"),
    ("GET", "/.well-known/oauth-protected-resource/mcp"),
];

#[actix_web::test]
async fn with_a_management_port_the_operational_routes_move_there() {
    let broker = TestBroker::start_with(&text(true), |_| {}).await;
    let management = broker.management.clone().unwrap();
    assert_ne!(management, broker.url);
    for (path, admin) in OPERATIONAL {
        let there = status(Method::GET, format!("{management}{path}"), *admin).await;
        assert_eq!(there, 200, "{path} on the management port");
        let public = status(Method::GET, broker.at(path), *admin).await;
        assert_eq!(public, 404, "{path} on the public port");
    }
    // Still behind the admin token there.
    assert_eq!(
        status(Method::GET, format!("{management}/admin/clients"), false).await,
        401
    );
    // The metrics include the build, and the admin call just made.
    let scraped = metrics(&management).await;
    assert!(scraped.contains("token_broker_build_info{"), "{scraped}");
    assert!(
        scraped.contains(r#"route="/admin/clients",status="200""#),
        "{scraped}"
    );
    for (method, path) in PUBLIC {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let there = status(method.clone(), format!("{management}{path}"), false).await;
        assert_eq!(there, 404, "{method} {path} on the management port");
        let public = status(method.clone(), broker.at(path), false).await;
        assert_ne!(public, 404, "{method} {path} on the public port");
    }
    broker.stop().await;
}

#[actix_web::test]
async fn without_a_management_port_one_port_serves_everything() {
    let broker = TestBroker::start_with(&text(false), |_| {}).await;
    assert!(broker.management.is_none());
    assert!(broker.state.config.server.management_listen.is_none());
    for (path, admin) in OPERATIONAL {
        assert_eq!(
            status(Method::GET, broker.at(path), *admin).await,
            200,
            "{path}"
        );
    }
    for (method, path) in PUBLIC {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        assert_ne!(status(method, broker.at(path), false).await, 404, "{path}");
    }
    broker.stop().await;
}

#[actix_web::test]
async fn a_management_port_that_cannot_be_bound_is_named_at_start_up() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let config = load(&text(false).replace(
        "workers = 1\n",
        &format!("workers = 1\nmanagement_listen = \"127.0.0.1:{port}\"\n"),
    ));
    let error = server::bind_and_start(Arc::new(config)).err().unwrap();
    assert!(
        matches!(
            error,
            StartError::Bind {
                key: "management_listen",
                ..
            }
        ),
        "{error}"
    );
    let message = error.to_string();
    assert!(
        message.contains(&format!("127.0.0.1:{port}"))
            && message.contains("server.management_listen"),
        "{message}"
    );
}

#[actix_web::test]
async fn listeners_that_do_not_match_the_configuration_are_refused() {
    let split = Arc::new(load(&text(true)));
    let one = Listeners {
        public: TcpListener::bind("127.0.0.1:0").unwrap(),
        management: None,
    };
    let error = server::start_on(split, one, Clock::system(), |_| {})
        .err()
        .unwrap();
    assert!(matches!(error, StartError::Listeners(_)), "{error}");
    let whole = Arc::new(load(&text(false)));
    let two = Listeners {
        public: TcpListener::bind("127.0.0.1:0").unwrap(),
        management: Some(TcpListener::bind("127.0.0.1:0").unwrap()),
    };
    let error = server::start_on(whole, two, Clock::system(), |_| {})
        .err()
        .unwrap();
    assert!(matches!(error, StartError::Listeners(_)), "{error}");
}

#[actix_web::test]
async fn while_the_public_port_drains_the_management_port_reports_it() {
    let (probe, mut started) = upload_probe();
    let mut broker = TestBroker::start_with(&text(true), probe).await;
    let management = broker.management.clone().unwrap();
    let ready = http()
        .get(format!("{management}/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);

    // A request in flight on the public port holds its shutdown open.
    let upload = Upload::begin(&broker, &mut started).await;
    broker.begin_shutdown();
    assert!(
        refuses_soon(broker.url.trim_start_matches("http://")).await,
        "the public port still accepts after shutdown began"
    );
    // Probes still get an answer, and it says why not to send traffic.
    let draining = http()
        .get(format!("{management}/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(draining.status(), 503);
    let body: Value = draining.json().await.unwrap();
    assert_eq!(body["reasons"][0], "shutting down", "{body}");
    assert_eq!(body["checks"]["draining"], true, "{body}");
    let metrics = http()
        .get(format!("{management}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status(), 200);

    let response = upload.finish().await;
    assert_eq!(response.text().await.unwrap(), "received 10 bytes");
    broker.stopped().await.unwrap();
    // Once the public port has stopped, the management port has too.
    let addr = management.trim_start_matches("http://");
    assert!(std::net::TcpStream::connect(addr).is_err());
}

#[test]
fn serve_binds_and_logs_both_ports_and_stops_both_on_sigterm() {
    let port = crate::support::free_port();
    let config = text(false).replace(
        "workers = 1\n",
        &format!("workers = 1\nmanagement_listen = \"127.0.0.1:{port}\"\n"),
    );
    let mut broker = crate::support::BrokerProcess::spawn(&config, &[]);
    let management = format!("127.0.0.1:{port}");
    let client = reqwest::blocking::Client::new();
    let there = client
        .get(format!("http://{management}/healthz"))
        .send()
        .unwrap();
    assert_eq!(there.status(), 200);
    assert_eq!(
        client.get(broker.url("/healthz")).send().unwrap().status(),
        404
    );
    let logs = broker.logs();
    assert!(logs.contains("management port listening"), "{logs}");
    assert!(
        logs.contains(&format!("\"management_addr\":\"{management}\"")),
        "{logs}"
    );

    broker.terminate();
    assert_eq!(broker.wait_exit(), Some(0), "logs:\n{}", broker.logs());
    assert!(std::net::TcpStream::connect(&management).is_err());
}
