//! Who may send a request through the gateway: the access flow (`flows::access`, the
//! rules forward-auth applies to the transport's headers) over every message of the
//! JSON-RPC body, then the downstream token; and a refusal answered as forward-auth
//! answers it (401/403 with the challenge), or as a JSON-RPC error when the MCP
//! server's credentials cannot be had.

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::Value;

use super::jsonrpc::{self, Message};
use crate::config::ResourceConfig;
use crate::flows::access::{self, Access, Allowed, Denial, McpCall, Refusal, Request};
use crate::flows::addresses::AddressRefused;
use crate::flows::exchange::{Exchange, Exchanged, NoDownstream};
use crate::flows::limits::{Budget, Origin};
use crate::tokens::Principal;

/// What a request asks of the MCP server.
#[derive(Clone, Copy)]
pub enum Intent<'m> {
    /// A POSTed body: these messages.
    Messages(&'m [Message]),
    /// A GET (the server's event stream) or DELETE (the session's end): no tool call.
    Stream,
}

/// A request let through.
pub struct Authorized<'a> {
    pub resource: &'a ResourceConfig,
    /// The verified caller; `None` for a request allowed without a token.
    pub principal: Option<Arc<Principal>>,
    /// The token the MCP server gets in place of the client's (the resource's
    /// `exchange_audience`).
    pub downstream: Option<Arc<Exchanged>>,
    /// The caller's rate-limit budget after this request, reported on the answer.
    pub budget: Option<Budget>,
}

/// Why a request was not let through.
pub enum Refused {
    /// 401 or 403 with its challenge, as forward-auth answers.
    Denied(Denial),
    /// No downstream token could be had: fail closed (503).
    Unavailable,
}

impl Refused {
    pub fn response(&self, id: &Value) -> HttpResponse {
        match self {
            Self::Denied(denial) => refusal(denial, id),
            Self::Unavailable => {
                let mut response = jsonrpc::error_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    id,
                    jsonrpc::SERVER_ERROR,
                    "the MCP server's credentials are unavailable; retry later",
                );
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
                response
            }
        }
    }
}

/// A refusal as forward-auth answers it: 400 with the RFC 6749 body, else the status
/// with its `WWW-Authenticate` challenge and no body; a rate limit's 429 (or 503
/// without its counters) as a JSON-RPC error under `id`, which an MCP client can
/// parse, with `Retry-After` and the budget's `RateLimit` fields.
fn refusal(denial: &Denial, id: &Value) -> HttpResponse {
    let status = match denial.refusal {
        Refusal::Unjudgeable(description) => {
            return HttpResponse::BadRequest()
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .insert_header((header::PRAGMA, "no-cache"))
                .json(serde_json::json!({
                    "error": "invalid_request",
                    "error_description": description,
                }));
        }
        Refusal::Unauthenticated => StatusCode::UNAUTHORIZED,
        Refusal::Forbidden => StatusCode::FORBIDDEN,
        Refusal::StreamRefused => StatusCode::METHOD_NOT_ALLOWED,
        Refusal::Limited { retry_after_secs } => {
            let message = format!("rate limit exceeded: retry after {retry_after_secs} s");
            let status = StatusCode::TOO_MANY_REQUESTS;
            let response = jsonrpc::error_response(status, id, jsonrpc::RATE_LIMITED, &message);
            return limited(response, retry_after_secs, denial.budget.as_deref());
        }
        Refusal::LimitUnavailable { retry_after_secs } => {
            let message = "the rate limits cannot be checked; retry later";
            let status = StatusCode::SERVICE_UNAVAILABLE;
            let response = jsonrpc::error_response(status, id, jsonrpc::SERVER_ERROR, message);
            return limited(response, retry_after_secs, None);
        }
        Refusal::AddressRefused => {
            let message = AddressRefused.to_string();
            let code = jsonrpc::ADDRESS_REFUSED;
            return jsonrpc::error_response(StatusCode::FORBIDDEN, id, code, &message);
        }
        Refusal::Unavailable { retry_after_secs } => {
            let message = "the token cannot be verified now; retry later";
            let status = StatusCode::SERVICE_UNAVAILABLE;
            let response = jsonrpc::error_response(status, id, jsonrpc::SERVER_ERROR, message);
            return limited(response, retry_after_secs, None);
        }
    };
    let mut response = HttpResponse::build(status);
    // RFC 9110 §15.5.6: a 405 names what is allowed; only POSTs pass anonymously.
    if denial.refusal == Refusal::StreamRefused {
        response.insert_header((header::ALLOW, "POST"));
    }
    if let Some(challenge) = &denial.challenge {
        response.insert_header((header::WWW_AUTHENTICATE, challenge.to_string()));
    }
    response.finish()
}

