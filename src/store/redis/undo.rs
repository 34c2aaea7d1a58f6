//! Putting back what Redis ran but never answered. When a call's answer does not come
//! (it timed out, the connection broke), the change may have run or not, and the
//! broker answers 503 either way — nothing changed, as far as the client knows — so
//! the change is undone: sent at once, behind the call on the same connection, and
//! again until Redis answers. What is undone was never handed out (a rotation's
//! successor, a redemption's tokens), so nothing else changes with it.
//!
//! Two changes are undone so: a refresh-token rotation (`rotate.rs`,
//! `lua/undo_rotation.lua`) and a code's redemption (`login_state/codes.rs`,
//! `lua/unredeem_code.lua`); each undo is counted in its own metric.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use super::Inner;
use super::login_state::codes;
use super::rotate;
use crate::store::StoreError;
use crate::store::login_state::Redeemer;

/// How long an undo is tried (Redis down that long: given up, and what was changed
/// stays changed).
const UNDO_FOR: Duration = Duration::from_secs(600);
/// Between two tries. Short: the client may present its token or code again as soon
/// as Redis is back, and the undo must come first.
const UNDO_EVERY: Duration = Duration::from_millis(200);

/// A change whose answer was lost.
pub(super) enum Undo {
    /// The rotation of the refresh token `presented` into `successor`.
    Rotation {
        presented: [u8; 32],
        successor: [u8; 32],
    },
    /// `by`'s redemption of the code stored at `key`.
    Redemption { key: String, by: Redeemer },
}

/// Sends `undo` until Redis answers it (or [`UNDO_FOR`] has passed, or the store is
/// gone), on the store's own runtime.
pub(super) fn until_answered(s: &Arc<Inner>, undo: Undo) {
    s.io.handle().spawn(run(Arc::downgrade(s), undo));
}

async fn run(store: Weak<Inner>, undo: Undo) {
    let started = Instant::now();
    loop {
        let Some(s) = store.upgrade() else { return };
        let outcome = match undo.once(&s).await {
            Ok(true) => {
                tracing::info!("{} is undone", undo.what());
                "undone"
            }
            Ok(false) => "not_needed",
            Err(error) if started.elapsed() >= UNDO_FOR => {
                tracing::warn!(%error, "gave up undoing {}: {}", undo.what(), undo.given_up());
                "given_up"
            }
            Err(_) => {
                drop(s);
                tokio::time::sleep(UNDO_EVERY).await;
                continue;
            }
        };
        if let Some(metrics) = s.metrics.get() {
            match undo {
                Undo::Rotation { .. } => metrics.refresh_undo(outcome),
                Undo::Redemption { .. } => metrics.redemption_undo(outcome),
            }
        }
        return;
    }
}

impl Undo {
    /// What was undone, for the log.
    fn what(&self) -> &'static str {
        match self {
            Self::Rotation { .. } => "a refresh-token rotation whose answer was lost",
            Self::Redemption { .. } => "a code redemption whose tokens were never handed out",
        }
    }

    /// What giving up costs the client, for the log.
    fn given_up(&self) -> &'static str {
        match self {
            Self::Rotation { .. } => "its client's token counts as spent",
            Self::Redemption { .. } => "its client must log in again",
        }
    }

    /// One try: whether the change was there to undo.
    async fn once(&self, s: &Inner) -> Result<bool, StoreError> {
        match self {
            Self::Rotation {
                presented,
                successor,
            } => rotate::undo(s, *presented, *successor).await,
            Self::Redemption { key, by } => codes::unredeem(s, key, *by).await,
        }
    }
}
