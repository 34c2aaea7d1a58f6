//! Messages to the discovery actor.

use std::sync::Arc;

use actix::Message;

use super::{DiscoveryError, Snapshot};

/// Sent by verification (through the handle) when the shared snapshot is missing or
/// past its TTL: replies with a usable snapshot, refreshing first if needed, or the
/// last good one within the grace when the provider cannot be reached.
#[derive(Message)]
#[rtype(result = "Result<Arc<Snapshot>, DiscoveryError>")]
pub struct GetProvider;

/// Sent by verification when a token names a `kid` the snapshot lacks (the provider
/// rotated its keys): refetches the JWKS unless that happened less than
/// `jwks_refetch_interval` ago, and replies with the snapshot to look in.
#[derive(Message)]
#[rtype(result = "Result<Arc<Snapshot>, DiscoveryError>")]
pub struct KeyFor {
    pub kid: String,
}

/// Sent by operators' tooling and tests: refresh now, whatever the TTL says.
#[derive(Message)]
#[rtype(result = "Result<Arc<Snapshot>, DiscoveryError>")]
pub struct Refresh;
