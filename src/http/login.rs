//! What the browser-facing login endpoints (authorize, consent, callback) share:
//! HTML responses with the page security headers, error pages for what must not be
//! redirected, redirects back to the client (always with `iss`, RFC 9207), and the
//! redirect to the provider that starts the upstream leg.

use actix_web::HttpResponse;
use actix_web::cookie::Cookie;
use actix_web::http::{StatusCode, header};
use url::Url;

use super::clients::KnownClient;
use super::consent_page;
use crate::actors::sessions::{SessionError, UpstreamLeg};
use crate::domain::authorize::Authorization;
use crate::domain::upstream_request::{self, UpstreamAuthorize};
use crate::server::AppState;

/// Pages must not be framed (clickjacking of the approve button), run no script, and
/// leak no URL (codes, states) through `Referer`.
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'";

/// An HTML page with the login's security headers.
pub fn html(status: StatusCode, body: String) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"))
        .insert_header((header::CONTENT_SECURITY_POLICY, CSP))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .body(body)
}

/// An error shown to the user, never sent to the client.
pub fn error_page(status: StatusCode, title: &str, message: &str) -> HttpResponse {
    html(status, consent_page::error_page(title, message))
}

/// The page for a failed session step.
pub fn session_error_page(error: &SessionError) -> HttpResponse {
    match error {
        SessionError::Full => error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Too many logins in progress",
            "The server is busy; try again in a minute.",
        ),
        SessionError::Csrf => error_page(
            StatusCode::FORBIDDEN,
            "Request refused",
            "This form was not sent by the browser that started the login, or it is stale.",
        ),
        SessionError::Stopped => error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Service unavailable",
            "The server is shutting down; try again shortly.",
        ),
        _ => error_page(
            StatusCode::BAD_REQUEST,
            "Login expired",
            "This login is unknown, has expired or was already completed.",
        ),
    }
}

/// A 303 to `redirect_uri` with `params` and the broker's `iss` added to its query.
pub fn to_client(
    state: &AppState,
    redirect_uri: &str,
    params: &[(&str, &str)],
    cookies: Vec<Cookie<'static>>,
) -> HttpResponse {
    let Ok(mut url) = Url::parse(redirect_uri) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Invalid redirect",
            "The client's redirect URI cannot be used.",
        );
    };
    {
        let mut query = url.query_pairs_mut();
        for (name, value) in params {
            query.append_pair(name, value);
        }
        query.append_pair("iss", state.config.server.public_url.as_str());
    }
    see_other(url.as_str(), cookies)
}

/// An OAuth error for the client (RFC 6749 §4.1.2.1), with its `state`.
pub fn error_to_client(
    state: &AppState,
    request: &Authorization,
    error: &str,
    description: &str,
    cookies: Vec<Cookie<'static>>,
) -> HttpResponse {
    let mut params = vec![("error", error), ("error_description", description)];
    if let Some(s) = request.state.as_deref() {
        params.push(("state", s));
    }
    to_client(state, &request.redirect_uri, &params, cookies)
}

pub fn see_other(location: &str, cookies: Vec<Cookie<'static>>) -> HttpResponse {
    let mut response = HttpResponse::SeeOther();
    response
        .insert_header((header::LOCATION, location))
        .insert_header((header::REFERRER_POLICY, "no-referrer"));
    for cookie in cookies {
        response.cookie(cookie);
    }
    response.finish()
}

/// The provider's authorization URL for an approved session.
pub async fn upstream_url(
    state: &AppState,
    client: &KnownClient,
    request: &Authorization,
    leg: &UpstreamLeg,
) -> Result<Url, HttpResponse> {
    let unavailable = |message: &str| {
        tracing::warn!(reason = message, "cannot start the upstream login");
        error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Identity provider unavailable",
            "The identity provider cannot be reached right now; try again shortly.",
        )
    };
    let snapshot = state
        .discovery
        .current()
        .await
        .map_err(|e| unavailable(&e.to_string()))?;
    let endpoint = snapshot
        .info
        .authorization_endpoint
        .as_deref()
        .ok_or_else(|| unavailable("the provider advertises no authorization_endpoint"))?;
    // Proxy mode: a provider that forgot the client's upstream registration gets a
    // fresh one here, not a login that dead-ends at its `invalid_client`.
    let origin = state
        .registration
        .usable_origin(&client.client_id, &client.origin)
        .await
        .map_err(|e| unavailable(&e.to_string()))?;
    let credentials = KnownClient {
        origin,
        ..client.clone()
    }
    .upstream_credentials(&state.config);
    let audience = request.resource.as_deref().and_then(|uri| {
        state
            .config
            .resources
            .iter()
            .find(|r| r.uri == uri)
            .and_then(|r| r.audiences.first())
            .map(String::as_str)
    });
    let scopes: Vec<String> = request.scopes.iter().map(str::to_owned).collect();
    let also: Vec<String> = state
        .config
        .exchange
        .audiences
        .iter()
        .filter(|a| a.strategy == crate::config::Strategy::Refresh)
        .map(|a| a.upstream_audience.clone())
        .filter(|a| Some(a.as_str()) != audience)
        .collect();
    let callback = state.config.server.public_url.endpoint("/oauth/callback");
    upstream_request::build(&UpstreamAuthorize {
        authorization_endpoint: endpoint,
        client_id: &credentials.client_id,
        callback: &callback,
        state: &leg.state,
        nonce: &leg.nonce,
        verifier: &leg.verifier,
        scopes: &scopes,
        audience,
        also: &also,
        profile: state.config.upstream.profile,
    })
    .map_err(|e| unavailable(&e))
}
