//! A rotation whose answer never reaches the broker — Redis ran it, then stalled or
//! went away before replying, or ran it late — is undone as soon as Redis answers
//! again: the broker said 503 (nothing changed) and never handed the successor to
//! anyone, so the client's token must still work when it comes back, past
//! `refresh.reuse_grace` too. Found by the soak (benches/soak.sh): Redis stopped
//! between running a rotation and sending its reply, and the client presenting its
//! token after the 14 s pause was taken for a replay.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::harness::RedisServer;
use super::{prefix, sealer, store_on};
use crate::store::suite::{grant, record};
use crate::store::{RedisStore, RotateOutcome, Store, StoreError};
use crate::telemetry::metrics::Metrics;

const GRACE: Duration = Duration::from_secs(10);

/// A TCP relay in front of Redis that can hold Redis's replies back: commands still
/// reach Redis and run, their replies come only when released — as when Redis is
/// stopped between running a command and writing its reply — long after the store
/// gave up waiting.
struct Relay {
    port: u16,
    hold: Arc<AtomicBool>,
}

impl Relay {
    fn start(server: &RedisServer) -> Self {
        let url = server.url();
        let target: u16 = url
            .trim_end_matches('/')
            .rsplit(':')
            .next()
            .and_then(|port| port.parse().ok())
            .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let hold = Arc::new(AtomicBool::new(false));
        let flag = hold.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                    continue;
                };
                let (mut from_client, mut to_server) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut from_client, &mut to_server);
                });
                let flag = flag.clone();
                std::thread::spawn(move || relay_replies(server, client, &flag));
            }
        });
        Self { port, hold }
    }

    fn hold(&self, on: bool) {
        self.hold.store(on, Ordering::SeqCst);
    }

    fn store(&self, prefix: &str) -> RedisStore {
        RedisStore::open(
            &format!("redis://127.0.0.1:{}/", self.port),
            prefix,
            sealer(),
        )
        .unwrap()
    }
}

