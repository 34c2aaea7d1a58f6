//! The MCP server behind the gateway in the tests: it records what it receives and
//! answers `tools/list` with a fixed list, in plain JSON, in an event stream, or in a
//! stream held back after its first event until the test releases it.

use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use actix_web::web::{self, Bytes};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer};
use serde_json::{Value, json};
use tokio::sync::Notify;

const TOOLS: [&str; 4] = ["notes_read", "notes_write", "get_note", "health"];
/// The freshness the server gives its tool list.
pub const TTL_MS: u64 = 60_000;

/// One request as the test MCP server received it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The MCP server behind the gateway: records what it receives; `/json` answers in
/// plain JSON, `/sse` in an event stream, `/slow` sends a first event and the rest
/// only once the test calls `release`.
#[derive(Default)]
pub struct Recorder {
    seen: Mutex<Vec<Seen>>,
    pub release: Notify,
}

impl Recorder {
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    pub fn last(&self) -> Seen {
        self.seen().pop().expect("a request reached the MCP server")
    }
}

/// A loopback listener whose address survives `start_live`, which rewrites every
/// `http://127.0.0.1:9…` in the configuration to the broker's own address.
pub fn listener() -> TcpListener {
    loop {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        if !listener
            .local_addr()
            .unwrap()
            .port()
            .to_string()
            .starts_with('9')
        {
            return listener;
        }
    }
}

pub fn start_upstream() -> (Arc<Recorder>, String) {
    let recorder = Arc::new(Recorder::default());
    let data = web::Data::from(recorder.clone());
    let listener = listener();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .default_service(web::to(mcp))
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    actix_web::rt::spawn(server);
    (recorder, url)
}

fn answer(message: &Value) -> Option<Value> {
    let id = message.get("id")?.clone();
    let result = match message["method"].as_str() {
        Some("initialize") => json!({ "protocolVersion": "2025-11-25", "capabilities": {} }),
        Some("tools/list") => {
            json!({
                "tools": TOOLS.iter().map(|t| json!({ "name": t, "inputSchema": {} })).collect::<Vec<_>>(),
                // MCP 2026-07-28 caching hints, as a server unaware of the filtering gives them.
                "ttlMs": TTL_MS,
                "cacheScope": "public",
            })
        }
        Some("tools/call") => json!({
            "content": [{ "type": "text", "text": format!("called {}", message["params"]["name"].as_str().unwrap_or("?")) }]
        }),
        _ => json!({}),
    };
    Some(json!({ "jsonrpc": "2.0", "id": id, "result": result }))
}

fn event(message: &Value) -> String {
    format!("event: message\ndata: {message}\n\n")
}

pub fn progress() -> String {
    event(
        &json!({ "jsonrpc": "2.0", "method": "notifications/progress", "params": { "progress": 1 } }),
    )
}

async fn mcp(req: HttpRequest, body: Bytes, recorder: web::Data<Recorder>) -> HttpResponse {
    recorder.seen.lock().unwrap().push(Seen {
        method: req.method().to_string(),
        path: req.path().to_owned(),
        headers: req
            .headers()
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or("").to_owned()))
            .collect(),
    });
    match req.method().as_str() {
        // A resumed stream replaying an earlier tools/list answer.
        "GET" => {
            return HttpResponse::Ok()
                .content_type("text/event-stream")
                .body(event(
                    &answer(&json!({"id": 99, "method": "tools/list"})).unwrap(),
                ));
        }
        "DELETE" => return HttpResponse::NoContent().finish(),
        _ => {}
    }
    let request: Value = serde_json::from_slice(&body).unwrap();
    let answers: Vec<Value> = match &request {
        Value::Array(items) => items.iter().filter_map(answer).collect(),
        one => answer(one).into_iter().collect(),
    };
    if answers.is_empty() {
        return HttpResponse::Accepted().finish();
    }
    let session = ("mcp-session-id", "sess-42");
    match req.path() {
        "/sse" => {
            let mut text = progress();
            for a in &answers {
                text.push_str(&event(a));
            }
            HttpResponse::Ok()
                .content_type("text/event-stream")
                .body(text)
        }
        "/slow" => {
            let rest: String = answers.iter().map(event).collect();
            let first = futures_util::stream::once(async {
                Ok::<_, actix_web::Error>(Bytes::from(progress()))
            });
            let then = futures_util::stream::once(async move {
                recorder.release.notified().await;
                Ok::<_, actix_web::Error>(Bytes::from(rest))
            });
            HttpResponse::Ok()
                .content_type("text/event-stream")
                .streaming(futures_util::StreamExt::chain(first, then))
        }
        _ => {
            let body = match &request {
                Value::Array(_) => Value::Array(answers),
                _ => answers.into_iter().next().unwrap(),
            };
            HttpResponse::Ok().insert_header(session).json(body)
        }
    }
}
