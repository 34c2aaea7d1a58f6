//! A rotation (or a code's redemption) whose answer never reaches the broker — Redis ran it, then stalled or
//! went away before replying, or ran it late — is undone as soon as Redis answers
//! again: the broker said 503 (nothing changed) and never handed the successor to
//! anyone, so the client's token must still work when it comes back, past
//! `refresh.reuse_grace` too. Found by the soak (benches/soak.sh): Redis stopped
//! between running a rotation and sending its reply, and the client presenting its
//! token after the 14 s pause was taken for a replay.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::harness::RedisServer;
use super::relay::Relay;
use super::{prefix, sealer, store_on};
use crate::store::suite::login_state::{ROOMY, code_grant};
use crate::store::suite::{grant, record};
use crate::store::{
    LoginState, Redeemer, Redemption, RedisStore, RotateOutcome, Store, StoreError,
};
use crate::telemetry::metrics::Metrics;

const GRACE: Duration = Duration::from_secs(10);

fn redis_port(server: &RedisServer) -> u16 {
    server
        .url()
        .trim_end_matches('/')
        .rsplit(':')
        .next()
        .and_then(|port| port.parse().ok())
        .unwrap()
}

/// The broker's store, through `relay`.
fn through(relay: &Relay, prefix: &str) -> RedisStore {
    RedisStore::open(&relay.url(), prefix, sealer()).unwrap()
}

/// Loads the scripts (a first call's `EVALSHA` is answered `NOSCRIPT`, and the
/// script is sent only then: held back, it would never run).
async fn scripts_loaded(store: &RedisStore) {
    let warm = Redeemer::random();
    store
        .put_code("warm-up", code_grant("warm-up"), 1_060, 1_000, ROOMY)
        .await
        .unwrap();
    store.redeem_code("warm-up", warm, 1_000).await.unwrap();
    store.unredeem_code("warm-up", warm).await.unwrap();
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
        let relay = Relay::start(redis_port(&server));
        let prefix = prefix();
        let broker = through(&relay, &prefix);
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
    counted(metrics, "refresh_rotation_undos_total", outcome)
}

/// `token_broker_<name>{outcome}` as `metrics` renders it.
fn counted(metrics: &Metrics, name: &str, outcome: &str) -> u64 {
    let series = format!("token_broker_{name}{{outcome=\"{outcome}\"}} ");
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

/// Whether code `code` reads as spent (`spent`) within 1.5 s.
async fn until_spent(store: &RedisStore, code: &str, spent: bool) -> bool {
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(1_500) {
        let stored = store.find_code(code, NOW).await.unwrap().unwrap();
        if stored.redeemed == spent {
            return true;
        }
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// Waits (at most 15 s) until code `code` reads as unspent again.
async fn until_unspent(store: &RedisStore, code: &str) {
    let started = Instant::now();
    while !until_spent(store, code, false).await {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the lost redemption was not put back"
        );
    }
}

/// Waits (at most 5 s) until one put-back is counted as `undone`, and checks it is
/// the only one counted.
async fn one_redemption_undone(metrics: &Metrics) {
    let name = "code_redemption_undos_total";
    let started = Instant::now();
    while counted(metrics, name, "undone") == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the put-back was not counted"
        );
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(counted(metrics, name, "undone"), 1);
    assert_eq!(
        counted(metrics, name, "not_needed") + counted(metrics, name, "given_up"),
        0
    );
}

/// The rig with code `k1` (grant `g1`) stored, the broker's undos counted.
async fn code_rig() -> (Rig, Metrics) {
    let rig = Rig::start().await;
    let metrics = Metrics::new().unwrap();
    rig.broker.count_with(metrics.clone());
    rig.broker
        .put_code("k1", code_grant("g1"), NOW + 60, NOW, ROOMY)
        .await
        .unwrap();
    (rig, metrics)
}

/// The client presents code `k1` again: its tokens, not a replay that would revoke
/// the grant.
async fn redeems_again(store: &RedisStore) {
    let again = store
        .redeem_code("k1", Redeemer::random(), NOW + 5)
        .await
        .unwrap();
    assert_eq!(again, Redemption::Redeemed(code_grant("g1")));
}

#[actix_web::test]
async fn a_redemption_whose_answer_is_lost_is_put_back_and_the_code_redeems_again() {
    let (rig, metrics) = code_rig().await;
    let (broker, direct) = (&rig.broker, &rig.direct);

    // Redis redeems the code; its reply comes only after the broker gave up waiting
    // and answered 503 (no tokens).
    rig.relay.hold(true);
    let (lost, ran) = tokio::join!(
        broker.redeem_code("k1", Redeemer::random(), NOW + 1),
        until_spent(direct, "k1", true),
    );
    assert!(matches!(lost, Err(StoreError::Unavailable(_))), "{lost:?}");
    assert!(
        ran,
        "the redemption never ran: the test would prove nothing"
    );
    rig.relay.hold(false);
    until_unspent(direct, "k1").await;
    one_redemption_undone(&metrics).await;

    redeems_again(direct).await;
}

#[actix_web::test]
async fn a_put_back_redis_cannot_answer_now_happens_when_it_can() {
    let (rig, metrics) = code_rig().await;
    let (broker, direct) = (&rig.broker, &rig.direct);
    let by = Redeemer::random();
    let redeemed = broker.redeem_code("k1", by, NOW + 1).await.unwrap();
    assert_eq!(redeemed, Redemption::Redeemed(code_grant("g1")));

    // The tokens could not be issued (Redis stalled), and neither does the put-back
    // get its answer now.
    rig.relay.hold(true);
    let lost = broker.unredeem_code("k1", by).await;
    assert!(matches!(lost, Err(StoreError::Unavailable(_))), "{lost:?}");
    rig.relay.hold(false);
    until_unspent(direct, "k1").await;
    // The first try ran (its answer held back), so the retry found it done: the
    // code is unspent either way, counted once.
    let name = "code_redemption_undos_total";
    let started = Instant::now();
    while counted(&metrics, name, "undone") + counted(&metrics, name, "not_needed") == 0 {
        assert!(started.elapsed() < Duration::from_secs(5), "not counted");
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    // Once: the background retry ended there.
    actix_web::rt::time::sleep(Duration::from_millis(500)).await;
    let ends = ["undone", "not_needed", "given_up"].map(|o| counted(&metrics, name, o));
    assert_eq!(ends.iter().sum::<u64>(), 1, "{ends:?}");
    redeems_again(direct).await;
}
