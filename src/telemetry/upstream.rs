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

/// How an upstream call ended, for the histogram's `outcome` label.
fn outcome(result: &Result<reqwest::Response, reqwest::Error>) -> &'static str {
    match result {
        Ok(response) if response.status().is_server_error() => "server_error",
        Ok(response) if response.status().is_client_error() => "client_error",
        Ok(_) => "ok",
        Err(_) => "unreachable",
    }
}

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
        // The path without the query: a gateway's caller chooses the query.
        let span = tracing::info_span!(
            "upstream call",
            otel.name = operation.as_str(),
            otel.kind = "client",
            otel.status_code = Empty,
            upstream.operation = operation.as_str(),
            http.request.method = request.method().as_str(),
            server.address = url.host_str().unwrap_or(""),
            server.port = url.port_or_known_default(),
            url.path = url.path(),
            http.response.status_code = Empty,
        );
        self.propagation.inject(&span, request.headers_mut());
        let mut timing = Timing {
            metrics: self.metrics.as_ref(),
            operation,
            started: Instant::now(),
            outcome: None,
        };
        let result = client.execute(request).instrument(span.clone()).await;
        let outcome = outcome(&result);
        if let Ok(response) = &result {
            span.record("http.response.status_code", response.status().as_u16());
        }
        if matches!(outcome, "server_error" | "unreachable") {
            span.record("otel.status_code", "error");
        }
        timing.outcome = Some(outcome);
        result
    }
}

/// Records the call's duration when it ends, however it ends.
struct Timing<'a> {
    metrics: Option<&'a Metrics>,
    operation: Operation,
    started: Instant,
    outcome: Option<&'static str>,
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

    fn closed_port() -> std::net::SocketAddr {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    }
}
