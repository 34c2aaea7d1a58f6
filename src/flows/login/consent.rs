//! The consent form's answer. The form's CSRF token must equal both the session's
//! and the one in this browser's binding cookie; a forged or stale post is refused
//! and changes nothing. Approve → the provider's login (when asked to remember the
//! approval, the callback does, once it knows the user); deny → `access_denied` to
//! the client.

use super::{CookieChanges, Login, LoginError, Outcome, Step, same_token};
use crate::actors::sessions::{Remember, SessionError};
use crate::telemetry::audit::AuditEvent;

/// `POST /oauth/consent`'s form, and the binding cookie's value for its session.
#[derive(Debug, Default)]
pub struct ConsentRequest {
    pub session: String,
    pub csrf: String,
    /// `approve` or `deny`.
    pub decision: String,
    /// The user ticked "remember this decision".
    pub remember: bool,
    /// The CSRF token this browser's binding cookie holds for `session`.
    pub bound_csrf: Option<String>,
}

impl Login {
    pub async fn consent(&self, form: ConsentRequest) -> Result<Step, LoginError> {
        if !same_token(form.bound_csrf.as_deref(), &form.csrf) {
            self.metrics.login("csrf_refused");
            return Err(SessionError::Csrf.into());
        }
        match form.decision.as_str() {
            "approve" => self.approve(&form).await,
            "deny" => {
                let request = self.sessions.deny(&form.session, &form.csrf).await?;
                self.metrics.login("denied");
                self.metrics.audit(AuditEvent::ConsentDenied {
                    client_id: &request.client_id,
                    resource: request.resource.as_deref().unwrap_or(""),
                });
                let cookies = CookieChanges {
                    unbind: Some(form.session),
                    ..CookieChanges::default()
                };
                let description = "the user denied the request";
                self.error_to_client(&request, "access_denied", description, cookies)
            }
            _ => Err(LoginError::InvalidDecision),
        }
    }

    async fn approve(&self, form: &ConsentRequest) -> Result<Step, LoginError> {
        let request = self.sessions.read(&form.session).await?;
        let remember = if form.remember && self.approvals.remembers() {
            Remember::Asked
        } else {
            Remember::No
        };
        let leg = match self
            .sessions
            .approve(&form.session, &form.csrf, remember)
            .await
        {
            Ok(leg) => leg,
            Err(error) => {
                if error == SessionError::Csrf {
                    self.metrics.login("csrf_refused");
                }
                return Err(error.into());
            }
        };
        let client = match self.clients.find(&request.client_id).await {
            Ok(Some(client)) => client,
            Ok(None) => return Err(LoginError::ClientRemoved),
            Err(error) => {
                tracing::warn!(%error, "client lookup failed");
                return Err(LoginError::RegistryUnavailable);
            }
        };
        self.metrics.login("approved");
        self.metrics.audit(AuditEvent::ConsentGiven {
            client_id: &request.client_id,
            resource: request.resource.as_deref().unwrap_or(""),
        });
        let url = self.upstream_url(&client, &request, &leg).await?;
        Ok(Step {
            outcome: Outcome::ToProvider(url),
            cookies: CookieChanges::default(),
        })
    }
}
