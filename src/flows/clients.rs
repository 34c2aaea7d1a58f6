//! The clients the broker knows, as every flow sees them: looked up by `client_id`
//! (registered, pre-configured, or described by a Client ID Metadata Document), read
//! from their stored metadata, and authenticated on the back channel (RFC 6749 §2.3)
//! from the credentials the caller presented.

use std::sync::Arc;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::clock::UnixSeconds;
use crate::config::{Config, Secret, constant_time_eq};
use crate::domain::client_auth::Presented;
use crate::domain::scope::Scopes;
use crate::store::{ClientOrigin, Listing, Page, Store, StoredClient};
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
            origin: stored.origin,
        }
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
        self.credentials_at_provider(&ClientCredentials {
            client_id: config.upstream.client_id.clone(),
            secret: config.upstream.client_secret.clone(),
        })
    }

    /// [`KnownClient::upstream_credentials`] with the broker's own credentials given.
    pub fn credentials_at_provider(&self, own: &ClientCredentials) -> ClientCredentials {
        match &self.origin {
            ClientOrigin::Proxied {
                upstream_client_id,
                upstream_client_secret,
                ..
            } => ClientCredentials {
                client_id: upstream_client_id.clone(),
                secret: Secret::new(upstream_client_secret.clone().unwrap_or_default()),
            },
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
        };
        Self {
            kind,
            stored: true,
            created_at: Some(stored.issued_at),
            last_used_at: stored.last_used_at,
            client: KnownClient::from_stored(stored),
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
}

impl Clients {
    pub fn new(store: Arc<dyn Store>, documents: Option<CimdFetcher>) -> Self {
        Self { store, documents }
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
        Ok(Listing {
            items: listing
                .items
                .into_iter()
                .map(ClientRecord::from_stored)
                .collect(),
            next: listing.next,
        })
    }

    /// One client as [`Clients::list`] shows it; `None` when the broker stores no such
    /// client (a metadata document is not fetched for this).
    pub async fn record(&self, client_id: &str) -> Result<Option<ClientRecord>, ClientError> {
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
    /// metadata document URL, when documents are on): it cannot be deleted.
    pub fn known_elsewhere(&self, client_id: &str) -> Option<ClientKind> {
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
    /// present their secret (Basic or form, whichever they use); public clients only
    /// name themselves and must not present a secret.
    pub async fn authenticate(&self, presented: &Presented) -> Result<KnownClient, ClientError> {
        let failed = ClientError::Unauthenticated("client authentication failed");
        let Some(client) = self.find(presented.client_id()).await? else {
            return Err(failed);
        };
        match (presented, client.secret_hash) {
            (Presented::Public { .. }, None) => Ok(client),
            (Presented::Basic { secret, .. } | Presented::Post { secret, .. }, Some(hash)) => {
                let presented_hash: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
                if constant_time_eq(&presented_hash, &hash) {
                    Ok(client)
                } else {
                    Err(failed)
                }
            }
            (Presented::Public { .. }, Some(_)) => Err(ClientError::Unauthenticated(
                "this client is confidential: authenticate with its client secret",
            )),
            (_, None) => Err(ClientError::Unauthenticated(
                "this client is public: send client_id without a secret",
            )),
        }
    }
}
