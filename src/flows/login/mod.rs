//! The login: what the browser-facing endpoints do, without HTTP. `authorize` checks
//! an authorization request and opens a session (consent page, or straight to the
//! provider on a remembered approval); `consent` takes the user's answer; `callback`
//! takes the provider's, stores the grant and hands the client a one-time code.
//!
//! Each step takes a typed request — the query or form fields and the cookie values
//! the HTTP adapter read — and returns a [`Step`]: where the browser goes next and
//! which login cookies change, or a [`LoginError`] the adapter shows as a page (never
//! redirected: until the client and its redirect URI are known good, nothing is sent
//! to them). Rendering, cookies as headers and redirects are `http/`'s.

mod approval;
mod authorize;
mod callback;
mod consent;
mod finish;
#[cfg(test)]
mod tests;
mod upstream;

pub use approval::{Approvals, Approved, same_token};
pub use authorize::AuthorizeRequest;
pub use callback::CallbackRequest;
pub use consent::ConsentRequest;

use std::sync::Arc;
use std::time::Duration;

use url::Url;

use crate::actors::discovery::DiscoveryHandle;
use crate::actors::registration::RegistrationHandle;
use crate::actors::sessions::{SessionError, SessionTicket, SessionsHandle};
use crate::clock::Clock;
use crate::config::{Config, Issuer, ResourceConfig, Strategy};
use crate::domain::authorize::Authorization;
use crate::domain::identity::ClaimNames;
use crate::domain::upstream_request::Profile;
use crate::flows::clients::Clients;
use crate::store::Store;
use crate::telemetry::metrics::Metrics;
use crate::upstream::http::UpstreamHttp;
use crate::upstream::token::ClientCredentials;

/// The configuration the login reads.
pub struct LoginSettings {
    /// The broker's issuer: `iss` on every answer to a client (RFC 9207).
    pub issuer: String,
    /// Where the consent form posts.
    pub consent_action: String,
    /// The broker's redirect URI at the provider.
    pub callback: String,
    /// The protected resources a login may be for.
    pub resources: Vec<ResourceConfig>,
    /// The provider's names of the audiences exchanged with the refresh strategy:
    /// the provider is asked for them at login too.
    pub refresh_audiences: Vec<String>,
    /// How the provider hears which API a login is for.
    pub profile: Profile,
    /// The provider's issuer, expected in its ID tokens.
    pub upstream_issuer: Issuer,
    /// The broker's own client at the provider (clients without one of their own).
    pub credentials: ClientCredentials,
    /// Clock skew tolerated on the ID token's times.
    pub leeway: Duration,
    /// `[upstream.claims]`: the identity the ID token states.
    pub claims: ClaimNames,
}

impl LoginSettings {
    /// The login's slice of `config`.
    pub fn from_config(config: &Config) -> Self {
        Self {
            issuer: config.server.public_url.as_str().to_owned(),
            consent_action: config.server.public_url.endpoint("/oauth/consent"),
            callback: config.server.public_url.endpoint("/oauth/callback"),
            resources: config.resources.clone(),
            refresh_audiences: config
                .exchange
                .audiences
                .iter()
                .filter(|a| a.strategy == Strategy::Refresh)
                .map(|a| a.upstream_audience.clone())
                .collect(),
            profile: config.upstream.profile,
            upstream_issuer: config.upstream.issuer.clone(),
            credentials: ClientCredentials::of(&config.upstream),
            leeway: config.verify.leeway,
            claims: config.upstream.claims.clone(),
        }
    }
}

/// The login flow: the settings and the handles its steps use.
pub struct Login {
    pub settings: LoginSettings,
    pub clients: Arc<Clients>,
    pub sessions: SessionsHandle,
    pub approvals: Approvals,
    pub discovery: DiscoveryHandle,
    /// Proxy mode: a client's upstream registration renewed before the login.
    pub registration: RegistrationHandle,
    pub store: Arc<dyn Store>,
    pub upstream_http: UpstreamHttp,
    pub clock: Clock,
    pub metrics: Metrics,
}

/// What a step ends in: where the browser goes, and the login cookies that change.
#[derive(Debug)]
pub struct Step {
    pub outcome: Outcome,
    pub cookies: CookieChanges,
}

