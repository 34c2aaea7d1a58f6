//! The clients the broker knows, as every flow sees them: looked up by `client_id`
//! (pre-configured in `[[clients]]`, registered, or described by a Client ID Metadata
//! Document), read from their stored metadata, and authenticated on the back channel
//! (RFC 6749 §2.3) from the credentials the caller presented: a secret, or a signed
//! client assertion (`private_key_jwt`, RFC 7523 §2.2) whose `jti` is spent once.

use std::sync::Arc;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::clock::{Clock, UnixSeconds};
use crate::config::{ClientCredential, Config, ConfiguredClient, Secret, constant_time_eq};
use crate::domain::client_assertion::{self, Expected};
use crate::domain::client_auth::Presented;
use crate::domain::scope::Scopes;
use crate::store::{ClientOrigin, Listing, Page, Store, StoredClient};
use crate::tokens::client_assertion::{AssertionError, ClientAssertions, ClientKeys};
use crate::upstream::cimd::{CimdError, CimdFetcher, ClientDocument};
use crate::upstream::token::ClientCredentials;

/// A client the broker knows, with the metadata fields the login needs.
#[derive(Debug, Clone)]
pub struct KnownClient {
    pub client_id: String,
    pub name: Option<String>,
    pub redirect_uris: Vec<String>,
    /// The scopes it registered for, when it named any.
    pub scope: Option<Scopes>,
    pub grant_types: Vec<String>,
    pub secret_hash: Option<[u8; 32]>,
    /// Its public keys, for a client that authenticates with `private_key_jwt`.
    pub keys: Option<ClientKeys>,
    /// The resources it may ask for (`[[clients]]` `resources`); `None`: any of the
    /// broker's.
    pub resources: Option<Vec<String>>,
    pub origin: ClientOrigin,
}

impl KnownClient {
    pub fn from_stored(stored: StoredClient) -> Self {
        let meta = &stored.metadata;
        Self {
            client_id: stored.client_id,
            name: meta
                .get("client_name")
                .and_then(|v| v.as_str())
                .map(str::to_owned),
            redirect_uris: strings(meta, "redirect_uris"),
            scope: scope(meta),
            grant_types: grant_types(meta),
            secret_hash: stored.secret_hash,
            keys: registered_keys(meta),
            resources: None,
            origin: stored.origin,
        }
    }

    /// A `[[clients]]` entry.
    pub fn from_configured(configured: &ConfiguredClient) -> Self {
        let (secret_hash, keys) = match &configured.credential {
            ClientCredential::Secret(secret) => (
                Some(Sha256::digest(secret.expose().as_bytes()).into()),
                None,
            ),
            ClientCredential::Jwks(jwks) => (None, Some(ClientKeys::Jwks(jwks.clone()))),
            ClientCredential::JwksUri(uri) => (
                None,
                Some(ClientKeys::Uri {
                    uri: uri.to_string(),
                    configured: true,
                }),
            ),
        };
        Self {
            client_id: configured.client_id.clone(),
            name: configured.name.clone(),
            redirect_uris: configured.redirect_uris.clone(),
            scope: Some(configured.scopes.clone()),
            grant_types: configured.grant_types.clone(),
            secret_hash,
            keys,
            resources: Some(configured.resources.clone()),
            origin: ClientOrigin::Configured,
        }
    }

    /// Whether the client authenticates (a secret or keys), rather than only naming
    /// itself.
    pub fn is_confidential(&self) -> bool {
        self.secret_hash.is_some() || self.keys.is_some()
    }

    /// A public client described by its metadata document.
    pub fn from_document(document: &ClientDocument) -> Self {
        let meta = &document.document;
        Self {
            client_id: document.client_id.clone(),
            name: document.client_name.clone(),
            redirect_uris: document.redirect_uris.clone(),
            scope: scope(meta),
            grant_types: document.grant_types.clone(),
            secret_hash: None,
            keys: None,
            resources: None,
            origin: ClientOrigin::MetadataDocument,
        }
    }

    /// Whether the client may hold refresh tokens: it registered for the grant, or
    /// asked for `offline_access`.
    pub fn gets_refresh_tokens(&self, scopes: &Scopes) -> bool {
        self.grant_types.iter().any(|g| g == "refresh_token") || scopes.contains("offline_access")
    }

    /// The credentials the broker uses at the provider on this client's behalf: the
    /// upstream client registered for it in proxy mode, else the broker's own.
    pub fn upstream_credentials(&self, config: &Config) -> ClientCredentials {
        self.credentials_at_provider(&ClientCredentials::of(&config.upstream))
    }

