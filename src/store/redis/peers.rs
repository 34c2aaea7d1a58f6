//! Invalidations between replicas over Redis pub/sub, on the channel
//! `<prefix>invalidations`.
//!
//! Each message is JSON, `{"from": <replica id>, "invalidation": {…}}`; the id is
//! random per [`RedisPeers`], so a replica skips its own messages (the Invalidator
//! has applied them already). Publishing only queues: a task on the store's runtime
//! sends, retrying briefly while Redis is away. The subscriber resubscribes with
//! backoff whenever its connection ends; pub/sub keeps nothing for an absent
//! subscriber, so after any gap it hands on `Invalidation::All` — whatever was
//! missed, every cache starts over — before what arrives next.

use std::sync::Arc;
use std::time::Duration;

use ::redis::Client;
use ::redis::aio::{ConnectionManager, PubSub};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::CONNECT_TIMEOUT;
use super::runtime::IoThread;
use crate::domain::invalidation::Invalidation;
use crate::store::Peers;

/// Invalidations waiting to be published; past this the newest are dropped (logged)
/// rather than blocking the Invalidator. The scope cache's TTL bounds what a
/// dropped one costs.
const PUBLISH_QUEUE: usize = 1024;
/// Attempts per message, and the pause before the second (doubling after).
const PUBLISH_ATTEMPTS: u32 = 4;
const PUBLISH_RETRY: Duration = Duration::from_millis(100);
/// Invalidations received but not yet taken by the Invalidator.
const RECEIVE_QUEUE: usize = 256;
/// Backoff between subscription attempts.
const RESUBSCRIBE_MIN: Duration = Duration::from_millis(100);
const RESUBSCRIBE_MAX: Duration = Duration::from_secs(5);
/// A subscription is pinged this often: a Redis that vanished without closing the
/// connection is noticed within about this time plus the timeout.
const PING_EVERY: Duration = Duration::from_secs(15);
const PING_TIMEOUT: Duration = Duration::from_secs(5);

/// What travels on the channel.
#[derive(Debug, Serialize, Deserialize)]
struct Message {
    from: String,
    invalidation: Invalidation,
}

/// One replica's link to the others. Cheap to clone; publishing from any clone
/// carries the same replica id.
#[derive(Clone)]
pub struct RedisPeers {
    id: Arc<str>,
    queue: mpsc::Sender<Invalidation>,
    client: Client,
    channel: String,
    io: Arc<IoThread>,
}

impl RedisPeers {
    pub(super) fn start(
        io: Arc<IoThread>,
        client: Client,
        conn: ConnectionManager,
        channel: String,
    ) -> Self {
        let id: Arc<str> = uuid::Uuid::new_v4().simple().to_string().into();
        let (queue, queued) = mpsc::channel(PUBLISH_QUEUE);
        io.handle()
            .spawn(publish_queued(conn, channel.clone(), id.clone(), queued));
        Self {
            id,
            queue,
            client,
            channel,
            io,
        }
    }

    /// This replica's random id, carried by every message it publishes.
    pub fn replica_id(&self) -> &str {
        &self.id
    }

    /// Invalidations published by other replicas, for the Invalidator's `Listen`.
    /// Subscribes in the background and resubscribes after Redis restarts; after a
    /// gap the stream yields `Invalidation::All` first. Ends only when dropped.
    pub fn subscribe(&self) -> BoxStream<'static, Invalidation> {
        let (tx, rx) = mpsc::channel(RECEIVE_QUEUE);
        self.io.handle().spawn(listen(
            self.client.clone(),
            self.channel.clone(),
            self.id.clone(),
            tx,
        ));
        // The stream keeps the Redis runtime alive for as long as it is read.
        let io = self.io.clone();
        futures_util::stream::unfold((rx, io), |(mut rx, io)| async move {
            rx.recv().await.map(|what| (what, (rx, io)))
        })
        .boxed()
    }
}

impl Peers for RedisPeers {
    fn publish(&self, what: &Invalidation) {
        if let Err(e) = self.queue.try_send(what.clone()) {
            tracing::warn!(invalidation = ?what, error = %e, "invalidation not published to other replicas");
        }
    }
}