/// Where the browser goes next.
#[derive(Debug)]
pub enum Outcome {
    /// The consent page of a started session.
    Consent(Box<ConsentPage>),
    /// To the provider's authorization endpoint (the upstream leg starts).
    ToProvider(Url),
    /// Back to the client: its redirect URI with the answer and `iss`.
    ToClient(Url),
}

/// The login cookies a step changes, in the order they are set.
#[derive(Debug, Default)]
pub struct CookieChanges {
    /// The binding cookie of this session goes: the session is over.
    pub unbind: Option<String>,
    /// A new session's binding cookie (its value is the session's CSRF token).
    pub bind: Option<SessionTicket>,
    /// A remembered approval: the cookie's name and signed value.
    pub remember: Option<(String, String)>,
    /// This browser's id cookie is (re)set, for the approvals it may remember.
    pub browser: bool,
}

/// What the consent page shows and posts.
#[derive(Debug)]
pub struct ConsentPage {
    pub client_name: Option<String>,
    pub client_id: String,
    /// The client is described by a metadata document at the `client_id` URL.
    pub from_document: bool,
    pub redirect_uri: String,
    pub registered_redirect_uris: Vec<String>,
    pub scopes: Vec<String>,
    pub resource: Option<String>,
    /// The session the form continues, and its CSRF token.
    pub ticket: SessionTicket,
    /// Where the form posts.
    pub action: String,
    /// Offer to remember the decision (approvals are remembered at all).
    pub offer_remember: bool,
}

/// Why a login step is shown an error page instead of going on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoginError {
    /// `client_id` or `redirect_uri` repeated: which client is meant is unclear.
    #[error("client_id and redirect_uri must not be repeated")]
    Repeated,
    /// The authorization request names no client.
    #[error("client_id is required")]
    NoClientId,
    /// The client's metadata document was refused (its redirect URIs are not trusted).
    #[error("the client's metadata document cannot be accepted: {0}")]
    ClientNotAccepted(String),
    /// The client registry cannot be read.
    #[error("the client registry is unavailable")]
    RegistryUnavailable,
    /// The request cannot be answered at the client's redirect URI (unknown client,
    /// unregistered redirect URI).
    #[error("{0}")]
    InvalidLogin(String),
    /// The client went away while the user was at the consent page.
    #[error("the client was removed while the login was in progress")]
    ClientRemoved,
    /// The provider's authorization URL cannot be made now.
    #[error("the identity provider is unavailable")]
    ProviderUnavailable,
    /// The client's redirect URI is not a URL.
    #[error("the client's redirect URI cannot be used")]
    InvalidRedirect,
    /// The provider's answer names no session.
    #[error("the identity provider's answer carries no state")]
    NoState,
    /// The consent form's decision is neither approve nor deny.
    #[error("the decision must be approve or deny")]
    InvalidDecision,
    /// A session step failed (unknown, expired, forged, full, stopped).
    #[error(transparent)]
    Session(#[from] SessionError),
}

impl Login {
    /// A 303 to `redirect_uri` with `params` and the broker's `iss` (RFC 9207).
    fn to_client(
        &self,
        redirect_uri: &str,
        params: &[(&str, &str)],
        cookies: CookieChanges,
    ) -> Result<Step, LoginError> {
        let mut url = Url::parse(redirect_uri).map_err(|_| LoginError::InvalidRedirect)?;
        {
            let mut query = url.query_pairs_mut();
            for (name, value) in params {
                query.append_pair(name, value);
            }
            query.append_pair("iss", &self.settings.issuer);
        }
        Ok(Step {
            outcome: Outcome::ToClient(url),
            cookies,
        })
    }

    /// An OAuth error for the client (RFC 6749 §4.1.2.1), with its `state`.
    fn error_to_client(
        &self,
        request: &Authorization,
        error: &str,
        description: &str,
        cookies: CookieChanges,
    ) -> Result<Step, LoginError> {
        let mut params = vec![("error", error), ("error_description", description)];
        if let Some(s) = request.state.as_deref() {
            params.push(("state", s));
        }
        self.to_client(&request.redirect_uri, &params, cookies)
    }
}