    /// [`KnownClient::upstream_credentials`] with the broker's own credentials given.
    pub fn credentials_at_provider(&self, own: &ClientCredentials) -> ClientCredentials {
        match &self.origin {
            ClientOrigin::Proxied {
                upstream_client_id,
                upstream_client_secret,
                ..
            } => ClientCredentials::with_secret(
                upstream_client_id.clone(),
                Secret::new(upstream_client_secret.clone().unwrap_or_default()),
            ),
            _ => own.clone(),
        }
    }
}

/// A metadata member that is a list of strings (absent or malformed: empty).
fn strings(meta: &Value, key: &str) -> Vec<String> {
    meta.get(key)
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// `grant_types`, with RFC 7591 §2's default when absent.
fn grant_types(meta: &Value) -> Vec<String> {
    let mut grants = strings(meta, "grant_types");
    if grants.is_empty() {
        grants.push("authorization_code".to_owned());
    }
    grants
}

/// The keys of a client registered with `token_endpoint_auth_method=private_key_jwt`.
fn registered_keys(meta: &Value) -> Option<ClientKeys> {
    if meta.get("token_endpoint_auth_method")?.as_str()? != "private_key_jwt" {
        return None;
    }
    match (
        meta.get("jwks"),
        meta.get("jwks_uri").and_then(Value::as_str),
    ) {
        (Some(jwks), None) => Some(ClientKeys::Jwks(jwks.clone())),
        (None, Some(uri)) => Some(ClientKeys::Uri {
            uri: uri.to_owned(),
            configured: false,
        }),
        _ => None,
    }
}

fn scope(meta: &Value) -> Option<Scopes> {
    meta.get("scope")
        .and_then(Value::as_str)
        .and_then(|s| Scopes::parse(s).ok())
}

/// Where a client comes from, as the operator's listing shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientKind {
    /// Registered at the broker (RFC 7591, `registration.mode = "local"`).
    Registered,
    /// Registered at the broker, which registered a client at the provider for it.
    Proxied,
    /// Described by a Client ID Metadata Document (fetched, never stored).
    MetadataDocument,
    /// A `[[clients]]` entry of the configuration (never stored; removed by editing
    /// the configuration).
    Configured,
}

/// A client as the operator sees it: what the flows know of it, and its history.
#[derive(Debug, Clone)]
pub struct ClientRecord {
    pub client: KnownClient,
    pub kind: ClientKind,
    /// Whether the broker stores it (only a stored client can be deleted).
    pub stored: bool,
    pub created_at: Option<UnixSeconds>,
    pub last_used_at: Option<UnixSeconds>,
}

impl ClientRecord {
    fn from_stored(stored: StoredClient) -> Self {
        let kind = match stored.origin {
            ClientOrigin::Local => ClientKind::Registered,
            ClientOrigin::Proxied { .. } => ClientKind::Proxied,
            ClientOrigin::MetadataDocument => ClientKind::MetadataDocument,
            ClientOrigin::Configured => ClientKind::Configured,
        };
        Self {
            kind,
            stored: true,
            created_at: Some(stored.issued_at),
            last_used_at: stored.last_used_at,
            client: KnownClient::from_stored(stored),
        }
    }

    fn from_configured(client: &KnownClient) -> Self {
        Self {
            client: client.clone(),
            kind: ClientKind::Configured,
            stored: false,
            created_at: None,
            last_used_at: None,
        }
    }
}

/// Why no client answers to a `client_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotFound {
    /// Not registered (and not a metadata document URL, or documents are off).
    Unregistered,
    /// A metadata document URL whose document was refused: the reason is safe to show
    /// the user (it never repeats what the remote server sent).
    Document(CimdError),
}

/// Why a client lookup or authentication failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The registry could not be read: nothing is known, so nothing is allowed.
    #[error("client registry unavailable: {0}")]
    Unavailable(String),
    /// The caller is not the client it claims to be (`invalid_client`, 401).
    #[error("{0}")]
    Unauthenticated(&'static str),
}

/// The client registry as the flows read it.
pub struct Clients {
    store: Arc<dyn Store>,
    /// Client ID Metadata Documents, when `registration.metadata_documents` is on.
    documents: Option<CimdFetcher>,
    /// `[[clients]]`, looked up before the store.
    configured: Vec<KnownClient>,
    assertions: Arc<ClientAssertions>,
    /// What a client assertion's `aud` may name: the issuer, the token endpoint.
    audiences: [String; 2],
    clock: Clock,
    /// `verify.leeway`, for a client assertion's `exp`, `iat` and `nbf`.
    leeway: u64,
}

