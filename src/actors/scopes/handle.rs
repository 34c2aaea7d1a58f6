//! The one way callers reach the [`Invalidator`]: a typed handle whose mailbox
//! failure (the actor gone, only while shutting down) is dealt with here, once.

use actix::Addr;

use super::{Invalidate, Invalidator, Origin};
use crate::domain::invalidation::Invalidation;

/// Sends invalidations decided on this replica. Cheap to clone.
#[derive(Clone)]
pub struct InvalidatorHandle {
    addr: Addr<Invalidator>,
}

impl InvalidatorHandle {
    pub fn new(addr: Addr<Invalidator>) -> Self {
        Self { addr }
    }

    /// Applies `what` on every cache of this replica before returning; the other
    /// replicas are told. A stopped actor is logged: nothing is left to invalidate.
    pub async fn invalidate(&self, what: Invalidation) {
        let sent = self
            .addr
            .send(Invalidate {
                what,
                origin: Origin::Local,
            })
            .await;
        if let Err(error) = sent {
            tracing::error!(%error, "the invalidation actor is gone");
        }
    }
}
