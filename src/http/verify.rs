//! `GET /auth/verify` (and `/auth/verify/{original path}`, as Envoy asks): forward-auth
//! for nginx `auth_request`, Traefik and Caddy `forwardAuth`/`forward_auth` and Envoy
//! `ext_authz` (HTTP). The proxy forwards the client's `Authorization` and
//! the original URI; 200 lets the request through with `X-Auth-*` headers, 401/403
//! carry the `WWW-Authenticate` the proxy passes back to the client. For a resource
//! with an `exchange_audience`, a 200 also carries the downstream token. With tool
//! rules, the MCP transport's `Mcp-Method` / `Mcp-Name` headers (as the proxy passes
//! them on) decide per tool (`flows::access`): public tools pass without a token where
//! the resource allows anonymous requests at all (`anonymous = "public-tools"`), others
//! may need more scopes (403 step-up) or be outside the caller's allow-list (403
//! `access_denied`). A POST whose headers cannot stand for its body (missing, or from
//! before 2026-07-28) could be any call, so it must meet the strictest rule.

use actix_web::http::Uri;
use actix_web::http::header::{self, HeaderMap, HeaderName};
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder, web};

use super::protect;
use crate::config::{ForwardAuthConfig, IdentityHeaders};
use crate::flows::access::{
    Access, Allowed, Checked, Forwarded, Header, McpCall, Method, TransportHeaders,
};
use crate::flows::limits::Budget;
use crate::tokens::{Principal, Rejection};

/// The check URL; Envoy appends the original path to it.
pub const VERIFY_PATH: &str = "/auth/verify";
const NOT_A_URI: (&str, &str) = ("ambiguous_path", "the original URI is not a request URI");

// Names built once, not parsed per request.
const X_AUTH_SUBJECT: HeaderName = HeaderName::from_static("x-auth-subject");
const X_AUTH_SCOPES: HeaderName = HeaderName::from_static("x-auth-scopes");
const X_AUTH_CLIENT_ID: HeaderName = HeaderName::from_static("x-auth-client-id");
const X_AUTH_ACCESS_TOKEN: HeaderName = HeaderName::from_static("x-auth-access-token");
const MCP_METHOD: HeaderName = HeaderName::from_static("mcp-method");
const MCP_NAME: HeaderName = HeaderName::from_static("mcp-name");
const MCP_PROTOCOL_VERSION: HeaderName = HeaderName::from_static("mcp-protocol-version");

pub async fn verify(
    access: web::Data<Access>,
    config: web::Data<ForwardAuthConfig>,
    req: HttpRequest,
) -> HttpResponse {
    let (uri, method) = match original(req.uri(), req.method(), req.headers(), &config) {
        Ok(original) => original,
        Err((reason, description)) => {
            return protect::refusal(&access.unjudgeable(reason, description));
        }
    };
    let mut scratch = String::new();
    let call = mcp_call(req.headers(), &mut scratch);
    let forwarded = Forwarded::read(call, method, || transport_headers(req.headers()));
    let peer = req.peer_addr().map(|a| a.ip());
    let request = protect::request(req.headers(), &uri, peer);
    let checked = match access.forwarded(request, method, &forwarded).await {
        Ok(Allowed::Anonymous(_, budget)) => {
            return with_budget(HttpResponse::Ok(), budget.as_ref()).finish();
        }
        Ok(Allowed::Verified(checked)) => checked,
        Err(denial) => return protect::refusal(&denial),
    };
    let mut response = with_budget(
        granted(&checked.principal, &config.identity),
        checked.budget.as_ref(),
    );
    // A resource that names an exchange audience gets the downstream token, so the
    // MCP server behind the proxy never sees (or needs) the client's token.
    if checked.resource.exchange_audience.is_some()
        && let Err(refused) = hand_on(&mut response, &req, &checked, request.token).await
    {
        return refused;
    }
    response.finish()
}

/// The downstream token into the 200 (`Authorization` and `X-Auth-Access-Token`), or
/// the answer instead of it: fail closed, no downstream token, no request through.
async fn hand_on(
    response: &mut HttpResponseBuilder,
    req: &HttpRequest,
    checked: &Checked<'_>,
    token: Result<&str, Rejection>,
) -> Result<(), HttpResponse> {
    let Ok(token) = token else {
        return Err(HttpResponse::Unauthorized().finish());
    };
    match protect::downstream(req.app_data(), checked, token).await {
        Ok(Some(exchanged)) => {
            let token = exchanged.access_token.as_str();
            response
                .insert_header((header::AUTHORIZATION, format!("Bearer {token}")))
                .insert_header((X_AUTH_ACCESS_TOKEN, token));
            Ok(())
        }
        Ok(None) => Ok(()),
        Err(why) => Err(protect::no_downstream(&why)),
    }
}

