//! The one instrumentation point of every call the broker makes to another server —
//! the provider (discovery, JWKS, token, exchange, revocation, introspection,
//! userinfo, registration), a client's metadata document or `jwks_uri`, the gateway's MCP
//! server: a client span (its `traceparent` sent on when tracing is on) and
//! `token_broker_upstream_request_duration_seconds{operation,outcome}`, both measured
//! from sending the request to the response's head.

use std::time::Instant;

use tracing::Instrument;
use tracing::field::Empty;

use super::metrics::Metrics;
use super::propagation::Propagation;

/// What an upstream call is for: the histogram's `operation` label and the span's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// The provider's discovery document (OIDC Discovery, RFC 8414).
    Discovery,
    /// A JWK Set: the provider's, or an ID-JAG issuer's.
    Jwks,
    /// The provider's token endpoint: code, refresh, client credentials.
    Token,
    /// Token exchange at the provider (RFC 8693, on-behalf-of, refresh for a resource).
    Exchange,
    /// RFC 7009 revocation at the provider.
    Revocation,
    /// RFC 7662 introspection at the provider.
    Introspection,
    /// The provider's userinfo endpoint (OIDC Core §5.3), `upstream.claims.userinfo`.
    Userinfo,
    /// Dynamic client registration at the provider (RFC 7591, RFC 7592).
    Registration,
    /// A Client ID Metadata Document.
    MetadataDocument,
    /// A registered client's `jwks_uri`.
    ClientJwks,
    /// The gateway's MCP server.
    McpServer,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Discovery => "discovery",
            Self::Jwks => "jwks",
            Self::Token => "token",
            Self::Exchange => "exchange",
            Self::Revocation => "revocation",
            Self::Introspection => "introspection",
            Self::Userinfo => "userinfo",
            Self::Registration => "registration",
            Self::MetadataDocument => "metadata_document",
            Self::ClientJwks => "client_jwks",
            Self::McpServer => "mcp_server",
        }
    }
}

/// How an upstream call ended, for the histogram's `outcome` label: its status, or
/// `None` when no answer came.
fn outcome(status: Option<u16>) -> &'static str {
    match status {
        Some(500..) => "server_error",
        Some(400..) => "client_error",
        Some(_) => "ok",
        None => "unreachable",
    }
}

/// A hyper client of the kind the gateway's hop uses (`send_hop`).
pub type HopClient<C, B> = hyper_util::client::legacy::Client<C, B>;

/// Sends upstream requests with their span and histogram. Cheap to clone. The
/// default records nothing and sends no trace context (the `check-upstream` command).
#[derive(Clone, Default)]
pub struct UpstreamCalls {
    metrics: Option<Metrics>,
    propagation: Propagation,
}

impl UpstreamCalls {
    pub fn new(metrics: Metrics, propagation: Propagation) -> Self {
        Self {
            metrics: Some(metrics),
            propagation,
        }
    }

    /// Whether calls carry the trace context on.
    pub fn propagation(&self) -> Propagation {
        self.propagation
    }

    /// Sends `request` for `operation`. A call dropped before its answer (a caller's
    /// timeout, a client gone) is recorded with outcome `cancelled`.
    pub async fn send(
        &self,
        operation: Operation,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, reqwest::Error> {
        let (client, request) = request.build_split();
        let mut request = request?;
        let url = request.url();
        let target = Target {
            method: request.method().as_str(),
            host: url.host_str().unwrap_or(""),
            port: url.port_or_known_default(),
            path: url.path(),
        };
        let (span, mut timing) = self.begin(operation, &target);
        self.propagation.inject(&span, request.headers_mut());
        let result = client.execute(request).instrument(span.clone()).await;
        let status = result.as_ref().ok().map(|r| r.status().as_u16());
        timing.end(&span, status);
        result
    }

    /// Sends `request` for `operation` with a hyper `client` (the gateway's hop), as
    /// [`send`](Self::send) does with reqwest.
    pub async fn send_hop<C, B>(
        &self,
        operation: Operation,
        client: &HopClient<C, B>,
        mut request: http::Request<B>,
    ) -> Result<http::Response<hyper::body::Incoming>, hyper_util::client::legacy::Error>
    where
        C: hyper_util::client::legacy::connect::Connect + Clone + Send + Sync + 'static,
        B: hyper::body::Body + Send + Unpin + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let uri = request.uri();
        let secure = uri.scheme() == Some(&http::uri::Scheme::HTTPS);
        let target = Target {
            method: request.method().as_str(),
            host: uri.host().unwrap_or(""),
            port: uri.port_u16().or(Some(if secure { 443 } else { 80 })),
            path: uri.path(),
        };
        let (span, mut timing) = self.begin(operation, &target);
        self.propagation.inject(&span, request.headers_mut());
        let result = client.request(request).instrument(span.clone()).await;
        let status = result.as_ref().ok().map(|r| r.status().as_u16());
        timing.end(&span, status);
        result
    }

