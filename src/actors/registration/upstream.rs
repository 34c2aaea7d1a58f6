//! Proxy mode's side of a client's life at the provider: the upstream registration
//! made for it (what the broker's leg needs, `domain::upstream_registration`), checked
//! before each login, and made afresh when the provider forgot the client (restart,
//! its own clean-up) or its secret expires — so the next login works instead of every
//! login ending at the provider's `invalid_client`.

use actix::prelude::*;
use tokio::sync::oneshot;

use super::{Registration, RegistrationError, RegistrationHandle, Renew, Upstream};
use crate::config::RegistrationConfig;
use crate::domain::scope::Scopes;
use crate::domain::upstream_registration;
use crate::store::{ClientOrigin, Store};
use crate::upstream::registration::{self, Known, ProxyError};

pub(super) type RenewReply = Result<ClientOrigin, RegistrationError>;

/// Registers an upstream client for an MCP client named `client_name` that registered
/// `scope`; the origin to store.
pub(super) async fn register(
    upstream: &Upstream,
    config: &RegistrationConfig,
    client_name: Option<&str>,
    scope: Option<&Scopes>,
) -> Result<ClientOrigin, RegistrationError> {
    let snapshot = upstream
        .discovery
        .current()
        .await
        .map_err(|e| RegistrationError::Upstream(e.to_string()))?;
    let endpoint = snapshot.info.registration_endpoint.clone().ok_or_else(|| {
        RegistrationError::Upstream("the provider offers no registration_endpoint".to_owned())
    })?;
    let scope = upstream_registration::scope(upstream.profile, scope, &upstream.audiences);
    let body = upstream_registration::body(&upstream.callback, client_name, scope.as_deref());
    let client = registration::register(&upstream.http, &endpoint, &body, &config.backoff)
        .await
        .map_err(|e| match e {
            ProxyError::Refused(description) => RegistrationError::UpstreamRefused(description),
            ProxyError::Busy { retry_after } => RegistrationError::UpstreamBusy { retry_after },
            ProxyError::Upstream(error) => RegistrationError::Upstream(error.to_string()),
        })?;
    Ok(ClientOrigin::Proxied {
        upstream_client_id: client.client_id,
        upstream_client_secret: client.client_secret,
        registration_client_uri: client.registration_client_uri,
        registration_access_token: client.registration_access_token,
        upstream_secret_expires_at: client.client_secret_expires_at.filter(|&at| at != 0),
    })
}

impl RegistrationHandle {
    /// The origin a login of `client_id` must use: `origin` while the provider still
    /// knows its upstream client (RFC 7592 read, where the provider offers it) and the
    /// secret has not expired; else a fresh upstream registration.
    pub async fn usable_origin(
        &self,
        client_id: &str,
        origin: &ClientOrigin,
    ) -> Result<ClientOrigin, RegistrationError> {
        let ClientOrigin::Proxied {
            upstream_client_id,
            registration_client_uri,
            registration_access_token,
            upstream_secret_expires_at,
            ..
        } = origin
        else {
            return Ok(origin.clone());
        };
        let expired =
            upstream_registration::secret_expired(*upstream_secret_expires_at, self.clock.unix());
        let forgotten = match (expired, registration_client_uri, registration_access_token) {
            (false, Some(uri), Some(token)) => {
                registration::known(&self.http, uri, token).await == Known::No
            }
            _ => false,
        };
        if !expired && !forgotten {
            return Ok(origin.clone());
        }
        tracing::info!(
            client_id,
            expired,
            forgotten,
            "registering the client at the provider afresh"
        );
        self.ask(Renew {
            client_id: client_id.to_owned(),
            stale_upstream_id: upstream_client_id.clone(),
        })
        .await
    }
}

/// Replaces the stored client's upstream registration, unless it moved on already.
async fn renew(
    message: Renew,
    config: RegistrationConfig,
    store: std::sync::Arc<dyn Store>,
    upstream: Upstream,
) -> RenewReply {
    let mut stored = store
        .get_client(&message.client_id)
        .await?
        .ok_or_else(|| RegistrationError::Upstream("the client was removed".to_owned()))?;
    let (old_uri, old_token) = match &stored.origin {
        ClientOrigin::Proxied {
            upstream_client_id,
            registration_client_uri,
            registration_access_token,
            ..
        } if *upstream_client_id == message.stale_upstream_id => (
            registration_client_uri.clone(),
            registration_access_token.clone(),
        ),
        // Renewed by another caller (or another replica) meanwhile.
        _ => return Ok(stored.origin),
    };
    let name = stored.metadata.get("client_name").and_then(|v| v.as_str());
    let scope = stored
        .metadata
        .get("scope")
        .and_then(|v| v.as_str())
        .and_then(|s| Scopes::parse(s).ok());
    let origin = register(&upstream, &config, name, scope.as_ref()).await?;
    stored.origin = origin.clone();
    store.put_client(stored).await?;
    // An expired secret's registration may still exist: tidy it up (best effort).
    if let (Some(uri), Some(token)) = (old_uri, old_token)
        && let Err(error) = registration::delete(&upstream.http, &uri, &token).await
    {
        tracing::debug!(%error, "the replaced upstream registration was not deleted");
    }
    Ok(origin)
}

impl Handler<Renew> for Registration {
    type Result = ResponseFuture<RenewReply>;

    fn handle(&mut self, message: Renew, ctx: &mut Self::Context) -> Self::Result {
        let (tx, rx) = oneshot::channel();
        let client_id = message.client_id.clone();
        // Concurrent logins of one client share one renewal.
        if let Some(waiters) = self.renewing.get_mut(&client_id) {
            waiters.push(tx);
        } else {
            self.renewing.insert(client_id.clone(), vec![tx]);
            let work = renew(
                message,
                self.config.clone(),
                self.store.clone(),
                self.upstream.clone(),
            );
            ctx.spawn(work.into_actor(self).map(move |result, actor, _| {
                for waiter in actor.renewing.remove(&client_id).unwrap_or_default() {
                    let _ = waiter.send(result.clone());
                }
            }));
        }
        Box::pin(async move { rx.await.unwrap_or(Err(RegistrationError::Stopped)) })
    }
}
