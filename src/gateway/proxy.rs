//! The hop to the MCP server: its own HTTP client (no redirects, a bound on connecting
//! and on the response head, none on a stream once it runs), the transport's headers
//! passed on both ways and nothing else, the client's token never, and answers
//! streamed back as they arrive — a tool list filtered on the way.

use std::sync::Arc;
use std::time::Duration;

use actix_web::HttpResponse;
use actix_web::body::{BodyStream, SizedStream};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderMap, HeaderName};
use actix_web::web::Bytes;
use futures_util::Stream;
use http::header::{HeaderName as HopName, HeaderValue as HopValue};
use http::uri::{PathAndQuery, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Incoming};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use super::GatewayError;
use super::access::Authorized;
use super::filter::{self, Lists, MAX_FILTERED_BYTES, SseFilter};
use crate::config::{GatewayConfig, IdentityHeaders};
use crate::telemetry::upstream::{Operation, UpstreamCalls};
use crate::upstream::http::POOL_IDLE_TIMEOUT;

/// Request headers the MCP server gets from the client (Streamable HTTP, the
/// 2026-07-28 request metadata, the request id — the caller's if well-formed, else the
/// broker's, `http/middleware.rs` — and W3C Trace Context, which the gateway's own span
/// replaces when tracing is on). Everything else — cookies, the client's
/// `Authorization`, `X-Auth-*` a client made up, hop-by-hop headers — stays here. The
/// session (`Outbound::session`) and `Last-Event-ID` (`Outbound::resume`) go on only
/// as the revision allows.
const REQUEST_HEADERS: [Passed; 8] = [
    Passed::both("accept"),
    Passed::both("content-type"),
    Passed::both("mcp-protocol-version"),
    Passed::both("mcp-method"),
    Passed::both("mcp-name"),
    Passed::both("x-request-id"),
    Passed::both("traceparent"),
    Passed::both("tracestate"),
];

/// Resuming a stream (2025-03-26 to 2025-11-25; 2026-07-28 streams do not resume).
const LAST_EVENT_ID: [Passed; 1] = [Passed::both("last-event-id")];

/// Response headers the client gets from the MCP server (the session id as the
/// gateway's `sessions` rewrites it). Not `WWW-Authenticate`: the server's challenges
/// are about the downstream token, not the client's.
const RESPONSE_HEADERS: [Passed; 4] = [
    Passed::both("content-type"),
    Passed::both("mcp-session-id"),
    Passed::both("retry-after"),
    Passed::both("allow"),
];

/// A header passed between the client (actix's `http` 0.2 types) and the MCP server
/// (hyper's `http` 1): its name in both, built at compile time, not per request.
struct Passed {
    client: HeaderName,
    server: HopName,
}

impl Passed {
    const fn both(name: &'static str) -> Self {
        Self {
            client: HeaderName::from_static(name),
            server: HopName::from_static(name),
        }
    }
}

const X_AUTH_SUBJECT: HopName = HopName::from_static("x-auth-subject");
const X_AUTH_SCOPES: HopName = HopName::from_static("x-auth-scopes");
const X_AUTH_CLIENT_ID: HopName = HopName::from_static("x-auth-client-id");
const MCP_SESSION_ID: HopName = HopName::from_static("mcp-session-id");

/// How often TCP probes a connection that stays quiet (a long event stream), as
/// reqwest does. An idle one is kept for the next request only as long as the
/// provider's client keeps one ([`POOL_IDLE_TIMEOUT`]: MCP servers on uvicorn, Node or
/// actix-web close theirs after 5 s, and a request sent as one closes fails).
const TCP_KEEPALIVE: Duration = Duration::from_secs(15);

type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

/// One `[[gateway]]` entry's MCP server.
pub struct Upstream {
    /// HTTP/1.1, or HTTP/2 where TLS negotiates it; no redirects followed, no proxy
    /// from the environment: the hop goes to the configured server and nowhere else.
    client: Client<Connector, Full<Bytes>>,
    /// The configured URL as the request line's target (it has no query).
    uri: Uri,
    timeout: Duration,
    user_agent: HopValue,
    /// `[forward_auth]`'s identity header names, as the MCP server reads them.
    identity: [HopName; 3],
    calls: UpstreamCalls,
}

