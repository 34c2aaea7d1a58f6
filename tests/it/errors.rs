//! The error boundary: every kind of bad input gets RFC 6749 §5.2 JSON with the right
//! status, never actix's default text. Until the endpoints that read bodies exist,
//! probe routes registered on the full application (same extractor configuration,
//! same middleware) stand in for them.

use actix_web::HttpResponse;
use actix_web::web::{self, ServiceConfig};
use serde::Deserialize;

use crate::support::{TestBroker, config_text, http};

#[derive(Deserialize)]
struct Probe {
    name: String,
    count: u32,
}

async fn json_probe(body: web::Json<Probe>) -> HttpResponse {
    HttpResponse::Ok().body(format!("{} {}", body.name, body.count))
}

async fn form_probe(body: web::Form<Probe>) -> HttpResponse {
    HttpResponse::Ok().body(format!("{} {}", body.name, body.count))
}

async fn query_probe(query: web::Query<Probe>) -> HttpResponse {
    HttpResponse::Ok().body(format!("{} {}", query.name, query.count))
}

fn probes(cfg: &mut ServiceConfig) {
    cfg.route("/probe/json", web::post().to(json_probe))
        .route("/probe/form", web::post().to(form_probe))
        .route("/probe/query", web::get().to(query_probe));
}

async fn start() -> TestBroker {
    let text = config_text().replace("workers = 1", "workers = 1\nmax_body_bytes = 2048");
    TestBroker::start_with(&text, probes).await
}

/// Asserts an RFC 6749 error response and returns its description.
async fn expect_error(response: reqwest::Response, status: u16, code: &str) -> String {
    assert_eq!(response.status(), status);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], code, "{body}");
    let description = body["error_description"].as_str().unwrap().to_owned();
    assert!(!description.is_empty());
    description
}

