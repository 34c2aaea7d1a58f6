//! Messages to the registration actor.

use actix::Message;

use super::{Registered, RegistrationError, SweepReport};
use crate::domain::client_metadata::ClientMetadata;
use crate::store::ClientOrigin;

/// Sent by `POST /oauth/register` after the metadata passed validation: store a new
/// client (RFC 7591 §3.2.1). The reply carries the secret in the clear, once.
#[derive(Message)]
#[rtype(result = "Result<Registered, RegistrationError>")]
pub struct RegisterClient {
    pub metadata: ClientMetadata,
}

/// Sent by the actor's own timer (and tests): remove clients that never completed a
/// login within `unused_ttl` or have been idle past `idle_ttl`.
#[derive(Message)]
#[rtype(result = "Result<SweepReport, RegistrationError>")]
pub struct Sweep;

/// Sent before a login when a proxied client's upstream registration is gone or its
/// secret expired: register it afresh at the provider, unless the stored client has
/// moved on from `stale_upstream_id` already. Replies with the origin to use.
#[derive(Message)]
#[rtype(result = "Result<ClientOrigin, RegistrationError>")]
pub struct Renew {
    pub client_id: String,
    pub stale_upstream_id: String,
}
