//! The rotation script transcribes `domain::refresh::decide` into Lua; this holds the
//! two together: every combination of expiry, rotation, successor use, time and
//! grace ends in the outcome `decide` names.

use std::time::Duration;

use super::harness::RedisServer;
use super::{prefix, store_on};
use crate::domain::refresh::{Decision, TokenState, decide};
use crate::store::suite::{grant, record};
use crate::store::{RefreshRecord, RotateOutcome, Rotation, Store};

const EXPIRES_AT: u64 = 100;
const ROTATED_AT: u64 = 50;

#[actix_web::test]
async fn the_rotation_script_decides_as_the_domain_rule() {
    let server = RedisServer::shared();
    let store = store_on(&server, &prefix());
    let mut case = 0;
    for rotated in [false, true] {
        for successor_spent in [false, true] {
            if successor_spent && !rotated {
                continue;
            }
            for grace in [Duration::ZERO, Duration::from_secs(10), Duration::MAX] {
                for now in [0, 49, 50, 59, 60, 99, 100, 101, 10_000] {
                    case += 1;
                    let grant_id = format!("g{case}");
                    let presented = setup(&store, &grant_id, rotated, successor_spent).await;
                    let state = TokenState {
                        expires_at: EXPIRES_AT,
                        rotated_at: rotated.then_some(ROTATED_AT),
                        successor_spent,
                    };
                    let outcome = store
                        .rotate_refresh(presented, record(&grant_id, now), now, grace)
                        .await
                        .unwrap();
                    let decided = match outcome {
                        RotateOutcome::Rotated { retried: false, .. } => Decision::Rotate,
                        RotateOutcome::Rotated { retried: true, .. } => Decision::Retry,
                        RotateOutcome::Replayed { .. } => Decision::Replay,
                        RotateOutcome::Expired => Decision::Expired,
                        RotateOutcome::Unknown => panic!("{state:?} at {now}: unknown"),
                    };
                    assert_eq!(
                        decided,
                        decide(state, now, grace),
                        "{state:?} at {now}, grace {grace:?}"
                    );
                }
            }
        }
    }
}

/// A live grant with one token in the given state; returns the token's hash.
async fn setup(
    store: &dyn Store,
    grant_id: &str,
    rotated: bool,
    successor_spent: bool,
) -> [u8; 32] {
    store.put_grant(grant(grant_id)).await.unwrap();
    let successor = RefreshRecord {
        rotated: successor_spent.then_some(Rotation {
            at: ROTATED_AT + 1,
            successor: [9; 32],
        }),
        ..record(grant_id, ROTATED_AT)
    };
    let token = RefreshRecord {
        expires_at: EXPIRES_AT,
        rotated: rotated.then_some(Rotation {
            at: ROTATED_AT,
            successor: successor.hash,
        }),
        ..record(grant_id, 0)
    };
    if rotated {
        store.put_refresh(successor).await.unwrap();
    }
    let hash = token.hash;
    store.put_refresh(token).await.unwrap();
    hash
}
