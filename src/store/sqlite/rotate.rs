//! Refresh-token rotation as one `BEGIN IMMEDIATE` transaction: the write lock is
//! taken before the presented token is read, so two presentations — from this
//! process or another one sharing the file — cannot both see it unspent. The decision
//! is `domain::refresh::decide`, exactly as the memory store makes it.

use std::time::Duration;

use rusqlite::{Connection, TransactionBehavior, params};

use super::codec::{db_error, secs};
use super::grants;
use crate::clock::UnixSeconds;
use crate::domain::refresh::{self, Decision, TokenState};
use crate::store::{RefreshRecord, RotateOutcome, Rotation, StoreError};

pub fn rotate(
    conn: &mut Connection,
    presented: [u8; 32],
    mut successor: RefreshRecord,
    now: UnixSeconds,
    grace: Duration,
) -> Result<RotateOutcome, StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db_error)?;
    // Unknown and revoked-grant tokens change nothing; dropping `tx` rolls back.
    let Some((record, true)) = grants::refresh_with_liveness(&tx, &presented)? else {
        return Ok(RotateOutcome::Unknown);
    };
    let successor_spent = match record.rotated {
        Some(r) => grants::refresh_with_liveness(&tx, &r.successor)?
            .is_some_and(|(s, _)| s.rotated.is_some()),
        None => false,
    };
    let state = TokenState {
        expires_at: record.expires_at,
        rotated_at: record.rotated.map(|r| r.at),
        successor_spent,
    };
    let retried = match refresh::decide(state, now, grace) {
        Decision::Expired => return Ok(RotateOutcome::Expired),
        Decision::Replay => {
            grants::revoke(&tx, &record.grant_id, now)?;
            tx.commit().map_err(db_error)?;
            return Ok(RotateOutcome::Replayed {
                grant_id: record.grant_id,
            });
        }
        Decision::Rotate => false,
        Decision::Retry => {
            // The successor the retrying client never received is superseded, so one
            // chain remains — kept as spent, so that if the retry was a thief, the
            // legitimate holder presenting it ends the grant.
            if let Some(previous) = record.rotated {
                let lost = Rotation::superseded(previous.successor, now);
                mark_rotated(&tx, &previous.successor, lost)?;
            }
            true
        }
    };
    let rotation = Rotation {
        // A retry keeps the first rotation time: the grace does not slide.
        at: record.rotated.map_or(now, |r| r.at),
        successor: successor.hash,
    };
    mark_rotated(&tx, &presented, rotation)?;
    successor.grant_id.clone_from(&record.grant_id);
    successor.rotated = None;
    grants::put_refresh(&tx, &successor)?;
    tx.commit().map_err(db_error)?;
    Ok(RotateOutcome::Rotated {
        previous: record,
        retried,
    })
}

/// Records a rotation of the token stored under `hash` (none stored: nothing).
fn mark_rotated(conn: &Connection, hash: &[u8; 32], rotation: Rotation) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE refresh_tokens SET rotated_at = ?1, successor = ?2 WHERE hash = ?3",
        params![secs(rotation.at), rotation.successor, hash],
    )
    .map_err(db_error)?;
    Ok(())
}
