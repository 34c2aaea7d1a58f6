//! The authorization request: checks it (client, redirect URI, PKCE, scope,
//! resource), opens a login session and shows the consent page — or, when this
//! browser already approved this client for these scopes, goes straight to the
//! provider. Nothing reaches the provider before consent.

use super::{Approved, ConsentPage, CookieChanges, Login, LoginError, Outcome, Step};
use crate::actors::sessions::{Remember, SessionTicket};
use crate::domain::authorize::{
    self, Authorization, AuthorizeError, AuthorizeParams, ClientView, ResourceView,
};
use crate::flows::clients::{KnownClient, NotFound};
use crate::store::ClientOrigin;

/// `GET /oauth/authorize`'s query, single values de-duplicated by the adapter, and
/// what the browser sent.
#[derive(Debug, Default)]
pub struct AuthorizeRequest {
    pub client_id: String,
    pub redirect_uri: Option<String>,
    pub response_type: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub state: Option<String>,
    pub scope: Option<String>,
    pub resources: Vec<String>,
    /// Why a single-valued parameter was refused (it was repeated): sent to the
    /// client once its redirect URI is trusted.
    pub repeated: Option<String>,
    /// This browser's id (a new one when it sent none).
    pub browser: String,
    /// The cookies the browser sent, by name: its remembered approvals among them.
    pub cookies: Vec<(String, String)>,
}

impl Login {
    pub async fn authorize(&self, request: AuthorizeRequest) -> Result<Step, LoginError> {
        let client = match self.clients.lookup(&request.client_id).await {
            Ok(Ok(client)) => Some(client),
            Ok(Err(NotFound::Unregistered)) => None,
            // Never redirected: the document, and so its redirect URIs, are not trusted.
            Ok(Err(NotFound::Document(error))) => {
                self.metrics.login("refused");
                return Err(LoginError::ClientNotAccepted(error.to_string()));
            }
            Err(error) => {
                tracing::warn!(%error, "client lookup failed");
                return Err(LoginError::RegistryUnavailable);
            }
        };
        let authorization = match self.check(&request, client.as_ref()) {
            Ok(authorization) => authorization,
            Err(AuthorizeError::Show(message)) => {
                self.metrics.login("refused");
                return Err(LoginError::InvalidLogin(message));
            }
            Err(AuthorizeError::Redirect {
                redirect_uri,
                state,
                error,
                description,
            }) => {
                self.metrics.login("refused");
                let mut out = vec![("error", error), ("error_description", &description)];
                if let Some(s) = state.as_deref() {
                    out.push(("state", s));
                }
                return self.to_client(&redirect_uri, &out, CookieChanges::default());
            }
        };
        let Some(client) = client else {
            return Err(LoginError::InvalidLogin("unknown client_id".to_owned()));
        };
        let what = Approved {
            client_id: &authorization.client_id,
            scopes: &authorization.scopes,
            resource: authorization.resource.as_deref(),
        };
        let now = self.clock.unix();
        let remembered = self
            .approvals
            .remembered(&request.browser, &request.cookies, &what, now);
        let ticket = self.sessions.start(authorization.clone()).await?;
        let cookies = CookieChanges {
            bind: Some(ticket.clone()),
            browser: self.approvals.remembers(),
            ..CookieChanges::default()
        };
        let Some(subject) = remembered else {
            return Ok(self.show_consent(&client, &authorization, ticket, cookies));
        };
        self.metrics.login("consent_remembered");
        // Settled at the callback, once the provider says who logged in.
        let remember = Remember::For(subject);
        let leg = self
            .sessions
            .approve(&ticket.id, &ticket.csrf, remember)
            .await?;
        let url = self.upstream_url(&client, &authorization, &leg).await?;
        Ok(Step {
            outcome: Outcome::ToProvider(url),
            cookies,
        })
    }

    /// The consent page for a started session, with `cookies` (its binding cookie).
    pub(super) fn show_consent(
        &self,
        client: &KnownClient,
        request: &Authorization,
        ticket: SessionTicket,
        cookies: CookieChanges,
    ) -> Step {
        self.metrics.login("consent_shown");
        let page = ConsentPage {
            client_name: client.name.clone(),
            client_id: client.client_id.clone(),
            from_document: client.origin == ClientOrigin::MetadataDocument,
            redirect_uri: request.redirect_uri.clone(),
            registered_redirect_uris: client.redirect_uris.clone(),
            scopes: request.scopes.iter().map(str::to_owned).collect(),
            resource: request.resource.clone(),
            ticket,
            action: self.settings.consent_action.clone(),
            offer_remember: self.approvals.remembers(),
        };
        Step {
            outcome: Outcome::Consent(Box::new(page)),
            cookies,
        }
    }

    /// The pure checks, then the default resource: a client that names none gets the
    /// only configured one (older MCP clients do not send `resource`).
    fn check(
        &self,
        request: &AuthorizeRequest,
        client: Option<&KnownClient>,
    ) -> Result<Authorization, AuthorizeError> {
        let view = client.map(|c| ClientView {
            client_id: &c.client_id,
            redirect_uris: &c.redirect_uris,
        });
        let p = AuthorizeParams {
            client_id: client.map(|c| c.client_id.as_str()),
            redirect_uri: request.redirect_uri.as_deref(),
            response_type: request.response_type.as_deref(),
            code_challenge: request.code_challenge.as_deref(),
            code_challenge_method: request.code_challenge_method.as_deref(),
            state: request.state.as_deref(),
            scope: request.scope.as_deref(),
            resources: request.resources.iter().map(String::as_str).collect(),
        };
        let configured = &self.settings.resources;
        let resources: Vec<ResourceView<'_>> = configured
            .iter()
            .map(|r| ResourceView {
                uri: &r.uri,
                scopes_supported: &r.scopes_supported,
            })
            .collect();
        let mut authorization = authorize::validate(&p, view.as_ref(), &resources)?;
        // Repeated single-valued parameters are refused after the redirect URI is
        // trusted, so the refusal can be sent to it.
        if let Some(description) = request.repeated.clone() {
            return Err(AuthorizeError::Redirect {
                redirect_uri: authorization.redirect_uri,
                state: authorization.state,
                error: "invalid_request",
                description,
            });
        }
        if authorization.resource.is_none() {
            match configured.as_slice() {
                [] => {}
                [only] => authorization.resource = Some(only.uri.clone()),
                _ => {
                    return Err(AuthorizeError::Redirect {
                        redirect_uri: authorization.redirect_uri,
                        state: authorization.state,
                        error: "invalid_target",
                        description:
                            "name the resource to access with the `resource` parameter (RFC 8707)"
                                .to_owned(),
                    });
                }
            }
        }
        Ok(authorization)
    }
}
