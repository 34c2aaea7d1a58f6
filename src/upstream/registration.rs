//! Dynamic client registration at the provider (`registration.mode = "proxy"`): one
//! upstream client per broker client, with the broker's callback as its redirect URI
//! (the MCP client's own redirect URIs stay with the broker), retried on 429/503 with
//! backoff, and deleted again (RFC 7592) when the broker removes the client.

use std::time::{Duration, Instant, SystemTime};

use serde::Deserialize;
use serde_json::Value;

use super::UpstreamError;
use super::http::UpstreamHttp;
use crate::domain::backoff::{self, BackoffPolicy, Decision};
use crate::redact::Redacted;
use crate::telemetry::upstream::Operation;

/// What the provider registered (RFC 7591 §3.2.1). `Debug` hides the secret and the
/// registration access token.
#[derive(Clone, Deserialize)]
pub struct UpstreamClient {
    pub client_id: String,
    pub client_secret: Option<String>,
    pub registration_access_token: Option<String>,
    pub registration_client_uri: Option<String>,
    /// When the secret expires, unix seconds; 0 or absent: never (RFC 7591 §3.2.1).
    pub client_secret_expires_at: Option<u64>,
}

impl std::fmt::Debug for UpstreamClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamClient")
            .field("client_id", &self.client_id)
            .field("client_secret", &Redacted::option(&self.client_secret))
            .field(
                "registration_access_token",
                &Redacted::option(&self.registration_access_token),
            )
            .field("registration_client_uri", &self.registration_client_uri)
            .field("client_secret_expires_at", &self.client_secret_expires_at)
            .finish()
    }
}

/// Why a proxied registration did not succeed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProxyError {
    /// The provider refused the metadata (not retried); its description is passed on.
    #[error("the provider refused the registration: {0}")]
    Refused(String),
    /// 429/503 beyond the retry budget: our client should retry after this long.
    #[error("the provider is rate limiting registrations")]
    Busy { retry_after: Duration },
    /// Anything else (unreachable, invalid answer).
    #[error(transparent)]
    Upstream(UpstreamError),
}

/// Registers `body` at `endpoint`, retrying 429/503 by `policy`.
pub async fn register(
    http: &UpstreamHttp,
    endpoint: &str,
    body: &Value,
    policy: &BackoffPolicy,
) -> Result<UpstreamClient, ProxyError> {
    let started = Instant::now();
    let mut attempt = 0;
    loop {
        attempt += 1;
        let error = match http
            .post_json::<UpstreamClient>(Operation::Registration, endpoint, body)
            .await
        {
            Ok(client) => return Ok(client),
            Err(error) => error,
        };
        let server_retry_after = match &error {
            UpstreamError::Status {
                status: 429 | 503,
                retry_after,
                ..
            } => retry_after
                .as_deref()
                .and_then(|v| backoff::parse_retry_after(v, SystemTime::now())),
            UpstreamError::OAuth {
                error, description, ..
            } => {
                return Err(ProxyError::Refused(
                    description.clone().unwrap_or_else(|| error.clone()),
                ));
            }
            _ => return Err(ProxyError::Upstream(error)),
        };
        match backoff::next(
            policy,
            attempt,
            started.elapsed(),
            server_retry_after,
            rand::random::<f64>(),
        ) {
            Decision::RetryAfter(wait) => {
                tracing::info!(
                    attempt,
                    wait_ms = wait.as_millis() as u64,
                    "provider busy: retrying registration"
                );
                actix_web::rt::time::sleep(wait).await;
            }
            Decision::GiveUp { retry_after } => {
                tracing::warn!(
                    attempt,
                    "provider still busy: giving up on the registration"
                );
                return Err(ProxyError::Busy { retry_after });
            }
        }
    }
}

/// Whether the provider still knows a client, by its RFC 7592 management endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Known {
    Yes,
    /// 401, 403 or 404: the client, and with it its registration access token, is gone
    /// (the provider restarted without it, or cleaned it up).
    No,
    /// The provider could not say (unreachable, 5xx): the login goes ahead and its
    /// own answer decides.
    Unsure,
}

/// Reads the registration at `uri` (RFC 7592 §2.1).
pub async fn known(http: &UpstreamHttp, uri: &str, token: &str) -> Known {
    match http.status_of(Operation::Registration, uri, token).await {
        Ok(200..=299) => Known::Yes,
        Ok(401 | 403 | 404) => Known::No,
        Ok(status) => {
            tracing::info!(
                status,
                "the provider did not say whether it knows the client"
            );
            Known::Unsure
        }
        Err(error) => {
            tracing::info!(%error, "the provider did not say whether it knows the client");
            Known::Unsure
        }
    }
}

/// Deletes an upstream registration (RFC 7592 §2.3).
pub async fn delete(http: &UpstreamHttp, uri: &str, token: &str) -> Result<(), UpstreamError> {
    http.delete(Operation::Registration, uri, token).await
}
