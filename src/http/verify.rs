//! `GET /auth/verify`: forward-auth for nginx `auth_request`, Traefik `forwardAuth`
//! and Envoy `ext_authz` (HTTP). The proxy forwards the client's `Authorization` and
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
use crate::config::ForwardAuthConfig;
use crate::flows::access::{
    Access, Allowed, Checked, Forwarded, Header, McpCall, Method, TransportHeaders,
};
use crate::flows::limits::Budget;
use crate::tokens::{Principal, Rejection};

// Names built once, not parsed per request.
const X_AUTH_SUBJECT: HeaderName = HeaderName::from_static("x-auth-subject");
const X_AUTH_SCOPES: HeaderName = HeaderName::from_static("x-auth-scopes");
const X_AUTH_CLIENT_ID: HeaderName = HeaderName::from_static("x-auth-client-id");
const X_AUTH_ACCESS_TOKEN: HeaderName = HeaderName::from_static("x-auth-access-token");

pub async fn verify(
    access: web::Data<Access>,
    config: web::Data<ForwardAuthConfig>,
    req: HttpRequest,
) -> HttpResponse {
    let (uri, method) = match original(req.headers(), &config) {
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
    let mut response = with_budget(granted(&checked.principal), checked.budget.as_ref());
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

/// 200 naming the caller to the MCP server behind the proxy.
fn granted(principal: &Principal) -> HttpResponseBuilder {
    let mut response = HttpResponse::Ok();
    response
        .insert_header((X_AUTH_SUBJECT, principal.subject.as_str()))
        .insert_header((X_AUTH_SCOPES, principal.scopes.to_string()))
        .insert_header((
            X_AUTH_CLIENT_ID,
            principal.client_id.as_deref().unwrap_or(""),
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
fn original(
    headers: &HeaderMap,
    config: &ForwardAuthConfig,
) -> Result<(Uri, Method), (&'static str, &'static str)> {
    let mut values = headers.get_all(&config.uri_header);
    let (Some(value), None) = (values.next(), values.next()) else {
        tracing::warn!(
            header = config.uri_header.as_str(),
            "forward-auth request without exactly one original-URI header; set forward_auth.uri_header to the header your proxy sets (nginx: X-Original-URI, Traefik and Caddy: X-Forwarded-Uri)"
        );
        return Err((
            "no_original_uri",
            "the proxy must send exactly one original-URI header",
        ));
    };
    let uri = value
        .to_str()
        .ok()
        .and_then(|text| text.parse::<Uri>().ok())
        .ok_or(("ambiguous_path", "the original URI is not a request URI"))?;
    let mut methods = headers.get_all(&config.method_header);
    let method = match (methods.next(), methods.next()) {
        (Some(method), None) => match method.as_bytes() {
            b"POST" => Method::Post,
            b"GET" | b"DELETE" => Method::Stream,
            _ => Method::Other,
        },
        _ => Method::Other,
    };
    Ok((uri, method))
}

/// The call `Mcp-Method` / `Mcp-Name` describe (the first of each).
fn mcp_call<'a>(headers: &'a HeaderMap, scratch: &'a mut String) -> McpCall<'a> {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    McpCall::from_headers(get("mcp-method"), get("mcp-name"), scratch)
}

/// How often the request carried each header that says whether the MCP headers stand
/// for the body.
fn transport_headers(headers: &HeaderMap) -> TransportHeaders<'_> {
    let once = |name: &str| {
        let mut values = headers.get_all(name);
        match (values.next(), values.next()) {
            (Some(value), None) => Header::Once(value.to_str().ok()),
            (None, _) => Header::Absent,
            (Some(_), Some(_)) => Header::Repeated,
        }
    };
    TransportHeaders {
        protocol_version: once("mcp-protocol-version"),
        method: once("mcp-method"),
        name: once("mcp-name"),
    }
}
