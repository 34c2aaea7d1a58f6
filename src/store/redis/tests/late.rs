//! A rotation that runs late — Redis paused or backed up after the broker sent it, the
//! broker long gone with a 503 — is dated, and judged, by when it ran: the client that
//! presents its token again after the outage, within the grace of that moment, gets a
//! retry and a new pair, not a replay that revokes its grant. Found by the soak
//! (benches/soak.sh): a 20 s pause cost a client its grant.

use std::time::Duration;

use super::harness::RedisServer;
use super::{prefix, store_on};
use crate::store::redis::rotate::{rotate_sent_at, wall_ms};
use crate::store::suite::{grant, record};
use crate::store::{RotateOutcome, Store};

const GRACE: Duration = Duration::from_secs(10);

#[actix_web::test]
async fn a_rotation_that_waited_in_redis_counts_its_grace_from_when_it_ran() {
    let server = RedisServer::shared();
    let store = store_on(&server, &prefix());
    store.put_grant(grant("g1")).await.unwrap();
    let now = 1_000;
    let first = record("g1", now);
    let presented = first.hash;
    store.put_refresh(first).await.unwrap();

    // Sent at `now` 30 s ago by the broker's wall clock; it runs only now.
    let sent = wall_ms() - 30_000;
    let late = rotate_sent_at(
        &store.inner,
        presented,
        &record("g1", now),
        now,
        GRACE,
        sent,
    )
    .await
    .unwrap();
    assert!(
        matches!(late, RotateOutcome::Rotated { retried: false, .. }),
        "{late:?}"
    );

    // The client never saw that answer; 15 s after the request it gave up on (past the
    // grace of the request, within the grace of the rotation), it presents the token again.
    let again = store
        .rotate_refresh(presented, record("g1", now + 15), now + 15, GRACE)
        .await
        .unwrap();
    assert!(
        matches!(again, RotateOutcome::Rotated { retried: true, .. }),
        "a retry after a late rotation was taken for a replay: {again:?}"
    );
    assert!(
        store
            .get_grant("g1")
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .is_none()
    );
}

#[actix_web::test]
async fn a_rotation_run_at_once_keeps_the_callers_time() {
    let server = RedisServer::shared();
    let store = store_on(&server, &prefix());
    store.put_grant(grant("g1")).await.unwrap();
    let now = 1_000;
    let first = record("g1", now);
    let presented = first.hash;
    store.put_refresh(first).await.unwrap();
    let rotated = store
        .rotate_refresh(presented, record("g1", now), now, GRACE)
        .await
        .unwrap();
    assert!(matches!(
        rotated,
        RotateOutcome::Rotated { retried: false, .. }
    ));
    // Past the grace by the broker's clock: a replay, and the grant is revoked.
    let replayed = store
        .rotate_refresh(presented, record("g1", now + 15), now + 15, GRACE)
        .await
        .unwrap();
    assert!(
        matches!(replayed, RotateOutcome::Replayed { .. }),
        "{replayed:?}"
    );
    assert!(
        store
            .get_grant("g1")
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .is_some()
    );
}