impl std::fmt::Debug for RedisPeers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisPeers")
            .field("id", &self.id)
            .field("channel", &self.channel)
            .finish()
    }
}

/// Publishes queued invalidations in order until every sender is gone.
async fn publish_queued(
    mut conn: ConnectionManager,
    channel: String,
    from: Arc<str>,
    mut queued: mpsc::Receiver<Invalidation>,
) {
    while let Some(invalidation) = queued.recv().await {
        let message = Message {
            from: from.to_string(),
            invalidation,
        };
        let text = match serde_json::to_string(&message) {
            Ok(text) => text,
            Err(e) => {
                tracing::error!(error = %e, "cannot encode an invalidation");
                continue;
            }
        };
        let mut pause = PUBLISH_RETRY;
        for attempt in 1..=PUBLISH_ATTEMPTS {
            let sent = ::redis::cmd("PUBLISH")
                .arg(&channel)
                .arg(&text)
                .query_async::<u64>(&mut conn)
                .await;
            match sent {
                Ok(_) => break,
                Err(e) if attempt == PUBLISH_ATTEMPTS => {
                    // Replicas that lost Redis too start over when they resubscribe.
                    tracing::error!(invalidation = ?message.invalidation, error = %e, "invalidation not published to other replicas");
                }
                Err(e) => {
                    tracing::warn!(error = %e, attempt, "publishing an invalidation failed; retrying");
                    tokio::time::sleep(pause).await;
                    pause *= 2;
                }
            }
        }
    }
}

/// Why following a subscription stopped.
enum Ended {
    /// The connection ended or stopped answering: subscribe again.
    Lost,
    /// Nobody reads the stream any more.
    Closed,
}

/// Keeps a subscription up until the stream is dropped.
async fn listen(client: Client, channel: String, me: Arc<str>, tx: mpsc::Sender<Invalidation>) {
    let mut pause = RESUBSCRIBE_MIN;
    // Whether invalidations may have been missed: true after any failed attempt or
    // lost subscription, which is every time but a first attempt that succeeds.
    let mut gap = false;
    loop {
        match tokio::time::timeout(CONNECT_TIMEOUT, subscribe(&client, &channel)).await {
            Ok(Ok(pubsub)) => {
                tracing::info!(channel, "subscribed to invalidations from other replicas");
                pause = RESUBSCRIBE_MIN;
                if gap && tx.send(Invalidation::All(true)).await.is_err() {
                    return;
                }
                match follow(pubsub, &me, &tx).await {
                    Ended::Closed => return,
                    Ended::Lost => tracing::warn!(
                        channel,
                        "lost the subscription to invalidations; resubscribing"
                    ),
                }
            }
            Ok(Err(e)) => tracing::warn!(channel, error = %e, "cannot subscribe to invalidations"),
            Err(_) => tracing::warn!(channel, "subscribing to invalidations timed out"),
        }
        gap = true;
        tokio::select! {
            () = tx.closed() => return,
            () = tokio::time::sleep(pause) => {}
        }
        pause = (pause * 2).min(RESUBSCRIBE_MAX);
    }
}

async fn subscribe(client: &Client, channel: &str) -> ::redis::RedisResult<PubSub> {
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.subscribe(channel).await?;
    Ok(pubsub)
}

/// Hands on other replicas' messages until the subscription or the reader goes.
async fn follow(pubsub: PubSub, me: &str, tx: &mpsc::Sender<Invalidation>) -> Ended {
    let (mut sink, mut messages) = pubsub.split();
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.reset();
    loop {
        tokio::select! {
            () = tx.closed() => return Ended::Closed,
            message = messages.next() => {
                let Some(message) = message else { return Ended::Lost };
                match serde_json::from_slice::<Message>(message.get_payload_bytes()) {
                    Ok(m) if m.from == me => {}
                    Ok(m) => {
                        if tx.send(m.invalidation).await.is_err() {
                            return Ended::Closed;
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "ignoring an unreadable invalidation message"),
                }
            }
            _ = ping.tick() => {
                let answered = tokio::time::timeout(PING_TIMEOUT, sink.ping::<::redis::Value>()).await;
                if !matches!(answered, Ok(Ok(_))) {
                    return Ended::Lost;
                }
            }
        }
    }
}
