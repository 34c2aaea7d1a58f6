//! The provider's authorization URL for an approved session: the upstream leg's
//! start, with the broker's own `state`, nonce and PKCE, per `upstream.profile`.

use url::Url;

use super::{Login, LoginError};
use crate::actors::sessions::UpstreamLeg;
use crate::domain::authorize::Authorization;
use crate::domain::upstream_request::{self, UpstreamAuthorize};
use crate::flows::clients::KnownClient;

impl Login {
    pub(super) async fn upstream_url(
        &self,
        client: &KnownClient,
        request: &Authorization,
        leg: &UpstreamLeg,
    ) -> Result<Url, LoginError> {
        let unavailable = |message: &str| {
            tracing::warn!(reason = message, "cannot start the upstream login");
            LoginError::ProviderUnavailable
        };
        let snapshot = self
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
        let origin = self
            .registration
            .usable_origin(&client.client_id, &client.origin)
            .await
            .map_err(|e| unavailable(&e.to_string()))?;
        let credentials = KnownClient {
            origin,
            ..client.clone()
        }
        .credentials_at_provider(&self.settings.credentials);
        let settings = &self.settings;
        let audience = request.resource.as_deref().and_then(|uri| {
            settings
                .resources
                .iter()
                .find(|r| r.uri == uri)
                .and_then(|r| r.audiences.first())
                .map(String::as_str)
        });
        let scopes: Vec<String> = request.scopes.iter().map(str::to_owned).collect();
        let also: Vec<String> = settings
            .refresh_audiences
            .iter()
            .filter(|a| Some(a.as_str()) != audience)
            .cloned()
            .collect();
        upstream_request::build(&UpstreamAuthorize {
            authorization_endpoint: endpoint,
            client_id: &credentials.client_id,
            callback: &settings.callback,
            state: &leg.state,
            nonce: &leg.nonce,
            verifier: &leg.verifier,
            scopes: &scopes,
            audience,
            also: &also,
            profile: settings.profile,
        })
        .map_err(|e| unavailable(&e))
    }
}
