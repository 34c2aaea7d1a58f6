//! The hop to the MCP server: its own HTTP client (no redirects, a bound on connecting
//! and on the response head, none on a stream once it runs), the transport's headers
//! passed on both ways and nothing else, the client's token never, and answers
//! streamed back as they arrive — a tool list filtered on the way.

use std::time::Duration;

use actix_web::HttpResponse;
use actix_web::body::{BodyStream, SizedStream};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderMap, HeaderName};
use actix_web::web::Bytes;
use futures_util::Stream;
use url::Url;

use super::GatewayError;
use super::access::Authorized;
use super::filter::{self, Lists, MAX_FILTERED_BYTES, SseFilter};
use crate::config::{GatewayConfig, IdentityHeaders};
use crate::telemetry::upstream::{Operation, UpstreamCalls};

/// Request headers the MCP server gets from the client (Streamable HTTP, the
/// 2026-07-28 request metadata, the request id — the caller's if well-formed, else the
/// broker's, `http/middleware.rs` — and W3C Trace Context, which the gateway's own span
/// replaces when tracing is on). Everything else — cookies, the client's
/// `Authorization`, `X-Auth-*` a client made up, hop-by-hop headers — stays here. The
/// session (`Outbound::session`) and `Last-Event-ID` (`Outbound::resume`) go on only
/// as the revision allows.
const REQUEST_HEADERS: [&str; 8] = [
    "accept",
    "content-type",
    "mcp-protocol-version",
    "mcp-method",
    "mcp-name",
    "x-request-id",
    "traceparent",
    "tracestate",
];

/// Resuming a stream (2025-03-26 to 2025-11-25; 2026-07-28 streams do not resume).
const LAST_EVENT_ID: [&str; 1] = ["last-event-id"];

/// Response headers the client gets from the MCP server (the session id as the
/// gateway's `sessions` rewrites it). Not `WWW-Authenticate`: the server's challenges
/// are about the downstream token, not the client's.
const RESPONSE_HEADERS: [&str; 4] = ["content-type", "mcp-session-id", "retry-after", "allow"];

const X_AUTH_SUBJECT: &str = "x-auth-subject";
const X_AUTH_SCOPES: &str = "x-auth-scopes";
const X_AUTH_CLIENT_ID: &str = "x-auth-client-id";

/// One `[[gateway]]` entry's MCP server.
pub struct Upstream {
    client: reqwest::Client,
    url: Url,
    timeout: Duration,
    /// `[forward_auth]`'s identity header names, as the MCP server reads them.
    identity: [reqwest::header::HeaderName; 3],
    calls: UpstreamCalls,
}

