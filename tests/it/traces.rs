//! OpenTelemetry (`[telemetry.otlp]`): `token-broker serve` exports its spans to an
//! OTLP/HTTP receiver this test hosts, and one trace runs from the caller's
//! `traceparent` through the broker into the dev IdP, and through the gateway into the
//! MCP server, which also gets the request id. Off (no `[telemetry]`), the broker
//! sends no trace context of its own: the gateway hands the caller's on unchanged.

use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use actix_web::web::{self, Bytes};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use serde_json::{Value, json};
use token_broker::tokens::api_keys::{generate_key, hash_key};

use crate::gateway::mcp_upstream::start_upstream;
use crate::login_consent::register;
use crate::login_flow::login_redirect_with;
use crate::support::{
    BrokerProcess, TestBroker, TestDevIdp, UPSTREAM_PLACEHOLDER, config_text, free_port, http,
};

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";
/// OTLP span kinds (opentelemetry-proto `Span.SpanKind`).
const SERVER: i32 = 2;
const CLIENT: i32 = 3;

fn traceparent() -> String {
    format!("00-{TRACE_ID}-{CALLER_SPAN}-01")
}

/// One exported span, ids in lowercase hex.
#[derive(Debug, Clone)]
struct Exported {
    trace_id: String,
    span_id: String,
    parent_span_id: String,
    name: String,
    kind: i32,
    attributes: Vec<(String, String)>,
    service: String,
}

impl Exported {
    fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// An OTLP/HTTP receiver on 127.0.0.1:0: `POST /v1/traces` in protobuf or JSON.
#[derive(Default)]
struct Receiver {
    spans: Mutex<Vec<Exported>>,
    content_types: Mutex<Vec<String>>,
    /// Each export's `x-api-key`, as received.
    api_keys: Mutex<Vec<String>>,
}

impl Receiver {
    fn start() -> (Arc<Self>, String) {
        let receiver = Arc::new(Self::default());
        let data = web::Data::from(receiver.clone());
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(web::PayloadConfig::new(16 * 1024 * 1024))
                .route("/v1/traces", web::post().to(export))
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        actix_web::rt::spawn(server);
        (receiver, url)
    }