/// What the registry is built from.
pub struct ClientsParts {
    pub store: Arc<dyn Store>,
    pub documents: Option<CimdFetcher>,
    pub configured: Vec<ConfiguredClient>,
    pub assertions: Arc<ClientAssertions>,
    /// `server.public_url`.
    pub issuer: String,
    pub clock: Clock,
    pub leeway: std::time::Duration,
}

impl Clients {
    pub fn new(parts: ClientsParts) -> Self {
        let token_endpoint = format!("{}/oauth/token", parts.issuer.trim_end_matches('/'));
        Self {
            store: parts.store,
            documents: parts.documents,
            configured: parts
                .configured
                .iter()
                .map(KnownClient::from_configured)
                .collect(),
            assertions: parts.assertions,
            audiences: [parts.issuer, token_endpoint],
            clock: parts.clock,
            leeway: parts.leeway.as_secs(),
        }
    }

    /// The `[[clients]]` entries, for listings (they are not in the store).
    pub fn configured(&self) -> &[KnownClient] {
        &self.configured
    }

    /// The client named `client_id`: registered, or — for a URL, when metadata
    /// documents are on — described by the Client ID Metadata Document at that URL.
    pub async fn find(&self, client_id: &str) -> Result<Option<KnownClient>, ClientError> {
        Ok(self.lookup(client_id).await?.ok())
    }

    /// Like [`Clients::find`], saying why there is no client: the login's error page
    /// names the rule a refused document broke, so its owner (or the user) can see
    /// what to fix.
    pub async fn lookup(
        &self,
        client_id: &str,
    ) -> Result<Result<KnownClient, NotFound>, ClientError> {
        if let Some(client) = self.configured.iter().find(|c| c.client_id == client_id) {
            return Ok(Ok(client.clone()));
        }
        if let Some(fetcher) = &self.documents
            && (client_id.starts_with("https://") || client_id.starts_with("http://"))
        {
            return Ok(match fetcher.fetch(client_id).await {
                Ok(document) => Ok(KnownClient::from_document(&document)),
                Err(error) => {
                    tracing::info!(client_id, %error, "client metadata document refused");
                    Err(NotFound::Document(error))
                }
            });
        }
        let stored = self
            .store
            .get_client(client_id)
            .await
            .map_err(|e| ClientError::Unavailable(e.to_string()))?;
        Ok(stored
            .map(KnownClient::from_stored)
            .ok_or(NotFound::Unregistered))
    }

    /// Every client the operator can list, a page at a time in `client_id` order: the
    /// stored ones (metadata-document clients are fetched per login and not kept).
    pub async fn list(&self, page: &Page) -> Result<Listing<ClientRecord>, ClientError> {
        let listing = self
            .store
            .list_clients(page)
            .await
            .map_err(|e| ClientError::Unavailable(e.to_string()))?;
        // `[[clients]]` entries merged in id order: a page holds the first `size` of
        // both after the cursor, and the cursor is the last id shown, so a stored client
        // pushed off this page by a configured one comes on the next.
        let after = page.after.as_deref();
        let mut items: Vec<ClientRecord> = self
            .configured
            .iter()
            .filter(|c| after.is_none_or(|after| c.client_id.as_str() > after))
            .filter(|c| {
                let before_next = listing.next.as_deref();
                before_next.is_none_or(|last| c.client_id.as_str() <= last)
            })
            .map(ClientRecord::from_configured)
            .chain(listing.items.into_iter().map(ClientRecord::from_stored))
            .collect();
        items.sort_by(|a, b| a.client.client_id.cmp(&b.client.client_id));
        let size = page.size();
        let more = listing.next.is_some() || items.len() > size;
        items.truncate(size);
        let next = match items.last() {
            Some(last) if more => Some(last.client.client_id.clone()),
            _ => None,
        };
        Ok(Listing { items, next })
    }

    /// One client as [`Clients::list`] shows it; `None` when the broker stores no such
    /// client (a metadata document is not fetched for this).
    pub async fn record(&self, client_id: &str) -> Result<Option<ClientRecord>, ClientError> {
        if let Some(client) = self.configured.iter().find(|c| c.client_id == client_id) {
            return Ok(Some(ClientRecord::from_configured(client)));
        }
        Ok(self.stored(client_id).await?.map(ClientRecord::from_stored))
    }

