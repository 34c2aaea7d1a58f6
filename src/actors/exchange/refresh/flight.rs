//! One refresh flight: the grant re-read, the replicas' lock taken (when there are
//! replicas), the provider called, the lock released — spawned by the actor and run
//! to its end.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Outcome, Provider, RefreshError, Refreshes};
use crate::store::{Grant, RefreshLock};

/// Pauses between a waiter's looks at the grant.
const POLL_FIRST: Duration = Duration::from_millis(10);
const POLL_MAX: Duration = Duration::from_millis(25);

impl Refreshes {
    /// The flight for `grant_id`: its outcome once `provider` (or another replica)
    /// made the grant's provider tokens fresh, or why not.
    pub(in crate::actors::exchange) async fn fly(
        self,
        grant_id: String,
        provider: Provider,
    ) -> Outcome {
        let Some((lock, ttl)) = self.replicas.clone() else {
            // The previous flight here may have refreshed it since the caller read it.
            let grant = self.live(&grant_id).await?;
            return if self.due(&grant) {
                provider(grant).await
            } else {
                Ok(grant)
            };
        };
        // A holder lets go within the lock's life, a dead one's lock expires after
        // it, and a waiter taking over has as long again; past that, waiting no
        // longer helps.
        let give_up = Instant::now() + 2 * ttl;
        let mut pause = POLL_FIRST;
        loop {
            let grant = self.live(&grant_id).await?;
            if !self.due(&grant) {
                return Ok(grant);
            }
            // Armed before asking: a flight stopped while the claim is on its way
            // (its runtime shutting down) may hold the lock without knowing, and
            // must release it all the same.
            let owner = uuid::Uuid::new_v4().simple().to_string();
            let held = Held::armed(lock.clone(), &grant_id, owner.clone());
            match lock.try_lock(&grant_id, &owner, ttl).await {
                Ok(true) => {
                    // The lock's previous holder may have stored fresh tokens between
                    // the read above and the claim.
                    let outcome = match self.live(&grant_id).await {
                        Ok(grant) if self.due(&grant) => provider(grant).await,
                        other => other,
                    };
                    held.release().await;
                    return outcome;
                }
                Ok(false) => held.disarm(),
                Err(e) => {
                    held.disarm();
                    return Err(e.into());
                }
            }
            if Instant::now() >= give_up {
                return Err(RefreshError::Unavailable(
                    "another replica held the grant's refresh lock too long".to_owned(),
                ));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(POLL_MAX);
        }
    }

    /// The grant as stored, if it is live.
    async fn live(&self, grant_id: &str) -> Result<Grant, RefreshError> {
        match self.store.get_grant(grant_id).await? {
            Some(grant) if grant.revoked_at.is_none() => Ok(grant),
            _ => Err(RefreshError::Revoked),
        }
    }
}

/// A replica's hold on a grant's lock. Dropped before [`release`](Self::release) —
/// its flight was stopped mid-refresh, as its runtime shut down — it releases in the
/// background if it still can, so a waiter takes over at once instead of when the
/// lock expires.
struct Held {
    lock: Arc<dyn RefreshLock>,
    grant_id: String,
    owner: Option<String>,
}

impl Held {
    fn armed(lock: Arc<dyn RefreshLock>, grant_id: &str, owner: String) -> Self {
        Self {
            lock,
            grant_id: grant_id.to_owned(),
            owner: Some(owner),
        }
    }

    /// The lock was not taken: nothing to release.
    fn disarm(mut self) {
        self.owner = None;
    }

    async fn release(mut self) {
        if let Some(owner) = self.owner.take()
            && let Err(e) = self.lock.unlock(&self.grant_id, &owner).await
        {
            tracing::warn!(error = %e, "grant refresh lock not released; it expires");
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let Some(owner) = self.owner.take() else {
            return;
        };
        let (lock, grant_id) = (self.lock.clone(), std::mem::take(&mut self.grant_id));
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    if let Err(e) = lock.unlock(&grant_id, &owner).await {
                        tracing::warn!(error = %e, "abandoned grant refresh lock not released; it expires");
                    }
                });
            }
            Err(_) => tracing::warn!("abandoned grant refresh lock not released; it expires"),
        }
    }
}