/// 200 naming the caller to the MCP server behind the proxy: who, with which scopes
/// and client, and what the provider says of them (always set, empty when unknown,
/// so a proxy that copies them overwrites whatever the client sent).
fn granted(principal: &Principal, names: &IdentityHeaders) -> HttpResponseBuilder {
    let mut response = HttpResponse::Ok();
    let identity = principal.identity.as_deref();
    response
        .insert_header((X_AUTH_SUBJECT, principal.subject.as_str()))
        .insert_header((X_AUTH_SCOPES, principal.scopes.to_string()))
        .insert_header((
            X_AUTH_CLIENT_ID,
            principal.client_id.as_deref().unwrap_or(""),
        ))
        .insert_header((
            names.email.clone(),
            identity.and_then(|i| i.email.as_deref()).unwrap_or(""),
        ))
        .insert_header((
            names.user.clone(),
            identity.and_then(|i| i.username.as_deref()).unwrap_or(""),
        ))
        .insert_header((
            names.groups.clone(),
            identity.map(|i| i.groups_header()).unwrap_or_default(),
        ));
    response
}

/// The caller's budget after this request (`RateLimit-Policy`, `RateLimit`), which
/// the proxy may copy onto the answer.
fn with_budget(mut response: HttpResponseBuilder, budget: Option<&Budget>) -> HttpResponseBuilder {
    if let Some(budget) = budget {
        response
            .insert_header((protect::RATELIMIT_POLICY, budget.policy_header()))
            .insert_header((protect::RATELIMIT, budget.header()));
    }
    response
}

/// The request the proxy asks about, from the one header of each kind that
/// `[forward_auth]` names. The proxy copies every client header into its check request,
/// so reading any other (or a fallback) would let the client pick what is judged.
/// Without exactly one method header the method is `Other`: then nothing passes
/// anonymously.
///
/// Envoy's `ext_authz` (HTTP) sends no URI header: it asks `/auth/verify` + the
/// original path and query. On such a check URL the tail is the original URI; a URI
/// header beside it (which the client may have sent and the proxy passed on) must say
/// the same, else 400: it never overrides the tail, nor the tail it. Envoy asks with
/// the original method, so on such a URL the check's own method is the original one;
/// a method header that says otherwise makes it `Other` (nothing anonymous).
fn original(
    check: &Uri,
    own_method: &actix_web::http::Method,
    headers: &HeaderMap,
    config: &ForwardAuthConfig,
) -> Result<(Uri, Method), (&'static str, &'static str)> {
    let tail = check
        .path()
        .strip_prefix(VERIFY_PATH)
        .filter(|tail| tail.starts_with('/'))
        .map(|path| match check.query() {
            Some(query) => format!("{path}?{query}"),
            None => path.to_owned(),
        });
    let mut values = headers.get_all(&config.uri_header);
    let header = match (values.next(), values.next()) {
        (Some(value), None) => Some(value),
        (None, _) => None,
        (Some(_), Some(_)) => {
            return Err((
                "no_original_uri",
                "the proxy must send exactly one original-URI header",
            ));
        }
    };
    let text = match (&tail, header) {
        (Some(tail), None) => tail.as_str(),
        (Some(tail), Some(value)) if value.as_bytes() == tail.as_bytes() => tail.as_str(),
        (Some(_), Some(_)) => {
            return Err((
                "ambiguous_original_uri",
                "the original-URI header and the path after /auth/verify disagree",
            ));
        }
        (None, Some(value)) => value.to_str().map_err(|_| NOT_A_URI)?,
        (None, None) => {
            tracing::warn!(
                header = config.uri_header.as_str(),
                "forward-auth request without exactly one original-URI header; set forward_auth.uri_header to the header your proxy sets (nginx: X-Original-URI, Traefik and Caddy: X-Forwarded-Uri), or have Envoy append the path to /auth/verify"
            );
            return Err((
                "no_original_uri",
                "the proxy must send exactly one original-URI header",
            ));
        }
    };
    let uri = text.parse::<Uri>().map_err(|_| NOT_A_URI)?;
    let mut methods = headers.get_all(&config.method_header);
    let named = match (methods.next(), methods.next()) {
        (Some(method), None) => Some(method.as_bytes()),
        _ => None,
    };
    // Envoy asks with the original method itself; a method header beside it must agree.
    let named = match (&tail, named) {
        (Some(_), None) => Some(own_method.as_str().as_bytes()),
        (Some(_), Some(named)) if named != own_method.as_str().as_bytes() => None,
        (_, named) => named,
    };
    let method = match named {
        Some(b"POST") => Method::Post,
        Some(b"GET" | b"DELETE") => Method::Stream,
        _ => Method::Other,
    };
    Ok((uri, method))
}

/// The call `Mcp-Method` / `Mcp-Name` describe (the first of each).
fn mcp_call<'a>(headers: &'a HeaderMap, scratch: &'a mut String) -> McpCall<'a> {
    let get = |name: &HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    McpCall::from_headers(get(&MCP_METHOD), get(&MCP_NAME), scratch)
}

/// How often the request carried each header that says whether the MCP headers stand
/// for the body.
fn transport_headers(headers: &HeaderMap) -> TransportHeaders<'_> {
    let once = |name: &HeaderName| {
        let mut values = headers.get_all(name);
        match (values.next(), values.next()) {
            (Some(value), None) => Header::Once(value.to_str().ok()),
            (None, _) => Header::Absent,
            (Some(_), Some(_)) => Header::Repeated,
        }
    };
    TransportHeaders {
        protocol_version: once(&MCP_PROTOCOL_VERSION),
        method: once(&MCP_METHOD),
        name: once(&MCP_NAME),
    }
}
