//! The registration actor's handle: what the rest of the broker holds to register
//! clients, sweep them, and read them back.

use std::sync::Arc;

use actix::prelude::*;

use super::{RegisterClient, Registered, Registration, RegistrationError, Sweep, SweepReport};
use crate::clock::Clock;
use crate::domain::client_metadata::{ClientMetadata, TokenEndpointAuthMethod};
use crate::store::{RecentClients, Store, StoreError, StoredClient};
use crate::upstream::http::UpstreamHttp;

/// What callers hold: the actor's messages as typed calls, and the reads that need
/// no actor (they go to the store directly).
#[derive(Clone)]
pub struct RegistrationHandle {
    pub(super) addr: Addr<Registration>,
    pub(super) store: Arc<dyn Store>,
    pub(super) recent: Arc<dyn RecentClients>,
    pub(super) http: UpstreamHttp,
    pub(super) clock: Clock,
}

impl RegistrationHandle {
    /// Sends one message and waits for its reply; the one place a stopped actor (a
    /// `MailboxError`) becomes [`RegistrationError::Stopped`].
    pub(super) async fn ask<M, T>(&self, message: M) -> Result<T, RegistrationError>
    where
        M: Message<Result = Result<T, RegistrationError>> + Send + 'static,
        T: Send + 'static,
        Registration: Handler<M>,
    {
        self.addr
            .send(message)
            .await
            .map_err(|_| RegistrationError::Stopped)?
    }

    /// A new client for checked metadata (RFC 7591 §3.2.1).
    pub async fn register(
        &self,
        metadata: ClientMetadata,
    ) -> Result<Registered, RegistrationError> {
        self.ask(RegisterClient { metadata }).await
    }

    /// Removes unused and idle clients now (the actor also does so on its timer).
    pub async fn sweep(&self) -> Result<SweepReport, RegistrationError> {
        self.ask(Sweep).await
    }

    pub async fn client(&self, client_id: &str) -> Result<Option<StoredClient>, StoreError> {
        self.store.get_client(client_id).await
    }

    /// A client already registered with identical public metadata within the
    /// de-duplication window: hosted clients behind one egress IP registering the same
    /// app must neither multiply clients nor use up each other's rate limit.
    pub async fn existing_public(&self, metadata: &ClientMetadata) -> Option<StoredClient> {
        if metadata.token_endpoint_auth_method != TokenEndpointAuthMethod::None {
            return None;
        }
        let client_id = self
            .recent
            .recall(&metadata.fingerprint())
            .await
            .ok()
            .flatten()?;
        self.store.get_client(&client_id).await.ok().flatten()
    }
}
