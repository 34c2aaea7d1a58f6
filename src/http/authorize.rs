//! `GET /oauth/authorize`: checks the request (client, redirect URI, PKCE, scope,
//! resource), opens a login session and shows the consent page — or, when this
//! browser already approved this client for these scopes, goes straight to the
//! provider. Nothing reaches the provider before consent.

use actix_web::cookie::Cookie;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use super::clients::{self, KnownClient, NotFound};
use super::consent_page::{self, ConsentView};
use super::login::{self, error_page, session_error_page};
use super::login_cookies::Approved;
use super::params::Params;
use crate::actors::sessions::{
    ApproveSession, Remember, SessionError, SessionTicket, StartSession,
};
use crate::domain::authorize::{
    self, Authorization, AuthorizeError, AuthorizeParams, ClientView, ResourceView,
};
use crate::server::AppState;
use crate::store::ClientOrigin;

pub async fn authorize(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<Vec<(String, String)>>,
) -> HttpResponse {
    let params = Params::new(query.into_inner());
    // Until the client and redirect URI are known good, errors are shown, not sent.
    let (client_id, redirect_uri) = match (params.one("client_id"), params.one("redirect_uri")) {
        (Ok(c), Ok(r)) => (c, r),
        _ => {
            return error_page(
                StatusCode::BAD_REQUEST,
                "Invalid request",
                "client_id and redirect_uri must not be repeated.",
            );
        }
    };
    let Some(client_id) = client_id else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Invalid request",
            "client_id is required.",
        );
    };
    let client = match clients::lookup(&state, client_id).await {
        Ok(Ok(client)) => Some(client),
        Ok(Err(NotFound::Unregistered)) => None,
        // Never redirected: the document, and so its redirect URIs, are not trusted.
        Ok(Err(NotFound::Document(error))) => {
            state.metrics.login("refused");
            return error_page(
                StatusCode::BAD_REQUEST,
                "Client not accepted",
                &format!(
                    "This application identifies itself by a client metadata document \
                     that this server cannot accept: {error}."
                ),
            );
        }
        Err(error) => {
            tracing::warn!(%error, "client lookup failed");
            return error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Service unavailable",
                "The client registry cannot be read right now; try again shortly.",
            );
        }
    };
    let request = match check(&state, &params, client.as_ref(), redirect_uri) {
        Ok(request) => request,
        Err(AuthorizeError::Show(message)) => {
            state.metrics.login("refused");
            return error_page(StatusCode::BAD_REQUEST, "Invalid login request", &message);
        }
        Err(AuthorizeError::Redirect {
            redirect_uri,
            state: client_state,
            error,
            description,
        }) => {
            state.metrics.login("refused");
            let mut out = vec![
                ("error", error),
                ("error_description", description.as_str()),
            ];
            if let Some(s) = client_state.as_deref() {
                out.push(("state", s));
            }
            return login::to_client(&state, &redirect_uri, &out, Vec::new());
        }
    };
    let Some(client) = client else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Invalid login request",
            "unknown client_id",
        );
    };
    let now = state.clock.unix();
    let remembered = state.cookies.remembered(
        &req,
        &Approved {
            client_id: &request.client_id,
            scopes: &request.scopes,
            resource: request.resource.as_deref(),
        },
        now,
    );
    let ticket = match start_session(&state, &request).await {
        Ok(ticket) => ticket,
        Err(page) => return page,
    };
    let mut cookies = vec![state.cookies.binding(&ticket.id, &ticket.csrf)];
    if state.cookies.remembers() {
        cookies.push(state.cookies.browser(&req).cookie);
    }
    if let Some(subject) = remembered {
        state.metrics.login("consent_remembered");
        let leg = match state
            .sessions
            .send(ApproveSession {
                id: ticket.id.clone(),
                csrf: ticket.csrf.clone(),
                // Settled at the callback, once the provider says who logged in.
                remember: Remember::For(subject),
            })
            .await
            .unwrap_or(Err(SessionError::Stopped))
        {
            Ok(leg) => leg,
            Err(error) => return session_error_page(&error),
        };
        return match login::upstream_url(&state, &client, &request, &leg).await {
            Ok(url) => login::see_other(url.as_str(), cookies),
            Err(page) => page,
        };
    }
    show_consent(&state, &client, &request, &ticket, cookies)
}

