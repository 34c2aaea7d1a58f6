//! What a registration makes: a client record with its id and (for confidential
//! clients) its secret, after an upstream client in proxy mode; for public metadata,
//! the client identical metadata got within the de-duplication window, if it still
//! exists.

use std::sync::Arc;

use rand::Rng;
use sha2::{Digest, Sha256};

use super::{Registered, RegistrationError, Reply, Upstream, upstream};
use crate::config::{RegistrationConfig, RegistrationMode};
use crate::domain::client_metadata::ClientMetadata;
use crate::store::{ClientOrigin, RecentClients, Store, StoredClient};

fn random_b64(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, buf)
}

/// Creates the client: locally, or at the provider first in proxy mode.
pub(super) async fn create(
    metadata: ClientMetadata,
    config: RegistrationConfig,
    store: Arc<dyn Store>,
    upstream: Upstream,
    now: u64,
) -> Reply {
    if store.count_clients().await? >= config.max_clients {
        return Err(RegistrationError::Full);
    }
    let method = metadata.token_endpoint_auth_method;
    let origin = match config.mode {
        RegistrationMode::Local => ClientOrigin::Local,
        RegistrationMode::Proxy => {
            upstream::register(
                &upstream,
                &config,
                metadata.client_name.as_deref(),
                metadata.scope.as_ref(),
            )
            .await?
        }
    };
    // A `private_key_jwt` client authenticates with its registered keys: no secret.
    let secret = method.uses_secret().then(|| random_b64(32));
    let client = StoredClient {
        client_id: random_b64(16),
        secret_hash: secret.as_ref().map(|s| Sha256::digest(s.as_bytes()).into()),
        metadata: serde_json::Value::Object(metadata.to_response_json()),
        fingerprint: metadata.fingerprint(),
        issued_at: now,
        last_used_at: None,
        origin,
    };
    store.put_client(client.clone()).await?;
    Ok(Registered {
        client,
        secret,
        reused: false,
    })
}

/// A public registration: the client remembered for identical metadata when it
/// still exists, else a new one, remembered for the de-duplication window.
pub(super) async fn reuse_or_create(
    metadata: ClientMetadata,
    config: RegistrationConfig,
    store: Arc<dyn Store>,
    upstream: Upstream,
    recent: Arc<dyn RecentClients>,
    now: u64,
) -> Reply {
    let fingerprint = metadata.fingerprint();
    // The client it made may have gone since (removed as stale, or a store that
    // lost its data): then this registration makes a new one.
    if let Some(client_id) = recent.recall(&fingerprint).await?
        && let Some(client) = store.get_client(&client_id).await?
    {
        return Ok(Registered {
            client,
            secret: None,
            reused: true,
        });
    }
    let window = config.dedupe_window;
    let registered = create(metadata, config, store, upstream, now).await?;
    // The client exists: a failure to remember it costs only an extra client later.
    if let Err(error) = recent
        .remember(&fingerprint, &registered.client.client_id, window)
        .await
    {
        tracing::warn!(%error, "a new public client could not be remembered for de-duplication");
    }
    Ok(registered)
}