/// A request on its way to the MCP server.
pub struct Outbound<'r> {
    pub method: http::Method,
    pub headers: &'r HeaderMap,
    pub query: Option<&'r str>,
    pub body: Option<Bytes>,
    /// The MCP server's own session id, once bound to the caller.
    pub session: Option<String>,
    /// Whether `Last-Event-ID` goes on (a revision with resumable streams).
    pub resume: bool,
}

impl Upstream {
    pub fn new(
        config: &GatewayConfig,
        identity: &IdentityHeaders,
        calls: UpstreamCalls,
    ) -> Result<Self, String> {
        let name = |name: &actix_web::http::header::HeaderName| {
            HopName::from_bytes(name.as_str().as_bytes())
                .map_err(|e| format!("the identity header `{name}` cannot be sent: {e}"))
        };
        let identity = [
            name(&identity.email)?,
            name(&identity.user)?,
            name(&identity.groups)?,
        ];
        let uri = config
            .upstream
            .as_str()
            .parse::<Uri>()
            .map_err(|e| format!("`{}` cannot be requested: {e}", config.upstream))?;
        Ok(Self {
            client: hop_client(config.timeout.min(Duration::from_secs(5)))?,
            uri,
            timeout: config.timeout,
            user_agent: HopValue::from_static(concat!(
                "token-broker-gateway/",
                env!("CARGO_PKG_VERSION")
            )),
            identity,
            calls,
        })
    }

    pub fn url(&self) -> &Uri {
        &self.uri
    }

    /// Sends the request on for `authorized` and answers with the MCP server's
    /// response, streamed; with `lists`, tool lists are filtered by `visible`.
    pub async fn forward<F>(
        &self,
        outbound: Outbound<'_>,
        authorized: &Authorized<'_>,
        lists: Option<Lists>,
        visible: F,
    ) -> Result<HttpResponse, GatewayError>
    where
        F: Fn(&str) -> bool + 'static,
    {
        let mut headers = http::HeaderMap::with_capacity(16);
        pass_on(outbound.headers, &REQUEST_HEADERS, &mut headers);
        if outbound.resume {
            pass_on(outbound.headers, &LAST_EVENT_ID, &mut headers);
        }
        headers.insert(http::header::USER_AGENT, self.user_agent.clone());
        if let Some(session) = outbound.session {
            // The server's own id, as it sent it; one that cannot go back is not
            // dropped (the request would reach the server outside its session).
            let value = HopValue::try_from(session).map_err(GatewayError::unreachable)?;
            headers.insert(MCP_SESSION_ID, value);
        }
        if let Some(principal) = &authorized.principal {
            let client_id = principal.client_id.as_deref().unwrap_or("");
            for (name, value) in [
                (X_AUTH_SUBJECT, principal.subject.as_str()),
                (X_AUTH_SCOPES, &principal.scopes.to_string()),
                (X_AUTH_CLIENT_ID, client_id),
            ] {
                if let Ok(value) = HopValue::from_str(value) {
                    headers.insert(name, value);
                }
            }
            // Only these names reach the MCP server: a client's own `X-Auth-Groups`
            // (or the configured name) is not among REQUEST_HEADERS, so never passed.
            let identity = principal.identity.as_deref();
            let [email, user, groups] = &self.identity;
            for (name, value) in [
                (email, identity.and_then(|i| i.email.clone())),
                (user, identity.and_then(|i| i.username.clone())),
                (groups, identity.map(|i| i.groups_header())),
            ] {
                let value = value.unwrap_or_default();
                if let Ok(value) = HopValue::try_from(value) {
                    headers.insert(name.clone(), value);
                }
            }
        }
        if let Some(downstream) = &authorized.downstream {
            // A downstream token that is no header value fails the call (502), as an
            // unsendable request does; it never goes on without its token.
            let mut value = HopValue::try_from(format!("Bearer {}", downstream.access_token))
                .map_err(GatewayError::unreachable)?;
            value.set_sensitive(true);
            headers.insert(http::header::AUTHORIZATION, value);
        }
        let mut request = http::Request::new(Full::new(outbound.body.unwrap_or_default()));
        *request.method_mut() = outbound.method;
        *request.uri_mut() = self.target(outbound.query)?;
        *request.headers_mut() = headers;
        let sent = self
            .calls
            .send_hop(Operation::McpServer, &self.client, request);
        let response = tokio::time::timeout(self.timeout, sent)
            .await
            .map_err(|_| GatewayError::Timeout(self.timeout))?
            .map_err(GatewayError::unreachable)?;
        self.respond(response, lists, visible).await
    }

