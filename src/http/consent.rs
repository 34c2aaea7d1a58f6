//! `POST /oauth/consent`: the consent form's answer. The form's CSRF token must equal
//! both the session's and the one in this browser's binding cookie; a forged or stale
//! post gets a 403 page and changes nothing. Approve → the provider's login (when asked
//! to remember the approval, the callback does, once it knows the user); deny →
//! `access_denied` to the client.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::clients;
use super::login::{self, error_page, session_error_page};
use super::login_cookies::same_token;
use crate::actors::sessions::{ApproveSession, DenySession, ReadSession, Remember, SessionError};
use crate::server::AppState;

#[derive(Deserialize)]
pub struct ConsentForm {
    session: String,
    #[serde(default)]
    csrf: String,
    decision: String,
    #[serde(default)]
    remember: Option<String>,
}

pub async fn consent(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<ConsentForm>,
) -> HttpResponse {
    let form = form.into_inner();
    if !same_token(
        state.cookies.bound_csrf(&req, &form.session).as_deref(),
        &form.csrf,
    ) {
        state.metrics.login("csrf_refused");
        return session_error_page(&SessionError::Csrf);
    }
    match form.decision.as_str() {
        "approve" => {
            let request = match state
                .sessions
                .send(ReadSession {
                    id: form.session.clone(),
                })
                .await
                .unwrap_or(Err(SessionError::Stopped))
            {
                Ok(request) => request,
                Err(error) => return session_error_page(&error),
            };
            let leg = match state
                .sessions
                .send(ApproveSession {
                    id: form.session.clone(),
                    csrf: form.csrf.clone(),
                    remember: if form.remember.as_deref() == Some("on") && state.cookies.remembers()
                    {
                        Remember::Asked
                    } else {
                        Remember::No
                    },
                })
                .await
                .unwrap_or(Err(SessionError::Stopped))
            {
                Ok(leg) => leg,
                Err(error) => {
                    if error == SessionError::Csrf {
                        state.metrics.login("csrf_refused");
                    }
                    return session_error_page(&error);
                }
            };
            let client = match clients::find(&state, &request.client_id).await {
                Ok(Some(client)) => client,
                Ok(None) => {
                    return error_page(
                        StatusCode::BAD_REQUEST,
                        "Unknown client",
                        "The client was removed while the login was in progress.",
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
            state.metrics.login("approved");
            match login::upstream_url(&state, &client, &request, &leg).await {
                Ok(url) => login::see_other(url.as_str(), Vec::new()),
                Err(page) => page,
            }
        }
        "deny" => {
            let request = match state
                .sessions
                .send(DenySession {
                    id: form.session.clone(),
                    csrf: form.csrf,
                })
                .await
                .unwrap_or(Err(SessionError::Stopped))
            {
                Ok(request) => request,
                Err(error) => return session_error_page(&error),
            };
            state.metrics.login("denied");
            login::error_to_client(
                &state,
                &request,
                "access_denied",
                "the user denied the request",
                vec![state.cookies.clear_binding(&form.session)],
            )
        }
        _ => error_page(
            StatusCode::BAD_REQUEST,
            "Invalid form",
            "The decision must be approve or deny.",
        ),
    }
}
