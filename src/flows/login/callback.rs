//! The provider's answer. Takes the login session once, by its `state` and only in
//! the browser that started it; [`finish`](super::finish) completes the login; the
//! client is sent its one-time code with `state` and `iss` (RFC 9207).
//!
//! Remembered approvals are settled here, where the user is first known: one asked
//! for on the consent page is remembered for this browser and this user; a login that
//! skipped the consent page on the strength of an approval given by another user (a
//! shared browser) is not completed — the provider's answer is dropped and the
//! consent page shown, as if nothing were remembered.

use super::finish::{Finished, Refusal};
use super::{Approved, CookieChanges, Login, LoginError, Step};
use crate::actors::sessions::Remember;
use crate::telemetry::audit::AuditEvent;

/// `GET /oauth/callback`'s query (a repeated parameter counts as absent) and what
/// the browser sent.
#[derive(Debug, Default)]
pub struct CallbackRequest {
    /// The upstream `state`: the login session's id.
    pub state: String,
    pub code: Option<String>,
    pub iss: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
    /// The CSRF token this browser's binding cookie holds for the session.
    pub bound_csrf: Option<String>,
    /// This browser's id (a new one when it sent none).
    pub browser: String,
}

impl Login {
    pub async fn callback(&self, answer: CallbackRequest) -> Result<Step, LoginError> {
        let csrf = answer.bound_csrf.as_deref().unwrap_or_default();
        let (request, leg) = match self.sessions.take(&answer.state, csrf).await {
            Ok(taken) => taken,
            Err(error) => {
                self.metrics.login("failed");
                return Err(error.into());
            }
        };
        // The session is over whatever happens next: its binding cookie goes.
        let mut cookies = CookieChanges {
            unbind: Some(answer.state.clone()),
            ..CookieChanges::default()
        };
        match self.finish(&answer, &request, &leg).await {
            Ok(Finished::Code { code, subject }) => {
                self.metrics.login("completed");
                self.metrics.audit(AuditEvent::LoginCompleted {
                    client_id: &request.client_id,
                    subject: &subject,
                    resource: request.resource.as_deref().unwrap_or(""),
                });
                if leg.remember == Remember::Asked {
                    let what = Approved {
                        client_id: &request.client_id,
                        scopes: &request.scopes,
                        resource: request.resource.as_deref(),
                    };
                    let now = self.clock.unix();
                    let approval = self.approvals.sign(&answer.browser, &subject, &what, now);
                    cookies.remember = Some(approval);
                    cookies.browser = true;
                }
                let mut out = vec![("code", code.as_str())];
                if let Some(s) = request.state.as_deref() {
                    out.push(("state", s));
                }
                self.to_client(&request.redirect_uri, &out, cookies)
            }
            Ok(Finished::NotRemembered(client)) => {
                self.metrics.login("consent_remembered_other_user");
                let ticket = self.sessions.start(request.clone()).await?;
                cookies.bind = Some(ticket.clone());
                Ok(self.show_consent(&client, &request, ticket, cookies))
            }
            Err(Refusal {
                error,
                description,
                outcome,
            }) => {
                self.metrics.login(outcome);
                self.error_to_client(&request, error, &description, cookies)
            }
        }
    }
}
