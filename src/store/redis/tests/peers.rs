//! Invalidations between replicas: what one publishes the others receive, never
//! itself; a subscriber survives a Redis restart and starts over after the gap.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::stream::BoxStream;

use super::harness::RedisServer;
use super::{prefix, store_on};
use crate::domain::invalidation::Invalidation;
use crate::store::Peers;

const WITHIN: Duration = Duration::from_secs(10);

/// The next invalidation, or a failure after `WITHIN`.
pub(super) async fn next(stream: &mut BoxStream<'static, Invalidation>) -> Invalidation {
    tokio::time::timeout(WITHIN, stream.next())
        .await
        .expect("no invalidation arrived")
        .expect("the stream ended")
}

/// Waits until `n` connections subscribe to `channel` (subscribing is asynchronous,
/// and a message published before it would be lost).
pub(super) async fn subscribers(server: &RedisServer, channel: &str, n: u64) {
    let deadline = Instant::now() + WITHIN;
    loop {
        let counted = ::redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(channel)
            .query::<(String, u64)>(&mut server.connection());
        if matches!(counted, Ok((_, found)) if found == n) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{n} subscribers never came: {counted:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[actix_web::test]
async fn an_invalidation_reaches_the_other_replica_and_not_itself() {
    let server = RedisServer::shared();
    let prefix = prefix();
    let (a, b) = (
        store_on(&server, &prefix).peers(),
        store_on(&server, &prefix).peers(),
    );
    assert_ne!(a.replica_id(), b.replica_id());
    let other = super::prefix();
    let (elsewhere, listener) = (
        store_on(&server, &other).peers(),
        store_on(&server, &other).peers(),
    );
    let (mut from_a, mut from_b, mut from_elsewhere) =
        (a.subscribe(), b.subscribe(), listener.subscribe());
    let channel = format!("{prefix}invalidations");
    subscribers(&server, &channel, 2).await;
    subscribers(&server, &format!("{other}invalidations"), 1).await;

    // As the Invalidator holds it.
    let a: std::sync::Arc<dyn Peers> = std::sync::Arc::new(a);
    a.publish(&Invalidation::GrantId("g1".into()));
    assert_eq!(next(&mut from_b).await, Invalidation::GrantId("g1".into()));
    // B's message was published after A's reached Redis, so A's own would come
    // first on A's subscription: receiving B's first shows A skipped its own.
    b.publish(&Invalidation::Subject("bob".into()));
    assert_eq!(next(&mut from_a).await, Invalidation::Subject("bob".into()));
    // Another prefix is another deployment: its replicas heard nothing of these
    // (what they hear first is their own deployment's).
    elsewhere.publish(&Invalidation::ClientId("c9".into()));
    assert_eq!(
        next(&mut from_elsewhere).await,
        Invalidation::ClientId("c9".into())
    );
    a.publish(&Invalidation::All(true));
    assert_eq!(next(&mut from_b).await, Invalidation::All(true));
}

#[actix_web::test]
async fn messages_travel_as_json_with_the_senders_id_and_bad_ones_are_skipped() {
    let server = RedisServer::shared();
    let prefix = prefix();
    let peers = store_on(&server, &prefix).peers();
    let mut received = peers.subscribe();
    let channel = format!("{prefix}invalidations");
    subscribers(&server, &channel, 1).await;
    let mut conn = server.connection();
    for text in [
        "not json".to_owned(),
        r#"{"from":"x","invalidation":{"nonsense":1}}"#.to_owned(),
        format!(
            r#"{{"from":"{}","invalidation":{{"grant_id":"mine"}}}}"#,
            peers.replica_id()
        ),
        r#"{"from":"another-replica","invalidation":{"client_id":"c7"}}"#.to_owned(),
    ] {
        let _: u64 = ::redis::cmd("PUBLISH")
            .arg(&channel)
            .arg(text)
            .query(&mut conn)
            .unwrap();
    }
    assert_eq!(
        next(&mut received).await,
        Invalidation::ClientId("c7".into())
    );
}

#[actix_web::test]
async fn a_subscriber_resubscribes_after_redis_restarts_and_starts_over() {
    let server = RedisServer::start();
    let prefix = prefix();
    let (a, b) = (
        store_on(&server, &prefix).peers(),
        store_on(&server, &prefix).peers(),
    );
    let (mut from_a, mut from_b) = (a.subscribe(), b.subscribe());
    let channel = format!("{prefix}invalidations");
    subscribers(&server, &channel, 2).await;

    server.stop();
    server.restart();
    subscribers(&server, &channel, 2).await;
    // Whatever was published while they were away is lost: each starts over.
    assert_eq!(next(&mut from_a).await, Invalidation::All(true));
    assert_eq!(next(&mut from_b).await, Invalidation::All(true));
    a.publish(&Invalidation::GrantId("g1".into()));
    assert_eq!(next(&mut from_b).await, Invalidation::GrantId("g1".into()));
}