    /// The request target: the configured URL with the client's query, if any.
    fn target(&self, query: Option<&str>) -> Result<Uri, GatewayError> {
        let Some(query) = query else {
            return Ok(self.uri.clone());
        };
        // The query came through actix's request line (`http` 0.2), whose characters
        // `http` 1 takes too: this does not fail for a query the broker accepted.
        let mut parts = self.uri.clone().into_parts();
        let path_and_query =
            PathAndQuery::from_maybe_shared(format!("{}?{query}", self.uri.path()))
                .map_err(GatewayError::unreachable)?;
        parts.path_and_query = Some(path_and_query);
        Uri::from_parts(parts).map_err(GatewayError::unreachable)
    }

    async fn respond<F>(
        &self,
        response: http::Response<Incoming>,
        lists: Option<Lists>,
        visible: F,
    ) -> Result<HttpResponse, GatewayError>
    where
        F: Fn(&str) -> bool + 'static,
    {
        let status =
            StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
        let mut builder = HttpResponse::build(status);
        for (name, value) in pass_back(response.headers()) {
            builder.insert_header((name, value));
        }
        let content_type = response
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        if content_type.starts_with("text/event-stream") {
            // Streamable HTTP: a proxy in front (nginx) must not hold events back.
            builder.insert_header(("x-accel-buffering", "no"));
        }
        let body = response.into_body();
        let Some(mut lists) = lists.filter(|_| status.is_success()) else {
            return Ok(streamed(builder, body));
        };
        if content_type.starts_with("text/event-stream") {
            let filter = SseFilter::new(lists, visible, MAX_FILTERED_BYTES);
            return Ok(builder.streaming(filtered(body, filter)));
        }
        if content_type.starts_with("application/json") {
            let body = tokio::time::timeout(self.timeout, read_bounded(body))
                .await
                .map_err(|_| GatewayError::Timeout(self.timeout))??;
            return Ok(match filter::filter_json(&body, &mut lists, &visible)? {
                Some(filtered) => builder.body(filtered),
                None => builder.body(body),
            });
        }
        // An answer to tools/list in a form that cannot be read would go on unfiltered.
        if status == StatusCode::OK {
            return Err(GatewayError::Unfilterable(
                "neither JSON nor an event stream",
            ));
        }
        Ok(streamed(builder, body))
    }
}

/// The hop's client: connecting bounded by `connect_timeout`, TLS checked against the
/// platform's roots (as reqwest does), idle connections kept for the next request.
fn hop_client(connect_timeout: Duration) -> Result<Client<Connector, Full<Bytes>>, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(rustls_platform_verifier::BuilderVerifierExt::with_platform_verifier)
        .map_err(|e| format!("cannot set up TLS for the gateway's HTTP client: {e}"))?
        .with_no_client_auth();
    Ok(client_with(tls, connect_timeout))
}

/// A hop client trusting what `tls` trusts.
fn client_with(
    tls: rustls::ClientConfig,
    connect_timeout: Duration,
) -> Client<Connector, Full<Bytes>> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(connect_timeout));
    http.set_nodelay(true);
    http.set_keepalive(Some(TCP_KEEPALIVE));
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_all_versions()
        .wrap_connector(http);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .pool_timer(TokioTimer::new())
        .build(connector)
}