/// Copies Redis's replies to the store, keeping them back while `hold` is set.
fn relay_replies(mut from_server: TcpStream, mut to_client: TcpStream, hold: &AtomicBool) {
    from_server
        .set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let mut held = Vec::new();
    let mut buffer = [0u8; 16 * 1024];
    loop {
        match from_server.read(&mut buffer) {
            Ok(0) => return,
            Ok(n) => held.extend_from_slice(&buffer[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
        if !hold.load(Ordering::SeqCst) && !held.is_empty() {
            if to_client.write_all(&held).is_err() {
                return;
            }
            held.clear();
        }
    }
}

/// Loads the two scripts (a first call's `EVALSHA` is answered `NOSCRIPT`, and the
/// script is sent only then: held back, it would never run).
async fn scripts_loaded(store: &RedisStore) {
    crate::store::redis::rotate::undo(&store.inner, [0; 32], [0; 32])
        .await
        .unwrap();
    store.put_grant(grant("warm-up")).await.unwrap();
    let first = record("warm-up", 1_000);
    let hash = first.hash;
    store.put_refresh(first).await.unwrap();
    store
        .rotate_refresh(hash, record("warm-up", 1_000), 1_000, GRACE)
        .await
        .unwrap();
}

/// Whether the token `hash` reads as rotated within the store's 2 s wait for a reply.
async fn until_rotated(store: &RedisStore, hash: &[u8; 32]) -> bool {
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(1_500) {
        let record = store.find_refresh(hash).await.unwrap().unwrap();
        if record.rotated.is_some() {
            return true;
        }
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// Waits (at most 15 s) until the token `hash` reads as never rotated.
async fn until_unrotated(store: &RedisStore, hash: &[u8; 32]) {
    let started = Instant::now();
    loop {
        let record = store.find_refresh(hash).await.unwrap().unwrap();
        if record.rotated.is_none() {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the lost rotation was not undone: {record:?}"
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

const NOW: u64 = 1_000;

/// A store through the relay (the broker's), one straight to Redis (to look), and
/// grant `g1` with one refresh token issued at [`NOW`].
struct Rig {
    /// Kept: the shared server stops when its last holder goes.
    _server: Arc<RedisServer>,
    relay: Relay,
    broker: RedisStore,
    direct: RedisStore,
    presented: [u8; 32],
}

impl Rig {
    async fn start() -> Self {
        let server = RedisServer::shared();
        let relay = Relay::start(&server);
        let prefix = prefix();
        let broker = relay.store(&prefix);
        let direct = store_on(&server, &prefix);
        scripts_loaded(&broker).await;
        broker.put_grant(grant("g1")).await.unwrap();
        let first = record("g1", NOW);
        let presented = first.hash;
        broker.put_refresh(first).await.unwrap();
        Self {
            _server: server,
            relay,
            broker,
            direct,
            presented,
        }
    }
}

/// `token_broker_refresh_rotation_undos_total{outcome}` as `metrics` renders it.
fn undos(metrics: &Metrics, outcome: &str) -> u64 {
    let series = format!("token_broker_refresh_rotation_undos_total{{outcome=\"{outcome}\"}} ");
    let text = metrics.render().unwrap();
    let value = text
        .lines()
        .find_map(|line| line.strip_prefix(series.as_str()));
    value
        .expect("the series is rendered from the start")
        .trim()
        .parse()
        .unwrap()
}

fn revoked(grant: Option<crate::store::Grant>) -> bool {
    grant.unwrap().revoked_at.is_some()
}

#[actix_web::test]
async fn a_rotation_whose_answer_is_lost_is_undone_and_the_token_works_after_the_grace() {
    let rig = Rig::start().await;
    let (broker, direct, presented, now) = (&rig.broker, &rig.direct, rig.presented, NOW);
    let metrics = Metrics::new().unwrap();
    broker.count_with(metrics.clone());
    assert_eq!(undos(&metrics, "undone"), 0);

    // Redis runs the rotation; its reply comes only after the broker gave up waiting
    // and answered 503.
    // While the broker still waits, Redis has rotated the token: the rotation ran.
    rig.relay.hold(true);
    let successor = record("g1", now);
    let (lost, ran) = tokio::join!(
        broker.rotate_refresh(presented, successor.clone(), now, GRACE),
        until_rotated(direct, &presented),
    );
    assert!(matches!(lost, Err(StoreError::Unavailable(_))), "{lost:?}");
    assert!(ran, "the rotation never ran: the test would prove nothing");
    rig.relay.hold(false);
    until_unrotated(direct, &presented).await;
    assert!(
        direct
            .find_refresh(&successor.hash)
            .await
            .unwrap()
            .is_none()
    );
    // Operators see it: counted once, as undone.
    let started = Instant::now();
    while undos(&metrics, "undone") == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the undo was not counted"
        );
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(undos(&metrics, "undone"), 1);
    assert_eq!(
        undos(&metrics, "not_needed") + undos(&metrics, "given_up"),
        0
    );

    // The client comes back a minute later with the token it holds: a rotation, not
    // a replay.
    let again = direct
        .rotate_refresh(presented, record("g1", now + 60), now + 60, GRACE)
        .await
        .unwrap();
    assert!(
        matches!(again, RotateOutcome::Rotated { retried: false, .. }),
        "{again:?}"
    );
    assert!(!revoked(direct.get_grant("g1").await.unwrap()));
}

#[actix_web::test]
async fn a_lost_retry_is_undone_and_the_successor_it_superseded_works_again() {
    let rig = Rig::start().await;
    let (broker, direct, presented, now) = (&rig.broker, &rig.direct, rig.presented, NOW);
    // The client rotates and keeps the successor.
    let kept = record("g1", now);
    let rotated = broker
        .rotate_refresh(presented, kept.clone(), now, GRACE)
        .await
        .unwrap();
    assert!(matches!(
        rotated,
        RotateOutcome::Rotated { retried: false, .. }
    ));

    // The first token again within the grace (a retry, which supersedes the kept
    // successor), and that answer comes too late: the broker answers 503.
    rig.relay.hold(true);
    let retry = record("g1", now + 1);
    let lost = broker
        .rotate_refresh(presented, retry.clone(), now + 1, GRACE)
        .await;
    assert!(matches!(lost, Err(StoreError::Unavailable(_))), "{lost:?}");
    rig.relay.hold(false);
    let started = Instant::now();
    while direct.find_refresh(&retry.hash).await.unwrap().is_some() {
        assert!(started.elapsed() < Duration::from_secs(15), "not undone");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }

    // The successor the client holds is live again: presented a minute later, it
    // rotates; before the undo it had been superseded, a replay that revoked the grant.
    let next = direct
        .rotate_refresh(kept.hash, record("g1", now + 60), now + 60, GRACE)
        .await
        .unwrap();
    assert!(
        matches!(next, RotateOutcome::Rotated { retried: false, .. }),
        "{next:?}"
    );
    assert!(!revoked(direct.get_grant("g1").await.unwrap()));
}