/// A request on its way to the MCP server.
pub struct Outbound<'r> {
    pub method: reqwest::Method,
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
            reqwest::header::HeaderName::from_bytes(name.as_str().as_bytes())
                .map_err(|e| format!("the identity header `{name}` cannot be sent: {e}"))
        };
        let identity = [
            name(&identity.email)?,
            name(&identity.user)?,
            name(&identity.groups)?,
        ];
        let client = reqwest::Client::builder()
            .user_agent(concat!("token-broker-gateway/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(config.timeout.min(Duration::from_secs(5)))
            .build()
            .map_err(|e| format!("cannot build the gateway's HTTP client: {e}"))?;
        Ok(Self {
            client,
            url: config.upstream.clone(),
            timeout: config.timeout,
            identity,
            calls,
        })
    }

    pub fn url(&self) -> &Url {
        &self.url
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
        let mut url = self.url.clone();
        if outbound.query.is_some() {
            url.set_query(outbound.query);
        }
        let mut request = self
            .client
            .request(outbound.method, url)
            .headers(pass_on(outbound.headers, &REQUEST_HEADERS));
        if outbound.resume {
            request = request.headers(pass_on(outbound.headers, &LAST_EVENT_ID));
        }
        if let Some(session) = outbound.session {
            request = request.header("mcp-session-id", session);
        }
        if let Some(principal) = &authorized.principal {
            let client_id = principal.client_id.as_deref().unwrap_or("");
            for (name, value) in [
                (X_AUTH_SUBJECT, principal.subject.as_str()),
                (X_AUTH_SCOPES, &principal.scopes.to_string()),
                (X_AUTH_CLIENT_ID, client_id),
            ] {
                if let Ok(value) = reqwest::header::HeaderValue::from_str(value) {
                    request = request.header(name, value);
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
                if let Ok(value) = reqwest::header::HeaderValue::from_str(&value) {
                    request = request.header(name.clone(), value);
                }
            }
        }
        if let Some(downstream) = &authorized.downstream {
            request = request.bearer_auth(&downstream.access_token);
        }
        if let Some(body) = outbound.body {
            request = request.body(body);
        }
        let sent = self.calls.send(Operation::McpServer, request);
        let response = tokio::time::timeout(self.timeout, sent)
            .await
            .map_err(|_| GatewayError::Timeout(self.timeout))?
            .map_err(GatewayError::Unreachable)?;
        self.respond(response, lists, visible).await
    }

    async fn respond<F>(
        &self,
        response: reqwest::Response,
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
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        if content_type.starts_with("text/event-stream") {
            // Streamable HTTP: a proxy in front (nginx) must not hold events back.
            builder.insert_header(("x-accel-buffering", "no"));
        }
        let Some(mut lists) = lists.filter(|_| status.is_success()) else {
            return Ok(streamed(builder, response));
        };
        if content_type.starts_with("text/event-stream") {
            let filter = SseFilter::new(lists, visible, MAX_FILTERED_BYTES);
            return Ok(builder.streaming(filtered(response, filter)));
        }
        if content_type.starts_with("application/json") {
            let body = tokio::time::timeout(self.timeout, read_bounded(response))
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
        Ok(streamed(builder, response))
    }
}

/// The allow-listed headers of `headers`, less any the `Connection` header names
/// (hop-by-hop, RFC 9110 §7.6.1).
fn pass_on(headers: &HeaderMap, allowed: &[&str]) -> reqwest::header::HeaderMap {
    let hop = connection_names(
        headers
            .get(header::CONNECTION)
            .and_then(|v| v.to_str().ok()),
    );
    let mut out = reqwest::header::HeaderMap::new();
    for name in allowed {
        if hop.iter().any(|h| h.eq_ignore_ascii_case(name)) {
            continue;
        }
        for value in headers.get_all(*name) {
            // actix and reqwest use different versions of the `http` types.
            if let (Ok(name), Ok(value)) = (
                reqwest::header::HeaderName::from_bytes(name.as_bytes()),
                reqwest::header::HeaderValue::from_bytes(value.as_bytes()),
            ) {
                out.append(name, value);
            }
        }
    }
    out
}

fn pass_back(headers: &reqwest::header::HeaderMap) -> Vec<(HeaderName, header::HeaderValue)> {
    let hop = connection_names(
        headers
            .get(reqwest::header::CONNECTION)
            .and_then(|v| v.to_str().ok()),
    );
    RESPONSE_HEADERS
        .iter()
        .filter(|name| !hop.iter().any(|h| h.eq_ignore_ascii_case(name)))
        .filter_map(|name| {
            let value = headers.get(*name)?;
            Some((
                HeaderName::from_bytes(name.as_bytes()).ok()?,
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

/// The body as it comes, chunk by chunk; with its length when the server gave one.
fn streamed(
    mut builder: actix_web::HttpResponseBuilder,
    response: reqwest::Response,
) -> HttpResponse {
    match response.content_length() {
        Some(length) => builder.body(SizedStream::new(length, chunks(response))),
        None => builder.body(BodyStream::new(chunks(response))),
    }
}

fn chunks(response: reqwest::Response) -> impl Stream<Item = Result<Bytes, GatewayError>> {
    futures_util::stream::unfold(Some(response), |state| async move {
        let mut response = state?;
        match response.chunk().await {
            Ok(Some(chunk)) => Some((Ok(chunk), Some(response))),
            Ok(None) => None,
            Err(error) => {
                tracing::warn!(%error, "the MCP server broke off its answer");
                Some((Err(GatewayError::Unreachable(error)), None))
            }
        }
    })
}

/// An event stream with its tool lists filtered; each event goes on once complete.
fn filtered<F>(
    response: reqwest::Response,
    filter: SseFilter<F>,
) -> impl Stream<Item = Result<Bytes, GatewayError>>
where
    F: Fn(&str) -> bool + 'static,
{
    futures_util::stream::unfold(Some((response, filter)), |state| async move {
        let (mut response, mut filter) = state?;
        loop {
            let result = match response.chunk().await {
                Ok(Some(chunk)) => filter.push(chunk),
                Ok(None) => {
                    let rest = filter.finish();
                    return (!rest.is_empty()).then(|| (Ok(rest), None));
                }
                Err(error) => Err(GatewayError::Unreachable(error)),
            };
            match result {
                Ok(out) if out.is_empty() => continue,
                Ok(out) => return Some((Ok(out), Some((response, filter)))),
                Err(error) => {
                    tracing::warn!(%error, "event stream from the MCP server ended");
                    return Some((Err(error), None));
                }
            }
        }
    })
}

/// A JSON body to filter, at most [`MAX_FILTERED_BYTES`].
async fn read_bounded(mut response: reqwest::Response) -> Result<Vec<u8>, GatewayError> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(GatewayError::Unreachable)? {
        if body.len() + chunk.len() > MAX_FILTERED_BYTES {
            return Err(GatewayError::TooLarge(MAX_FILTERED_BYTES));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