/// Copies the allow-listed headers of `headers` into `out`, less any the `Connection`
/// header names (hop-by-hop, RFC 9110 §7.6.1).
fn pass_on(headers: &HeaderMap, allowed: &[Passed], out: &mut http::HeaderMap) {
    let hop = connection_names(
        headers
            .get(header::CONNECTION)
            .and_then(|v| v.to_str().ok()),
    );
    for name in allowed {
        if hop
            .iter()
            .any(|h| h.eq_ignore_ascii_case(name.client.as_str()))
        {
            continue;
        }
        for value in headers.get_all(&name.client) {
            if let Ok(value) = HopValue::from_bytes(value.as_bytes()) {
                out.append(name.server.clone(), value);
            }
        }
    }
}

fn pass_back(headers: &http::HeaderMap) -> Vec<(HeaderName, header::HeaderValue)> {
    let hop = connection_names(
        headers
            .get(http::header::CONNECTION)
            .and_then(|v| v.to_str().ok()),
    );
    RESPONSE_HEADERS
        .iter()
        .filter(|name| {
            !hop.iter()
                .any(|h| h.eq_ignore_ascii_case(name.server.as_str()))
        })
        .filter_map(|name| {
            let value = headers.get(&name.server)?;
            Some((
                name.client.clone(),
                header::HeaderValue::from_bytes(value.as_bytes()).ok()?,
            ))
        })
        .collect()
}

fn connection_names(value: Option<&str>) -> Vec<&str> {
    value
        .map(|v| v.split(',').map(str::trim).collect())
        .unwrap_or_default()
}

/// The next piece of the body, `None` at its end (trailers are not passed on).
async fn chunk(body: &mut Incoming) -> Result<Option<Bytes>, hyper::Error> {
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data()
            && !data.is_empty()
        {
            return Ok(Some(data));
        }
    }
    Ok(None)
}

/// The body as it comes, chunk by chunk; with its length when the server gave one.
fn streamed(mut builder: actix_web::HttpResponseBuilder, body: Incoming) -> HttpResponse {
    match body.size_hint().exact() {
        Some(length) => builder.body(SizedStream::new(length, chunks(body))),
        None => builder.body(BodyStream::new(chunks(body))),
    }
}

fn chunks(body: Incoming) -> impl Stream<Item = Result<Bytes, GatewayError>> {
    futures_util::stream::unfold(Some(body), |state| async move {
        let mut body = state?;
        match chunk(&mut body).await {
            Ok(Some(chunk)) => Some((Ok(chunk), Some(body))),
            Ok(None) => None,
            Err(error) => {
                tracing::warn!(%error, "the MCP server broke off its answer");
                Some((Err(GatewayError::unreachable(error)), None))
            }
        }
    })
}

/// An event stream with its tool lists filtered; each event goes on once complete.
fn filtered<F>(
    body: Incoming,
    filter: SseFilter<F>,
) -> impl Stream<Item = Result<Bytes, GatewayError>>
where
    F: Fn(&str) -> bool + 'static,
{
    futures_util::stream::unfold(Some((body, filter)), |state| async move {
        let (mut body, mut filter) = state?;
        loop {
            let result = match chunk(&mut body).await {
                Ok(Some(chunk)) => filter.push(chunk),
                Ok(None) => {
                    let rest = filter.finish();
                    return (!rest.is_empty()).then(|| (Ok(rest), None));
                }
                Err(error) => Err(GatewayError::unreachable(error)),
            };
            match result {
                Ok(out) if out.is_empty() => continue,
                Ok(out) => return Some((Ok(out), Some((body, filter)))),
                Err(error) => {
                    tracing::warn!(%error, "event stream from the MCP server ended");
                    return Some((Err(error), None));
                }
            }
        }
    })
}

/// A JSON body to filter, at most [`MAX_FILTERED_BYTES`].
async fn read_bounded(mut body: Incoming) -> Result<Vec<u8>, GatewayError> {
    let mut read = Vec::new();
    while let Some(chunk) = chunk(&mut body).await.map_err(GatewayError::unreachable)? {
        if read.len() + chunk.len() > MAX_FILTERED_BYTES {
            return Err(GatewayError::TooLarge(MAX_FILTERED_BYTES));
        }
        read.extend_from_slice(&chunk);
    }
    Ok(read)
}

#[cfg(test)]
mod tests;
