//! Refresh-token rotation as one script (`lua/rotate_refresh.lua`): Redis runs
//! scripts one at a time, so two replicas presenting the same token cannot both see
//! it unspent. The script transcribes `domain::refresh::decide`; `tests/decide.rs`
//! checks the two agree on every case. A rotation whose answer is lost is undone
//! (`lua/undo_rotation.lua`, through `undo.rs`) as soon as Redis answers again.

use std::sync::Arc;
use std::time::Duration;

use ::redis::Value;

use super::Inner;
use super::codec::{Fields, corrupt, redis_error, ttl, word};
use super::grants::decode_refresh;
use super::keys::hex;
use super::undo::{self as undoing, Undo};
use crate::clock::UnixSeconds;
use crate::store::{RefreshRecord, RotateOutcome, StoreError};

pub async fn rotate(
    s: &Arc<Inner>,
    presented: [u8; 32],
    successor: &RefreshRecord,
    now: UnixSeconds,
    grace: Duration,
) -> Result<RotateOutcome, StoreError> {
    rotate_sent_at(s, presented, successor, now, grace, wall_ms()).await
}

/// [`rotate`], sent at `sent_ms` (the wall clock, Unix milliseconds). A call that waits
/// in Redis — paused, or behind a backlog — after its caller gave up (503: nothing
/// changed, as far as the client knows) runs that much later, and the script dates the
/// rotation, and judges the presentation, by when it runs. Otherwise the client that
/// presents its token again after the outage would be past the grace of a rotation it
/// never saw, and lose its grant as a replay.
///
/// When the answer does not come (the call timed out, the connection broke), the
/// rotation may have run or not, and the broker answers 503 either way: the undo is
/// sent at once, behind the rotation on the same connection, and again until Redis
/// answers it. The successor's text was never handed out, so nothing else changes.
pub(super) async fn rotate_sent_at(
    s: &Arc<Inner>,
    presented: [u8; 32],
    successor: &RefreshRecord,
    now: UnixSeconds,
    grace: Duration,
    sent_ms: u64,
) -> Result<RotateOutcome, StoreError> {
    let reply = s
        .scripts
        .rotate_refresh
        .key(s.keys.refresh(&presented))
        .key(s.keys.refresh(&successor.hash))
        .arg(s.keys.prefix())
        .arg(now)
        .arg(grace.as_secs())
        .arg(hex(&successor.hash))
        .arg(ttl(now, successor.expires_at))
        .arg(successor.scopes.to_string())
        .arg(successor.issued_at)
        .arg(successor.expires_at)
        .arg(sent_ms)
        .invoke_async::<Value>(&mut s.conn())
        .await
        .map_err(redis_error);
    match reply {
        Ok(reply) => outcome(presented, reply),
        Err(error) => {
            if matches!(error, StoreError::Unavailable(_)) {
                let undo = Undo::Rotation {
                    presented,
                    successor: successor.hash,
                };
                undoing::until_answered(s, undo);
            }
            Err(error)
        }
    }
}

/// One try: whether the rotation was there to undo.
pub(super) async fn undo(
    s: &Inner,
    presented: [u8; 32],
    successor: [u8; 32],
) -> Result<bool, StoreError> {
    let undone: i64 = s
        .scripts
        .undo_rotation
        .key(s.keys.refresh(&presented))
        .key(s.keys.refresh(&successor))
        .arg(s.keys.prefix())
        .arg(hex(&successor))
        .invoke_async(&mut s.conn())
        .await
        .map_err(redis_error)?;
    Ok(undone == 1)
}

/// The wall clock in Unix milliseconds: only for measuring how long a call waited in
/// Redis (the broker's `Clock`, which tests move, decides everything else).
pub(super) fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The script's reply as an outcome.
fn outcome(presented: [u8; 32], reply: Value) -> Result<RotateOutcome, StoreError> {
    let Value::Array(items) = reply else {
        return Err(corrupt(format!("rotation replied {reply:?}")));
    };
    let mut items = items.into_iter();
    let decision = items
        .next()
        .ok_or_else(|| corrupt("rotation replied nothing"))?;
    match word(&decision)? {
        "unknown" => Ok(RotateOutcome::Unknown),
        "expired" => Ok(RotateOutcome::Expired),
        "replayed" => {
            let grant = items
                .next()
                .ok_or_else(|| corrupt("replay without grant"))?;
            Ok(RotateOutcome::Replayed {
                grant_id: word(&grant)?.to_owned(),
            })
        }
        "rotated" => {
            let retried = items
                .next()
                .ok_or_else(|| corrupt("rotation without retry flag"))?;
            let previous = items
                .next()
                .ok_or_else(|| corrupt("rotation without record"))?;
            Ok(RotateOutcome::Rotated {
                previous: decode_refresh(presented, &Fields::from_value(previous)?)?,
                retried: word(&retried)? == "1",
            })
        }
        other => Err(corrupt(format!("rotation replied `{other}`"))),
    }
}