    fn in_trace(&self, trace_id: &str) -> Vec<Exported> {
        let spans = self.spans.lock().unwrap();
        spans
            .iter()
            .filter(|s| s.trace_id == trace_id)
            .cloned()
            .collect()
    }
}

async fn export(req: HttpRequest, body: Bytes, receiver: web::Data<Receiver>) -> HttpResponse {
    let content_type = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let request = if content_type.starts_with("application/json") {
        serde_json::from_slice::<ExportTraceServiceRequest>(&body).unwrap()
    } else {
        ExportTraceServiceRequest::decode(body.as_ref()).unwrap()
    };
    let mut spans = receiver.spans.lock().unwrap();
    for resource in request.resource_spans {
        let service = resource
            .resource
            .iter()
            .flat_map(|r| r.attributes.iter())
            .find(|a| a.key == "service.name")
            .map(|a| shown(a.value.as_ref()))
            .unwrap_or_default();
        for scope in resource.scope_spans {
            for span in scope.spans {
                spans.push(Exported {
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_span_id: hex(&span.parent_span_id),
                    name: span.name,
                    kind: span.kind,
                    attributes: span
                        .attributes
                        .iter()
                        .map(|a| (a.key.clone(), shown(a.value.as_ref())))
                        .collect(),
                    service: service.clone(),
                });
            }
        }
    }
    receiver.content_types.lock().unwrap().push(content_type);
    if let Some(key) = req.headers().get("x-api-key") {
        let key = String::from_utf8_lossy(key.as_bytes()).into_owned();
        receiver.api_keys.lock().unwrap().push(key);
    }
    HttpResponse::Ok()
        .content_type("application/x-protobuf")
        .finish()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn shown(value: Option<&opentelemetry_proto::tonic::common::v1::AnyValue>) -> String {
    use opentelemetry_proto::tonic::common::v1::any_value::Value as V;
    match value.and_then(|v| v.value.as_ref()) {
        Some(V::StringValue(s)) => s.clone(),
        Some(V::IntValue(i)) => i.to_string(),
        Some(V::BoolValue(b)) => b.to_string(),
        Some(V::DoubleValue(d)) => d.to_string(),
        _ => String::new(),
    }
}

/// `config` served by `token-broker serve` on a port of its own, its public URL (and
/// the resource's) that port, the upstream the in-process dev IdP at `issuer`, with
/// `telemetry` (left as written) after it.
async fn serve(config: String, issuer: &str, telemetry: &str) -> (BrokerProcess, String) {
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let text = config
        .replace(UPSTREAM_PLACEHOLDER, issuer)
        .replace("\"test-secret\"", "\"token-broker-secret\"")
        .replace("127.0.0.1:0", &format!("127.0.0.1:{port}"))
        .replace("http://127.0.0.1:9", &base)
        + telemetry;
    // Blocking until it listens: off this runtime, which serves the dev IdP it calls.
    let broker = actix_web::rt::task::spawn_blocking(move || BrokerProcess::spawn(&text, &[]))
        .await
        .unwrap();
    (broker, base)
}

/// SIGTERM, and the exit that flushes the queued spans.
async fn stop(mut broker: BrokerProcess) -> String {
    actix_web::rt::task::spawn_blocking(move || {
        broker.terminate();
        let code = broker.wait_exit();
        let logs = broker.logs();
        assert_eq!(code, Some(0), "{logs}");
        logs
    })
    .await
    .unwrap()
}

fn otlp(endpoint: &str, protocol: &str) -> String {
    format!(
        "\n[telemetry.otlp]\nendpoint = \"{endpoint}\"\nprotocol = \"{protocol}\"\nservice_name = \"broker-under-test\"\n"
    )
}

/// A login whose callback (the provider's redirect back) carries `traceparent`: the
/// broker redeems the provider's code at the dev IdP's token endpoint meanwhile.
async fn login_with_traceparent(base: &str, traceparent: &str) {
    let client = register(base, "Traced client").await;
    let to = login_redirect_with(base, &client, &[], &[("traceparent", traceparent)]).await;
    assert!(to.as_str().contains("code="), "{to}");
}

async fn traceparents_at(idp: &str, path: &str) -> Vec<String> {
    let body: Value = http()
        .get(format!("{idp}/_dev/traceparents"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["traceparents"][path]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|v| v.as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[actix_web::test]
async fn a_login_is_one_trace_from_the_caller_through_the_broker_to_the_provider() {
    let (receiver, endpoint) = Receiver::start();
    let idp = TestDevIdp::start().await;
    let telemetry = otlp(&endpoint, "http/protobuf");
    let (broker, base) = serve(config_text(), &idp.url, &telemetry).await;

    login_with_traceparent(&base, &traceparent()).await;
    let logs = stop(broker).await;

    let spans = receiver.in_trace(TRACE_ID);
    let server = spans
        .iter()
        .find(|s| s.kind == SERVER)
        .unwrap_or_else(|| panic!("no server span in the caller's trace: {spans:#?}\n{logs}"));
    assert_eq!(server.name, "GET /oauth/callback");
    assert_eq!(
        server.parent_span_id, CALLER_SPAN,
        "the caller's span is the parent"
    );
    assert_eq!(server.attribute("http.request.method"), Some("GET"));
    assert_eq!(server.attribute("http.route"), Some("/oauth/callback"));
    assert_eq!(server.attribute("http.response.status_code"), Some("303"));
    assert_eq!(server.service, "broker-under-test");
    let token_call = spans
        .iter()
        .find(|s| s.kind == CLIENT && s.name == "token")
        .unwrap_or_else(|| panic!("no token call in the trace: {spans:#?}"));
    assert_eq!(token_call.parent_span_id, server.span_id);
    assert_eq!(
        token_call.attribute("http.response.status_code"),
        Some("200")
    );
    assert_eq!(token_call.attribute("url.path"), Some("/token"));
    assert_eq!(token_call.attribute("server.address"), Some("127.0.0.1"));

    // The provider received the trace: the broker's token call as the parent.
    let received = traceparents_at(&idp.url, "/token").await;
    assert_eq!(
        received,
        vec![format!("00-{TRACE_ID}-{}-01", token_call.span_id)]
    );
    // Requests without a traceparent start traces of their own.
    let consent_spans = receiver.spans.lock().unwrap().clone();
    assert!(
        consent_spans
            .iter()
            .any(|s| s.name == "POST /oauth/consent" && s.trace_id != TRACE_ID),
        "{consent_spans:#?}"
    );
    let content_types = receiver.content_types.lock().unwrap().clone();
    assert!(
        content_types.iter().all(|c| c == "application/x-protobuf"),
        "{content_types:?}"
    );
}

/// Forward-auth on a resource with an exchange: the miss's exchange at the provider is
/// a client span under the check's server span, in the proxy's trace, and the provider
/// receives that trace.
#[actix_web::test]
async fn a_forward_auth_exchange_is_one_trace_from_the_proxy_to_the_provider() {
    use crate::exchange::NOTES;
    let (receiver, endpoint) = Receiver::start();
    let idp = TestDevIdp::start().await;
    let config = crate::exchange::text().replacen(
        "scopes_supported = [\"notes:read\", \"notes:write\"]\n",
        &format!(
            "scopes_supported = [\"notes:read\", \"notes:write\"]\nexchange_audience = \"{NOTES}\"\n"
        ),
        1,
    );
    // A collector key with `%` in it, sent as written (the OTLP crate would decode
    // `%41` to `A` and `%25` to `%` if the broker did not escape them first).
    let telemetry =
        otlp(&endpoint, "http/json") + "[telemetry.otlp.headers]\nx-api-key = \"k%41y%25z\"\n";
    let (broker, base) = serve(config, &idp.url, &telemetry).await;
    let token = idp
        .service_token(&format!("{base}/mcp"), "notes:read")
        .await;

    let answer = http()
        .get(format!("{base}/auth/verify"))
        .header("x-original-uri", "/mcp")
        .header("traceparent", traceparent())
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert!(answer.headers().contains_key("x-auth-access-token"));
    let logs = stop(broker).await;

    let spans = receiver.in_trace(TRACE_ID);
    let server = spans
        .iter()
        .find(|s| s.kind == SERVER)
        .unwrap_or_else(|| panic!("no server span in the proxy's trace: {spans:#?}\n{logs}"));
    assert_eq!(server.name, "GET /auth/verify");
    assert_eq!(server.parent_span_id, CALLER_SPAN);
    let exchange = spans
        .iter()
        .find(|s| s.kind == CLIENT && s.name == "exchange")
        .unwrap_or_else(|| panic!("no exchange call in the trace: {spans:#?}\n{logs}"));
    assert_eq!(exchange.parent_span_id, server.span_id);
    assert_eq!(exchange.attribute("http.response.status_code"), Some("200"));
    let received = traceparents_at(&idp.url, "/token").await;
    assert!(
        received.contains(&format!("00-{TRACE_ID}-{}-01", exchange.span_id)),
        "{received:?}"
    );
    let keys = receiver.api_keys.lock().unwrap().clone();
    assert!(
        !keys.is_empty() && keys.iter().all(|k| k == "k%41y%25z"),
        "{keys:?}"
    );
}

/// A gateway in front of the test MCP server, opened by an API key.
fn gateway_config(upstream: &str, key: &str) -> String {
    format!(
        r#"{}
[[api_keys]]
name = "tracer"
hash = "{}"
subject = "service:tracer"
scopes = ["notes:read"]

[[gateway]]
path = "/mcp"
upstream = "{upstream}/json"
"#,
        config_text(),
        hash_key(key)
    )
}

async fn list_tools(base: &str, key: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = http()
        .post(format!("{base}/mcp"))
        .bearer_auth(key)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/list" }).to_string());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    response
}

#[actix_web::test]
async fn a_gateway_call_is_one_trace_into_the_mcp_server_which_gets_the_request_id() {
    let (receiver, endpoint) = Receiver::start();
    let (mcp, upstream) = start_upstream();
    let key = generate_key();
    let config = gateway_config(&upstream, &key);
    // No provider: an API key needs none.
    let telemetry = otlp(&endpoint, "http/json");
    let (broker, base) = serve(config, "http://127.0.0.1:1/realms/none", &telemetry).await;

    list_tools(
        &base,
        &key,
        &[
            ("traceparent", &traceparent()),
            ("tracestate", "vendor=opaque"),
            ("x-request-id", "caller-request-7"),
        ],
    )
    .await;
    let logs = stop(broker).await;

    let seen = mcp.last();
    assert_eq!(seen.header("x-request-id"), Some("caller-request-7"));
    assert_eq!(seen.header("tracestate"), Some("vendor=opaque"));
    let sent = seen.header("traceparent").expect("traceparent sent on");
    let spans = receiver.in_trace(TRACE_ID);
    let server = spans
        .iter()
        .find(|s| s.kind == SERVER)
        .unwrap_or_else(|| panic!("no server span: {spans:#?}\n{logs}"));
    assert_eq!(server.name, "POST /mcp");
    assert_eq!(server.parent_span_id, CALLER_SPAN);
    assert_eq!(server.attribute("request_id"), Some("caller-request-7"));
    let hop = spans
        .iter()
        .find(|s| s.kind == CLIENT && s.name == "mcp_server")
        .unwrap_or_else(|| panic!("no gateway hop: {spans:#?}"));
    assert_eq!(hop.parent_span_id, server.span_id);
    // The MCP server's parent is the gateway's hop, in the caller's trace.
    assert_eq!(sent, format!("00-{TRACE_ID}-{}-01", hop.span_id));
    let content_types = receiver.content_types.lock().unwrap().clone();
    assert!(
        content_types
            .iter()
            .all(|c| c.starts_with("application/json")),
        "{content_types:?}"
    );
}

#[actix_web::test]
async fn off_the_broker_adds_no_trace_context_and_the_gateway_passes_the_callers_on() {
    let (mcp, upstream) = start_upstream();
    let key = generate_key();
    let broker =
        TestBroker::start_live(&gateway_config(&upstream, &key), Default::default(), |_| {}).await;

    let answered = list_tools(&broker.url, &key, &[("traceparent", &traceparent())]).await;
    let ours = answered.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(ours.len(), 32, "the broker's own id: {ours}");
    let seen = mcp.last();
    assert_eq!(seen.header("traceparent"), Some(traceparent().as_str()));
    assert_eq!(seen.header("x-request-id"), Some(ours.as_str()));
    // A request id that is not well-formed is replaced by the broker's.
    let answered = list_tools(&broker.url, &key, &[("x-request-id", "two words")]).await;
    let ours = answered.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_ne!(ours, "two words");
    assert_eq!(mcp.last().header("x-request-id"), Some(ours.as_str()));
    assert_eq!(mcp.last().header("traceparent"), None);

    // The provider gets no traceparent from a broker that does not trace.
    login_with_traceparent(&broker.url, &traceparent()).await;
    assert!(traceparents_at(&broker.idp.url, "/token").await.is_empty());
}