    /// The stored client named `client_id`, with its upstream registration.
    pub async fn stored(&self, client_id: &str) -> Result<Option<StoredClient>, ClientError> {
        self.store
            .get_client(client_id)
            .await
            .map_err(|e| ClientError::Unavailable(e.to_string()))
    }

    /// Whether `client_id` names a client the broker knows without storing it (a
    /// `[[clients]]` entry, or a metadata document URL when documents are on): it
    /// cannot be deleted.
    pub fn known_elsewhere(&self, client_id: &str) -> Option<ClientKind> {
        if self.configured.iter().any(|c| c.client_id == client_id) {
            return Some(ClientKind::Configured);
        }
        (self.documents.is_some()
            && (client_id.starts_with("https://") || client_id.starts_with("http://")))
        .then_some(ClientKind::MetadataDocument)
    }

    /// Removes a stored client; `true` when it existed.
    pub async fn delete(&self, client_id: &str) -> Result<bool, ClientError> {
        self.store
            .delete_client(client_id)
            .await
            .map_err(|e| ClientError::Unavailable(e.to_string()))
    }

    /// Authenticates the caller of a back-channel endpoint. Confidential clients must
    /// present their secret (Basic or form, whichever they use) or, when they have
    /// keys, a client assertion signed with one; public clients only name themselves
    /// and must not present a secret.
    pub async fn authenticate(&self, presented: &Presented) -> Result<KnownClient, ClientError> {
        let failed = ClientError::Unauthenticated("client authentication failed");
        let Some(client) = self.find(presented.client_id()).await? else {
            return Err(failed);
        };
        match (presented, client.secret_hash, &client.keys) {
            (Presented::Public { .. }, None, None) => Ok(client),
            (Presented::Basic { secret, .. } | Presented::Post { secret, .. }, Some(hash), _) => {
                let presented_hash: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
                if constant_time_eq(&presented_hash, &hash) {
                    Ok(client)
                } else {
                    Err(failed)
                }
            }
            (Presented::Assertion { assertion, .. }, _, Some(keys)) => {
                self.check_assertion(&client, keys, assertion).await?;
                Ok(client)
            }
            (Presented::Assertion { .. }, _, None) => Err(ClientError::Unauthenticated(
                "this client has no keys: authenticate as it registered",
            )),
            (Presented::Public { .. }, _, _) => Err(ClientError::Unauthenticated(
                "this client is confidential: authenticate with its client secret or keys",
            )),
            (_, None, Some(_)) => Err(ClientError::Unauthenticated(
                "this client authenticates with private_key_jwt",
            )),
            (_, None, None) => Err(ClientError::Unauthenticated(
                "this client is public: send client_id without a secret",
            )),
        }
    }

    /// A client assertion (RFC 7523 §2.2, §3): the signature by one of the client's
    /// keys, the claims, and its `jti` spent once (shared by replicas on Redis, kept
    /// across a restart on sqlite) until it could no longer be accepted anyway.
    async fn check_assertion(
        &self,
        client: &KnownClient,
        keys: &ClientKeys,
        assertion: &str,
    ) -> Result<(), ClientError> {
        let claims =
            self.assertions
                .verify(keys, assertion)
                .await
                .map_err(|error| match error {
                    AssertionError::KeysUnavailable => {
                        ClientError::Unavailable(error.describe().to_owned())
                    }
                    other => ClientError::Unauthenticated(other.describe()),
                })?;
        let now = self.clock.unix();
        let audiences = [self.audiences[0].as_str(), self.audiences[1].as_str()];
        let accepted = client_assertion::judge(
            &claims,
            &Expected {
                client_id: &client.client_id,
                audiences: &audiences,
                now,
                leeway: self.leeway,
            },
        )
        .map_err(|refusal| ClientError::Unauthenticated(refusal.describe()))?;
        // Its own namespace beside the ID-JAGs' issuer+jti digests.
        let digest: [u8; 32] = Sha256::new()
            .chain_update(b"client-assertion\0")
            .chain_update(client.client_id.as_bytes())
            .chain_update([0])
            .chain_update(accepted.jti.as_bytes())
            .finalize()
            .into();
        let fresh = self
            .store
            .spend_assertion(digest, accepted.spend_until, now)
            .await
            .map_err(|e| ClientError::Unavailable(e.to_string()))?;
        if !fresh {
            tracing::warn!(client_id = %client.client_id, "client assertion presented again: refused");
            return Err(ClientError::Unauthenticated(
                "this client assertion was already used",
            ));
        }
        Ok(())
    }
}
