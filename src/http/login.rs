//! What the browser-facing login endpoints (authorize, consent, callback) share: a
//! login step (`flows::login`) as a response — HTML with the page security headers,
//! error pages for what must not be redirected, 303s to the client or the provider —
//! with the login cookies the step changed.

use actix_web::HttpResponse;
use actix_web::cookie::Cookie;
use actix_web::http::{StatusCode, header};

use super::consent_page::{self, ConsentView};
use super::login_cookies::{Browser, LoginCookies};
use crate::actors::sessions::SessionError;
use crate::flows::login::{ConsentPage, CookieChanges, LoginError, Outcome, Step};

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

/// A login step as the browser's response: `browser` (this browser's id cookie) is
/// set when the step asks for it.
pub fn respond(
    step: Result<Step, LoginError>,
    cookies: &LoginCookies,
    browser: Option<Browser>,
) -> HttpResponse {
    let step = match step {
        Ok(step) => step,
        Err(error) => return refused(&error),
    };
    let set = changed(&step.cookies, cookies, browser);
    match step.outcome {
        Outcome::Consent(page) => {
            let mut response = html(StatusCode::OK, consent_page::render(&view(&page)));
            for cookie in set {
                if let Err(error) = response.add_cookie(&cookie) {
                    tracing::error!(%error, "cannot set a login cookie");
                }
            }
            response
        }
        Outcome::ToProvider(url) | Outcome::ToClient(url) => see_other(url.as_str(), set),
    }
}

/// The cookies `changes` asks for, in its order.
fn changed(
    changes: &CookieChanges,
    cookies: &LoginCookies,
    browser: Option<Browser>,
) -> Vec<Cookie<'static>> {
    let mut set = Vec::new();
    if let Some(session) = &changes.unbind {
        set.push(cookies.clear_binding(session));
    }
    if let Some(ticket) = &changes.bind {
        set.push(cookies.binding(&ticket.id, &ticket.csrf));
    }
    if let Some((name, value)) = &changes.remember {
        set.push(cookies.approval(name.clone(), value.clone()));
    }
    if let Some(browser) = browser.filter(|_| changes.browser) {
        set.push(browser.cookie);
    }
    set
}

fn view(page: &ConsentPage) -> ConsentView<'_> {
    ConsentView {
        client_name: page.client_name.as_deref(),
        client_id: &page.client_id,
        from_document: page.from_document,
        redirect_uri: &page.redirect_uri,
        registered_redirect_uris: &page.registered_redirect_uris,
        scopes: page.scopes.iter().map(String::as_str).collect(),
        resource: page.resource.as_deref(),
        session: &page.ticket.id,
        csrf: &page.ticket.csrf,
        action: &page.action,
        offer_remember: page.offer_remember,
    }
}

/// The page for a refused login step.
pub fn refused(error: &LoginError) -> HttpResponse {
    let (status, title, message) = match error {
        LoginError::Repeated => (
            StatusCode::BAD_REQUEST,
            "Invalid request",
            "client_id and redirect_uri must not be repeated.",
        ),
        LoginError::NoClientId => (
            StatusCode::BAD_REQUEST,
            "Invalid request",
            "client_id is required.",
        ),
        LoginError::ClientNotAccepted(why) => {
            return error_page(
                StatusCode::BAD_REQUEST,
                "Client not accepted",
                &format!(
                    "This application identifies itself by a client metadata document \
                     that this server cannot accept: {why}."
                ),
            );
        }
        LoginError::RegistryUnavailable => (
            StatusCode::SERVICE_UNAVAILABLE,
            "Service unavailable",
            "The client registry cannot be read right now; try again shortly.",
        ),
        LoginError::InvalidLogin(message) => (
            StatusCode::BAD_REQUEST,
            "Invalid login request",
            message.as_str(),
        ),
        LoginError::ClientRemoved => (
            StatusCode::BAD_REQUEST,
            "Unknown client",
            "The client was removed while the login was in progress.",
        ),
        LoginError::ProviderUnavailable => (
            StatusCode::SERVICE_UNAVAILABLE,
            "Identity provider unavailable",
            "The identity provider cannot be reached right now; try again shortly.",
        ),
        LoginError::InvalidRedirect => (
            StatusCode::BAD_REQUEST,
            "Invalid redirect",
            "The client's redirect URI cannot be used.",
        ),
        LoginError::NoState => (
            StatusCode::BAD_REQUEST,
            "Invalid response",
            "The identity provider's answer carries no state.",
        ),
        LoginError::InvalidDecision => (
            StatusCode::BAD_REQUEST,
            "Invalid form",
            "The decision must be approve or deny.",
        ),
        LoginError::Session(error) => session_refused(error),
    };
    error_page(status, title, message)
}

/// The page for a failed session step.
fn session_refused(error: &SessionError) -> (StatusCode, &'static str, &'static str) {
    match error {
        SessionError::Full => (
            StatusCode::SERVICE_UNAVAILABLE,
            "Too many logins in progress",
            "The server is busy; try again in a minute.",
        ),
        SessionError::Csrf => (
            StatusCode::FORBIDDEN,
            "Request refused",
            "This form was not sent by the browser that started the login, or it is stale.",
        ),
        SessionError::Stopped => (
            StatusCode::SERVICE_UNAVAILABLE,
            "Service unavailable",
            "The server is shutting down; try again shortly.",
        ),
        _ => (
            StatusCode::BAD_REQUEST,
            "Login expired",
            "This login is unknown, has expired or was already completed.",
        ),
    }
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