/// `Retry-After` and the budget's fields on a rate limit's JSON-RPC answer.
fn limited(
    mut response: HttpResponse,
    retry_after_secs: u64,
    budget: Option<&Budget>,
) -> HttpResponse {
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
    budget_headers(response.headers_mut(), budget);
    response
}

/// draft-ietf-httpapi-ratelimit-headers: `RateLimit-Policy` and `RateLimit` for
/// `budget`, if any.
pub fn budget_headers(headers: &mut HeaderMap, budget: Option<&Budget>) {
    let Some(budget) = budget else { return };
    if let Ok(value) = HeaderValue::from_str(budget.policy_header()) {
        headers.insert(HeaderName::from_static("ratelimit-policy"), value);
    }
    if let Ok(value) = HeaderValue::try_from(budget.header()) {
        headers.insert(HeaderName::from_static("ratelimit"), value);
    }
}

fn call(message: &Message) -> McpCall<'_> {
    McpCall {
        method: message.method.as_deref(),
        name: message.tool.as_deref(),
    }
}

/// Without a token, on a resource with `anonymous = "public-tools"`: every message
/// public (a batch as a whole); streams (GET, DELETE) never (405). Otherwise the
/// resource check (401/403), then each `tools/call` against the tool rules, then the
/// downstream token.
pub async fn authorize<'a>(
    flow: &'a Access,
    req: &HttpRequest,
    intent: Intent<'_>,
) -> Result<Authorized<'a>, Refused> {
    let request = request(req);
    let allowed = match intent {
        Intent::Messages(messages) => flow.messages(request, messages.iter().map(call)).await,
        Intent::Stream => flow.stream(request).await.map(Allowed::Verified),
    };
    let checked = match allowed.map_err(Refused::Denied)? {
        Allowed::Anonymous(resource, budget) => {
            return Ok(Authorized {
                resource,
                principal: None,
                downstream: None,
                budget,
            });
        }
        Allowed::Verified(checked) => checked,
    };
    let mut downstream = None;
    if checked.resource.exchange_audience.is_some() {
        // Verified above, so present.
        let token = request.token.map_err(|_| Refused::Unavailable)?;
        // No exchange flow registered: fail closed as for a failed exchange.
        let flow = req.app_data::<web::Data<Exchange>>();
        let flow = flow.ok_or(Refused::Unavailable)?;
        downstream = flow
            .for_checked(&checked, token)
            .await
            .map_err(|why| match why {
                NoDownstream::Unavailable => Refused::Unavailable,
                NoDownstream::Refused(denial) => Refused::Denied(*denial),
            })?;
    }
    Ok(Authorized {
        resource: checked.resource,
        principal: Some(checked.principal),
        downstream,
        budget: checked.budget,
    })
}

/// The resource's address list alone, before the body is read (403 with a JSON-RPC
/// error under a null id: the body's ids are not known yet).
pub fn screen(flow: &Access, req: &HttpRequest) -> Result<(), Refused> {
    flow.screen(request(req)).map_err(Refused::Denied)
}

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// What the access flow judges of a gateway request.
fn request(req: &HttpRequest) -> Request<'_> {
    let authorization = req.headers().get(header::AUTHORIZATION);
    Request {
        path: req.uri().path(),
        query: req.uri().query(),
        token: access::bearer(authorization.map(HeaderValue::as_bytes)),
        origin: Origin {
            peer: req.peer_addr().map(|a| a.ip()),
            forwarded_for: req
                .headers()
                .get(X_FORWARDED_FOR)
                .and_then(|v| v.to_str().ok()),
            host: req
                .headers()
                .get(header::HOST)
                .and_then(|v| v.to_str().ok()),
            forwarded_host: req
                .headers()
                .get(X_FORWARDED_HOST)
                .and_then(|v| v.to_str().ok()),
        },
    }
}

impl Authorized<'_> {
    /// Whether `tools/list` may show a tool to this caller (anonymous: public tools
    /// only), owning what it needs so a streamed answer can ask after the handler
    /// returned.
    pub fn viewer(&self, flow: &Access) -> impl Fn(&str) -> bool + 'static {
        flow.viewer(self.resource, self.principal.clone())
    }
}