    /// The call's span and its timing, started now.
    fn begin(&self, operation: Operation, target: &Target<'_>) -> (tracing::Span, Timing<'_>) {
        // The path without the query: a gateway's caller chooses the query.
        let span = tracing::info_span!(
            "upstream call",
            otel.name = operation.as_str(),
            otel.kind = "client",
            otel.status_code = Empty,
            upstream.operation = operation.as_str(),
            http.request.method = target.method,
            server.address = target.host,
            server.port = target.port,
            url.path = target.path,
            http.response.status_code = Empty,
        );
        let timing = Timing {
            metrics: self.metrics.as_ref(),
            operation,
            started: Instant::now(),
            outcome: None,
        };
        (span, timing)
    }
}

/// Where a call goes, as its span names it.
struct Target<'a> {
    method: &'a str,
    host: &'a str,
    port: Option<u16>,
    path: &'a str,
}

/// Records the call's duration when it ends, however it ends.
struct Timing<'a> {
    metrics: Option<&'a Metrics>,
    operation: Operation,
    started: Instant,
    outcome: Option<&'static str>,
}

impl Timing<'_> {
    /// The call answered with `status`, or not at all (`None`).
    fn end(&mut self, span: &tracing::Span, status: Option<u16>) {
        let outcome = outcome(status);
        if let Some(status) = status {
            span.record("http.response.status_code", status);
        }
        if matches!(outcome, "server_error" | "unreachable") {
            span.record("otel.status_code", "error");
        }
        self.outcome = Some(outcome);
    }
}

impl Drop for Timing<'_> {
    fn drop(&mut self) {
        if let Some(metrics) = self.metrics {
            metrics.observe_upstream(
                self.operation.as_str(),
                self.outcome.unwrap_or("cancelled"),
                self.started.elapsed().as_secs_f64(),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// Answers every connection with `status` and an empty body.
    fn server(status: u16) -> String {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/doc", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut buffer = [0u8; 4096];
                let _ = stream.read(&mut buffer);
                let answer = format!(
                    "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                );
                let _ = stream.write_all(answer.as_bytes());
            }
        });
        url
    }

    fn count(metrics: &Metrics, operation: &str, outcome: &str) -> u64 {
        let text = metrics.render().unwrap();
        let prefix = format!(
            "token_broker_upstream_request_duration_seconds_count{{operation=\"{operation}\",outcome=\"{outcome}\"}} "
        );
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .map_or(0, |n| n.trim().parse().unwrap())
    }

    #[actix_web::test]
    async fn each_call_is_counted_by_operation_and_outcome() {
        let metrics = Metrics::new().unwrap();
        let calls = UpstreamCalls::new(metrics.clone(), Propagation::OFF);
        let client = reqwest::Client::new();
        let (ok, refused, failing) = (server(200), server(400), server(503));
        calls
            .send(Operation::Discovery, client.get(&ok))
            .await
            .unwrap();
        calls
            .send(Operation::Token, client.post(&refused))
            .await
            .unwrap();
        calls
            .send(Operation::Token, client.post(&failing))
            .await
            .unwrap();
        let closed = format!("http://{}/", closed_port());
        assert!(
            calls
                .send(Operation::Jwks, client.get(&closed))
                .await
                .is_err()
        );
        assert_eq!(count(&metrics, "discovery", "ok"), 1);
        assert_eq!(count(&metrics, "token", "client_error"), 1);
        assert_eq!(count(&metrics, "token", "server_error"), 1);
        assert_eq!(count(&metrics, "jwks", "unreachable"), 1);
        // A call given up by its caller still counts.
        let hanging = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", hanging.local_addr().unwrap());
        let sent = calls.send(Operation::McpServer, client.get(&url));
        assert!(
            tokio::time::timeout(Duration::from_millis(200), sent)
                .await
                .is_err()
        );
        assert_eq!(count(&metrics, "mcp_server", "cancelled"), 1);
    }

    #[actix_web::test]
    async fn a_hop_is_counted_as_a_call_is() {
        use http_body_util::Empty;
        use hyper_util::client::legacy::connect::HttpConnector;
        let metrics = Metrics::new().unwrap();
        let calls = UpstreamCalls::new(metrics.clone(), Propagation::OFF);
        let client: HopClient<HttpConnector, Empty<actix_web::web::Bytes>> =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build(HttpConnector::new());
        let get = |url: &str| {
            http::Request::get(url)
                .body(Empty::<actix_web::web::Bytes>::new())
                .unwrap()
        };
        for status in [200, 404, 502] {
            let answer = calls
                .send_hop(Operation::McpServer, &client, get(&server(status)))
                .await
                .unwrap();
            assert_eq!(answer.status().as_u16(), status);
        }
        let closed = format!("http://{}/", closed_port());
        assert!(
            calls
                .send_hop(Operation::McpServer, &client, get(&closed))
                .await
                .is_err()
        );
        for outcome in ["ok", "client_error", "server_error", "unreachable"] {
            assert_eq!(count(&metrics, "mcp_server", outcome), 1, "{outcome}");
        }
    }

    fn closed_port() -> std::net::SocketAddr {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    }
}