/// The consent page for a started session, with `cookies` (its binding cookie).
/// A new login session for `request` (its CSRF token and id, for the consent form),
/// or the page that says why none could be started.
pub(super) async fn start_session(
    state: &AppState,
    request: &Authorization,
) -> Result<SessionTicket, HttpResponse> {
    state
        .sessions
        .send(StartSession {
            request: request.clone(),
        })
        .await
        .unwrap_or(Err(SessionError::Stopped))
        .map_err(|error| session_error_page(&error))
}

pub(super) fn show_consent(
    state: &AppState,
    client: &KnownClient,
    request: &Authorization,
    ticket: &SessionTicket,
    cookies: Vec<Cookie<'static>>,
) -> HttpResponse {
    state.metrics.login("consent_shown");
    let page = consent_page::render(&ConsentView {
        client_name: client.name.as_deref(),
        client_id: &client.client_id,
        from_document: client.origin == ClientOrigin::MetadataDocument,
        redirect_uri: &request.redirect_uri,
        registered_redirect_uris: &client.redirect_uris,
        scopes: request.scopes.iter().collect(),
        resource: request.resource.as_deref(),
        session: &ticket.id,
        csrf: &ticket.csrf,
        action: &state.config.server.public_url.endpoint("/oauth/consent"),
        offer_remember: state.cookies.remembers(),
    });
    let mut response = login::html(StatusCode::OK, page);
    for cookie in cookies {
        if let Err(error) = response.add_cookie(&cookie) {
            tracing::error!(%error, "cannot set a login cookie");
        }
    }
    response
}

/// The pure checks, then the default resource: a client that names none gets the
/// only configured one (older MCP clients do not send `resource`).
fn check(
    state: &AppState,
    params: &Params,
    client: Option<&KnownClient>,
    redirect_uri: Option<&str>,
) -> Result<Authorization, AuthorizeError> {
    let view = client.map(|c| ClientView {
        client_id: &c.client_id,
        redirect_uris: &c.redirect_uris,
    });
    // Repeated single-valued parameters are refused after the redirect URI is
    // trusted, so the refusal can be sent to it.
    let single = |name: &str| params.one(name).map_err(|e| e.to_string());
    let repeated = [
        "response_type",
        "code_challenge",
        "code_challenge_method",
        "state",
        "scope",
    ]
    .into_iter()
    .find_map(|name| single(name).err());
    let p = AuthorizeParams {
        client_id: client.map(|c| c.client_id.as_str()),
        redirect_uri,
        response_type: params.one("response_type").ok().flatten(),
        code_challenge: params.one("code_challenge").ok().flatten(),
        code_challenge_method: params.one("code_challenge_method").ok().flatten(),
        state: params.one("state").ok().flatten(),
        scope: params.one("scope").ok().flatten(),
        resources: params.all("resource"),
    };
    let resources: Vec<ResourceView<'_>> = state
        .config
        .resources
        .iter()
        .map(|r| ResourceView {
            uri: &r.uri,
            scopes_supported: &r.scopes_supported,
        })
        .collect();
    let mut request = authorize::validate(&p, view.as_ref(), &resources)?;
    if let Some(description) = repeated {
        return Err(AuthorizeError::Redirect {
            redirect_uri: request.redirect_uri,
            state: request.state,
            error: "invalid_request",
            description,
        });
    }
    if request.resource.is_none() {
        match state.config.resources.as_slice() {
            [] => {}
            [only] => request.resource = Some(only.uri.clone()),
            _ => {
                return Err(AuthorizeError::Redirect {
                    redirect_uri: request.redirect_uri,
                    state: request.state,
                    error: "invalid_target",
                    description:
                        "name the resource to access with the `resource` parameter (RFC 8707)"
                            .to_owned(),
                });
            }
        }
    }
    Ok(request)
}
