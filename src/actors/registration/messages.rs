//! Messages to the registration actor.

use actix::Message;

use super::{Registered, RegistrationError, SweepReport};
use crate::domain::client_metadata::ClientMetadata;

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