#[actix_web::test]
async fn well_formed_probes_succeed() {
    let broker = start().await;
    let client = http();
    let ok = client
        .post(broker.at("/probe/json"))
        .json(&serde_json::json!({"name": "a", "count": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.text().await.unwrap(), "a 1");
    let ok = client
        .post(broker.at("/probe/form"))
        .form(&[("name", "b"), ("count", "2")])
        .send()
        .await
        .unwrap();
    assert_eq!(ok.text().await.unwrap(), "b 2");
    broker.stop().await;
}

#[actix_web::test]
async fn malformed_json_is_invalid_request() {
    let broker = start().await;
    let client = http();
    let syntax = client
        .post(broker.at("/probe/json"))
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .unwrap();
    let description = expect_error(syntax, 400, "invalid_request").await;
    assert_eq!(description, "the body is not valid JSON");

    let fields = client
        .post(broker.at("/probe/json"))
        .json(&serde_json::json!({"name": "a", "count": "many"}))
        .send()
        .await
        .unwrap();
    let description = expect_error(fields, 400, "invalid_request").await;
    assert!(description.contains("expected fields"), "{description}");
    broker.stop().await;
}

#[actix_web::test]
async fn malformed_forms_and_queries_are_invalid_request() {
    let broker = start().await;
    let client = http();
    let form = client
        .post(broker.at("/probe/form"))
        .form(&[("name", "b")])
        .send()
        .await
        .unwrap();
    let description = expect_error(form, 400, "invalid_request").await;
    assert!(description.contains("count"), "{description}");

    let query = client
        .get(broker.at("/probe/query?name=x&count=-1"))
        .send()
        .await
        .unwrap();
    expect_error(query, 400, "invalid_request").await;
    broker.stop().await;
}

#[actix_web::test]
async fn wrong_content_types_are_415() {
    let broker = start().await;
    let client = http();
    let text_to_json = client
        .post(broker.at("/probe/json"))
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    let description = expect_error(text_to_json, 415, "invalid_request").await;
    assert!(description.contains("application/json"));

    let json_to_form = client
        .post(broker.at("/probe/form"))
        .json(&serde_json::json!({"name": "a", "count": 1}))
        .send()
        .await
        .unwrap();
    let description = expect_error(json_to_form, 415, "invalid_request").await;
    assert!(description.contains("x-www-form-urlencoded"));
    broker.stop().await;
}

#[actix_web::test]
async fn oversized_bodies_are_413_with_or_without_a_length() {
    let broker = start().await;
    let client = http();
    let big = "x".repeat(4096);
    let declared = client
        .post(broker.at("/probe/json"))
        .header("content-type", "application/json")
        .body(format!("{{\"name\":\"{big}\",\"count\":1}}"))
        .send()
        .await
        .unwrap();
    expect_error(declared, 413, "invalid_request").await;

    // Even on a route that reads no body, a declared oversize is refused up front.
    let anywhere = client
        .post(broker.at("/healthz"))
        .body(big.clone())
        .send()
        .await
        .unwrap();
    expect_error(anywhere, 413, "invalid_request").await;

    // A chunked body has no declared length; the extractor's limit stops it.
    let chunks = futures_util::stream::iter(
        (0..8).map(move |_| Ok::<_, std::io::Error>(format!("name={}&", "x".repeat(4096)))),
    );
    let chunked = client
        .post(broker.at("/probe/form"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    expect_error(chunked, 413, "invalid_request").await;
    broker.stop().await;
}

#[actix_web::test]
async fn unknown_routes_and_methods_get_json() {
    let broker = start().await;
    let client = http();
    let missing = client
        .get(broker.at("/oauth/nothing"))
        .send()
        .await
        .unwrap();
    expect_error(missing, 404, "invalid_request").await;
    let method = client.delete(broker.at("/healthz")).send().await.unwrap();
    expect_error(method, 405, "invalid_request").await;
    let method = client
        .post(broker.at("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap();
    expect_error(method, 405, "invalid_request").await;
    broker.stop().await;
}

/// The OAuth endpoints read their forms with their own extractor (`http::form`): the
/// same answers as the typed forms above, through `/oauth/token` itself.
#[actix_web::test]
async fn token_endpoint_forms_are_checked_before_anything_is_done() {
    let broker = start().await;
    let client = http();
    let post = |content_type: &'static str, body: Vec<u8>| {
        client
            .post(broker.at("/oauth/token"))
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let json = post(
        "application/json",
        b"{\"grant_type\":\"refresh_token\"}".to_vec(),
    )
    .await
    .unwrap();
    let description = expect_error(json, 415, "invalid_request").await;
    assert!(
        description.contains("x-www-form-urlencoded"),
        "{description}"
    );

    let latin1 = post(
        "application/x-www-form-urlencoded; charset=ISO-8859-1",
        b"grant_type=refresh_token".to_vec(),
    )
    .await
    .unwrap();
    let description = expect_error(latin1, 415, "invalid_request").await;
    assert!(description.contains("UTF-8"), "{description}");

    for body in [
        &b"grant_type=refresh_token&refresh_token=\xff"[..],
        b"grant_type=%ff",
    ] {
        let not_utf8 = post("application/x-www-form-urlencoded", body.to_vec())
            .await
            .unwrap();
        let description = expect_error(not_utf8, 400, "invalid_request").await;
        assert!(description.contains("UTF-8"), "{description}");
    }

    let chunks = futures_util::stream::iter(
        (0..8).map(|_| Ok::<_, std::io::Error>(format!("grant_type={}&", "x".repeat(512)))),
    );
    let chunked = client
        .post(broker.at("/oauth/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    expect_error(chunked, 413, "invalid_request").await;

    // Escaped and plain fields alike reach the endpoint: a well-formed form with an
    // unknown grant type is refused for that, not for its encoding.
    let escaped = post(
        "application/x-www-form-urlencoded; charset=UTF-8",
        b"grant_type=urn%3Aexample%3Anothing+at+all&scope=a+b".to_vec(),
    )
    .await
    .unwrap();
    let description = expect_error(escaped, 400, "unsupported_grant_type").await;
    assert!(
        description.contains("urn:example:nothing at all"),
        "{description}"
    );
    broker.stop().await;
}
