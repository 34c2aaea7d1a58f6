//! `GET /auth/verify`: forward-auth for nginx `auth_request`, Traefik `forwardAuth`
//! and Envoy `ext_authz` (HTTP). The proxy forwards the client's `Authorization` and
//! the original URI; 200 lets the request through with `X-Auth-*` headers, 401/403
//! carry the `WWW-Authenticate` the proxy passes back to the client. For a resource
//! with an `exchange_audience`, a 200 also carries the downstream token. With tool
//! rules, the MCP transport's `Mcp-Method` / `Mcp-Name` headers (as the proxy passes
//! them on) decide per tool: public tools pass without a token where the resource
//! allows anonymous requests at all (`anonymous = "public-tools"`), others may need more
//! scopes (403 step-up) or be outside the caller's allow-list (403 `access_denied`).
//! A POST whose headers cannot stand for its body (missing, or from before 2026-07-28)
//! could be any call, so it must meet the strictest rule.

use actix_web::http::Uri;
use actix_web::http::header::{self, HeaderName};
use actix_web::{HttpRequest, HttpResponse, web};

use super::protect;
use super::protect::Denial;
use super::tool_access::{self, Forwarded, McpCall};
use crate::config::ForwardAuthConfig;
use crate::flows::exchange;
use crate::server::AppState;

// Names built once, not parsed per request.
const X_AUTH_SUBJECT: HeaderName = HeaderName::from_static("x-auth-subject");
const X_AUTH_SCOPES: HeaderName = HeaderName::from_static("x-auth-scopes");
const X_AUTH_CLIENT_ID: HeaderName = HeaderName::from_static("x-auth-client-id");
const X_AUTH_ACCESS_TOKEN: HeaderName = HeaderName::from_static("x-auth-access-token");

/// The request the proxy asks about, from the one header of each kind that
/// `[forward_auth]` names. The proxy copies every client header into its check request,
/// so reading any other (or a fallback) would let the client pick what is judged.
struct Original {
    uri: Uri,
    /// The original method. Without exactly one method header it is `Other`: then
    /// nothing passes anonymously.
    method: OriginalMethod,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum OriginalMethod {
    /// A message to the MCP server: the only kind that may pass without a token.
    Post,
    /// `GET` (the server's stream) or `DELETE` (a session's end).
    Stream,
    Other,
}

impl Original {
    fn from_request(req: &HttpRequest, config: &ForwardAuthConfig) -> Result<Self, Denial> {
        let mut values = req.headers().get_all(&config.uri_header);
        let (Some(value), None) = (values.next(), values.next()) else {
            tracing::warn!(
                header = config.uri_header.as_str(),
                "forward-auth request without exactly one original-URI header; set forward_auth.uri_header to the header your proxy sets (nginx: X-Original-URI, Traefik and Caddy: X-Forwarded-Uri)"
            );
            return Err(Denial::bad_request(
                "no_original_uri",
                "the proxy must send exactly one original-URI header",
            ));
        };
        let uri = value
            .to_str()
            .ok()
            .and_then(|text| text.parse::<Uri>().ok())
            .ok_or_else(|| {
                Denial::bad_request("ambiguous_path", "the original URI is not a request URI")
            })?;
        let mut methods = req.headers().get_all(&config.method_header);
        let method = match (methods.next(), methods.next()) {
            (Some(method), None) => match method.as_bytes() {
                b"POST" => OriginalMethod::Post,
                b"GET" | b"DELETE" => OriginalMethod::Stream,
                _ => OriginalMethod::Other,
            },
            _ => OriginalMethod::Other,
        };
        Ok(Self { uri, method })
    }
}

pub async fn verify(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let Original { uri, method } = match Original::from_request(&req, &state.config.forward_auth) {
        Ok(original) => original,
        Err(denial) => {
            state.metrics.auth_failure(denial.reason);
            return denial.response();
        }
    };
    let mut scratch = String::new();
    let call = McpCall::from_headers(req.headers(), &mut scratch);
    // Without the body, the headers stand for the call only when the client's revision
    // has the MCP server check them; otherwise the request could be any call.
    let may_carry_message = method != OriginalMethod::Stream;
    let forwarded = Forwarded::read(req.headers(), call, may_carry_message);
    // On a resource with `anonymous = "public-tools"`, public tools (and the handshake
    // around them) need no token, and only as the POSTs that carry them: a GET or
    // DELETE attaches to or ends someone's session, and is refused with 405 rather
    // than 401 so that it does not start a second login beside the one a POST starts.
    if method != OriginalMethod::Other
        && !req.headers().contains_key(header::AUTHORIZATION)
        && let Ok(path) = protect::routed_path(&uri)
        && let Some(resource) = protect::resource_for(&state.config, &path)
    {
        match method {
            // Only headers the MCP server must check against the body (2026-07-28) can
            // let a tokenless message through: older ones could name `health` over a
            // body that calls anything.
            OriginalMethod::Post
                if matches!(forwarded, Forwarded::Described(_))
                    && tool_access::anonymous_allowed(resource, call) =>
            {
                return HttpResponse::Ok().finish();
            }
            OriginalMethod::Stream if resource.tools.anonymous_open() => {
                return tool_access::anonymous_stream(&state).response();
            }
            _ => {}
        }
    }
    let protect::Checked {
        resource,
        principal,
        digest,
    } = match protect::check_operation(&state, req.headers(), &uri, |resource| {
        tool_access::needed(resource, &forwarded)
    })
    .await
    {
        Ok(checked) => checked,
        Err(denial) => return denial.response(),
    };
    if let Err(denial) = tool_access::check_forwarded(&state, resource, &principal, &forwarded) {
        return denial.response();
    }
    let mut response = HttpResponse::Ok();
    response
        .insert_header((X_AUTH_SUBJECT, principal.subject.as_str()))
        .insert_header((X_AUTH_SCOPES, principal.scopes.to_string()))
        .insert_header((
            X_AUTH_CLIENT_ID,
            principal.client_id.as_deref().unwrap_or(""),
        ));
    // A resource that names an exchange audience gets the downstream token, so the
    // MCP server behind the proxy never sees (or needs) the client's token.
    if resource.exchange_audience.is_some() {
        let Ok(token) = protect::bearer(req.headers()) else {
            return HttpResponse::Unauthorized().finish();
        };
        let subject = exchange::Presented {
            token,
            digest: &digest,
            principal: &principal,
        };
        match state.exchange.for_resource(resource, subject).await {
            Ok(Some(exchanged)) => {
                response
                    .insert_header((
                        header::AUTHORIZATION,
                        format!("Bearer {}", exchanged.access_token),
                    ))
                    .insert_header((X_AUTH_ACCESS_TOKEN, exchanged.access_token.as_str()));
            }
            Ok(None) => {}
            // Fail closed: no downstream token, no request through.
            Err(()) => return unavailable(),
        }
    }
    response.finish()
}

fn unavailable() -> HttpResponse {
    HttpResponse::ServiceUnavailable()
        .insert_header((header::RETRY_AFTER, "5"))
        .finish()
}
