//! Identical exchange misses on two "replicas" — two exchange actors, each with its own
//! Redis store on one redis-server — against the development IdP in this process,
//! whose counters say how many exchanges it was asked for.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use ::redis::Commands;
use actix_web::web;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures_util::future::join_all;

use super::harness::RedisServer;
use super::{prefix, store_on};
use crate::actors::discovery::{Discovery, Timing};
use crate::actors::exchange::{
    Claim, ExchangeError, ExchangeLock, ExchangeRequest, Exchanger, Exchanges, Holder,
    SHARED_WINDOW,
};
use crate::clock::Clock;
use crate::config::{Issuer, Secret, Strategy};
use crate::dev_idp::faults::FaultSpec;
use crate::dev_idp::idp::{AccessGrant, Idp};
use crate::dev_idp::{self, DevIdpConfig};
use crate::domain::exchange::cache_key;
use crate::domain::scope::Scopes;
use crate::store::redis::RedisStore;
use crate::store::redis::keys::Keys;
use crate::telemetry::metrics::Metrics;
use crate::upstream::exchange::ACCESS_TOKEN_TYPE;
use crate::upstream::http::UpstreamHttp;
use crate::upstream::token::ClientCredentials;

const NOTES: &str = "https://notes.example/api";
const EXCHANGES: &str = "token:urn:ietf:params:oauth:grant-type:token-exchange";
const SKEW: Duration = Duration::from_secs(30);

/// The provider every replica asks, and its discovery.
struct Upstream {
    idp: web::Data<Idp>,
    http: UpstreamHttp,
    discovery: crate::actors::discovery::DiscoveryHandle,
}

impl Upstream {
    async fn start(config: DevIdpConfig) -> Self {
        let clock = Clock::system();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let running = dev_idp::start(config, listener, clock.clone()).unwrap();
        let idp = running.idp.clone();
        let issuer = Issuer::parse_upstream(&running.url, false).unwrap();
        actix_web::rt::spawn(running.server);
        let http = UpstreamHttp::new(Duration::from_secs(10)).unwrap();
        let timing = Timing {
            ttl: 300,
            grace: 300,
            refetch_interval: 10,
        };
        let discovery =
            Discovery::start(http.clone(), issuer, timing, clock, Metrics::new().unwrap());
        Self {
            idp,
            http,
            discovery,
        }
    }

    /// Every exchange call slower by `ms`, so concurrent misses truly overlap.
    fn slow(&self, ms: u64) {
        self.idp
            .faults
            .set(&FaultSpec {
                endpoint: "token".to_owned(),
                status: None,
                count: None,
                retry_after: None,
                latency_ms: Some(ms),
            })
            .unwrap();
    }

    fn exchanges(&self) -> u64 {
        self.idp
            .faults
            .calls()
            .get(EXCHANGES)
            .map_or(0, |log| log.count)
    }

    /// An access token the provider issued to `sub`: an exchange's subject.
    fn subject(&self, sub: &str) -> String {
        let (token, _) = self
            .idp
            .mint_access(AccessGrant {
                sub,
                client_id: "token-broker",
                audiences: &["token-broker".to_owned()],
                scopes: &Scopes::parse("notes:read").unwrap(),
                act: None,
                entra: false,
            })
            .unwrap();
        token
    }

    /// A replica's Exchanger on `store`, counting into `metrics`.
    fn replica(&self, store: &RedisStore, metrics: &Metrics) -> Exchanger {
        self.replica_timing_out(store, metrics, Duration::from_secs(10))
    }

    /// Like [`replica`](Self::replica), holding its locks for `upstream_timeout`
    /// plus the margin.
    fn replica_timing_out(
        &self,
        store: &RedisStore,
        metrics: &Metrics,
        upstream_timeout: Duration,
    ) -> Exchanger {
        Exchanges::new(
            self.http.clone(),
            self.discovery.clone(),
            Clock::system(),
            1000,
            SKEW,
        )
        .with_metrics(metrics.clone())
        .with_replicas(Arc::new(store.clone()), upstream_timeout)
        .start()
    }
}

fn request(subject: &str) -> ExchangeRequest {
    let scopes = Scopes::parse("notes:read").unwrap();
    ExchangeRequest {
        key: key_of(subject),
        strategy: Strategy::Rfc8693,
        upstream_audience: NOTES.to_owned(),
        scopes,
        subject_token: subject.to_owned(),
        actor_token: None,
        refresh_token: None,
        credentials: ClientCredentials::with_secret(
            "token-broker",
            Secret::new("token-broker-secret"),
        ),
        holder: Holder {
            subject: "someone".to_owned(),
            ..Holder::default()
        },
    }
}

fn key_of(subject: &str) -> [u8; 32] {
    cache_key(
        &crate::tokens::verify::token_digest(subject),
        NOTES,
        &Scopes::parse("notes:read").unwrap(),
        ACCESS_TOKEN_TYPE,
        None,
    )
}

fn sub_of(token: &str) -> String {
    let payload = token.split('.').nth(1).unwrap();
    let claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    claims["sub"].as_str().unwrap().to_owned()
}

/// A counter's value in `metrics`' text exposition (0 when absent).
fn counter(metrics: &Metrics, series: &str) -> u64 {
    metrics
        .render()
        .unwrap()
        .lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0)
}

#[actix_web::test]
async fn two_hundred_identical_misses_on_two_replicas_are_one_provider_call() {
    let server = RedisServer::shared();
    let prefix = prefix();
    let upstream = Upstream::start(DevIdpConfig::default()).await;
    let (metrics_a, metrics_b) = (Metrics::new().unwrap(), Metrics::new().unwrap());
    let a = upstream.replica(&store_on(&server, &prefix), &metrics_a);
    let b = upstream.replica(&store_on(&server, &prefix), &metrics_b);
    let subject = upstream.subject("alice");
    upstream.slow(200);

    let answers = join_all((0..200).map(|i| {
        let replica = if i % 2 == 0 { &a } else { &b };
        replica.exchange(request(&subject))
    }))
    .await;

    assert_eq!(upstream.exchanges(), 1);
    let first = answers[0].as_ref().unwrap().access_token.clone();
    assert_eq!(sub_of(&first), "alice");
    for answer in &answers {
        let answer = answer.as_ref().unwrap();
        assert_eq!(answer.access_token, first);
        assert_eq!(answer.scope.to_string(), "notes:read");
    }
    // 99 waited in each process, and one replica's miss waited for the other's.
    let local = r#"token_broker_exchange_coalesced_total{where="local"}"#;
    let replica = r#"token_broker_exchange_coalesced_total{where="replica"}"#;
    assert_eq!(counter(&metrics_a, local) + counter(&metrics_b, local), 198);
    assert_eq!(
        counter(&metrics_a, replica) + counter(&metrics_b, replica),
        1
    );

    // What the replicas shared is sealed, and gone within the coalescing window.
    let mut raw = server.connection();
    let stored_key = Keys::new(&prefix).exchange(&key_of(&subject));
    let stored: Vec<u8> = raw.get(&stored_key).unwrap();
    assert!(!stored.is_empty());
    assert!(
        !stored.windows(first.len()).any(|w| w == first.as_bytes()),
        "the downstream token is in Redis in the clear"
    );
    let ttl_ms: i64 = raw.pttl(&stored_key).unwrap();
    assert!(
        ttl_ms > 0 && ttl_ms <= SHARED_WINDOW.as_millis() as i64,
        "{ttl_ms}"
    );
    let lock: Option<String> = raw
        .get(Keys::new(&prefix).exchange_lock(&key_of(&subject)))
        .unwrap();
    assert_eq!(lock, None, "the holder released its lock");
}

#[actix_web::test]
async fn when_the_holder_dies_a_waiting_replica_takes_over() {
    let server = RedisServer::shared();
    let prefix = prefix();
    let upstream = Upstream::start(DevIdpConfig::default()).await;
    let subject = upstream.subject("alice");
    // A replica took the lock and died before settling: its lock outlives it briefly.
    let dead = store_on(&server, &prefix);
    let Claim::Won(_abandoned) = dead
        .claim(&key_of(&subject), Duration::from_millis(300))
        .await
        .unwrap()
    else {
        panic!("the lock was free")
    };

    let metrics = Metrics::new().unwrap();
    let b = upstream.replica(&store_on(&server, &prefix), &metrics);
    let answer = b.exchange(request(&subject)).await.unwrap();
    assert_eq!(sub_of(&answer.access_token), "alice");
    assert_eq!(upstream.exchanges(), 1);
}

#[actix_web::test]
async fn a_holder_whose_request_is_dropped_releases_its_lock_at_once() {
    let server = RedisServer::shared();
    let prefix = prefix();
    let upstream = Upstream::start(DevIdpConfig::default()).await;
    // A lock that would outlive the test: only a release removes it.
    let a = upstream.replica_timing_out(
        &store_on(&server, &prefix),
        &Metrics::new().unwrap(),
        Duration::from_secs(600),
    );
    let subject = upstream.subject("alice");
    upstream.slow(2000);
    let lock = Keys::new(&prefix).exchange_lock(&key_of(&subject));
    let mut raw = server.connection();
    let locked = |raw: &mut ::redis::Connection| raw.exists::<_, bool>(&lock).unwrap();

    // The request is abandoned while it holds the lock and waits for the provider.
    let mut exchange = Box::pin(a.exchange(request(&subject)));
    let mut watch = server.connection();
    tokio::select! {
        answer = &mut exchange => panic!("answered before it was abandoned: {answer:?}"),
        () = async {
            while !locked(&mut watch) {
                actix_web::rt::time::sleep(Duration::from_millis(5)).await;
            }
        } => {}
    }
    drop(exchange);

    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while locked(&mut raw) {
        assert!(
            std::time::Instant::now() < deadline,
            "the abandoned lock was not released"
        );
        actix_web::rt::time::sleep(Duration::from_millis(10)).await;
    }
}

#[actix_web::test]
async fn a_lock_taken_over_is_released_only_by_its_new_holder() {
    let server = RedisServer::shared();
    let store = store_on(&server, &prefix());
    let key = [7u8; 32];
    let Claim::Won(first) = store.claim(&key, Duration::from_millis(50)).await.unwrap() else {
        panic!("the lock was free")
    };
    // Once the first holder's lock expires, the next claim takes it.
    let second = loop {
        match store.claim(&key, Duration::from_secs(10)).await.unwrap() {
            Claim::Won(lease) => break lease,
            Claim::Held => actix_web::rt::time::sleep(Duration::from_millis(10)).await,
            Claim::Settled(shared) => panic!("nothing was published: {shared:?}"),
        }
    };
    // The late first holder settles: the second holder's lock stays.
    store.settle(first, None).await.unwrap();
    assert!(matches!(
        store.claim(&key, Duration::from_secs(10)).await.unwrap(),
        Claim::Held
    ));
    store.settle(second, None).await.unwrap();
    assert!(matches!(
        store.claim(&key, Duration::from_secs(10)).await.unwrap(),
        Claim::Won(_)
    ));
}

#[actix_web::test]
async fn a_refusal_reaches_the_waiting_replica_as_the_same_refusal() {
    let server = RedisServer::shared();
    let prefix = prefix();
    let upstream = Upstream::start(DevIdpConfig::default()).await;
    let metrics = Metrics::new().unwrap();
    let a = upstream.replica(&store_on(&server, &prefix), &metrics);
    let b = upstream.replica(&store_on(&server, &prefix), &metrics);
    let subject = upstream.subject("alice");
    upstream
        .idp
        .faults
        .set_refuse_exchange(Some("unauthorized_client".to_owned()));
    upstream.slow(200);

    let (on_a, on_b) =
        futures_util::join!(a.exchange(request(&subject)), b.exchange(request(&subject)));
    assert_eq!(upstream.exchanges(), 1);
    for answer in [on_a, on_b] {
        match answer {
            Err(ExchangeError::Refused { error, description }) => {
                assert_eq!(error, "unauthorized_client");
                assert_eq!(
                    description.as_deref(),
                    Some("token exchange is refused by this provider")
                );
            }
            other => panic!("expected the provider's refusal, got {other:?}"),
        }
    }
}

#[actix_web::test]
async fn different_subjects_never_share_an_outcome() {
    let server = RedisServer::shared();
    let prefix = prefix();
    let upstream = Upstream::start(DevIdpConfig::default()).await;
    let metrics = Metrics::new().unwrap();
    let a = upstream.replica(&store_on(&server, &prefix), &metrics);
    let b = upstream.replica(&store_on(&server, &prefix), &metrics);
    let (alice, bob) = (upstream.subject("alice"), upstream.subject("bob"));
    upstream.slow(100);

    let (for_alice, for_bob) =
        futures_util::join!(a.exchange(request(&alice)), b.exchange(request(&bob)));
    assert_eq!(sub_of(&for_alice.unwrap().access_token), "alice");
    assert_eq!(sub_of(&for_bob.unwrap().access_token), "bob");
    assert_eq!(upstream.exchanges(), 2);

    // Alice's sealed outcome copied under Bob's key does not open there.
    let keys = Keys::new(&prefix);
    let mut raw = server.connection();
    let sealed: Vec<u8> = raw.get(keys.exchange(&key_of(&alice))).unwrap();
    let () = raw
        .set(keys.exchange(&key_of(&bob)), sealed.as_slice())
        .unwrap();
    let store = store_on(&server, &prefix);
    assert!(store.claim(&key_of(&bob), SKEW).await.is_err());
}

#[actix_web::test]
async fn a_token_with_less_than_the_skew_left_is_not_shared() {
    let server = RedisServer::shared();
    let prefix = prefix();
    let upstream = Upstream::start(DevIdpConfig {
        access_token_ttl: Duration::from_secs(20),
        ..Default::default()
    })
    .await;
    let metrics = Metrics::new().unwrap();
    let a = upstream.replica(&store_on(&server, &prefix), &metrics);
    let subject = upstream.subject("alice");
    a.exchange(request(&subject)).await.unwrap();

    let keys = Keys::new(&prefix);
    let mut raw = server.connection();
    let shared: bool = raw.exists(keys.exchange(&key_of(&subject))).unwrap();
    assert!(!shared, "a token the skew makes uncacheable was shared");
    let locked: bool = raw.exists(keys.exchange_lock(&key_of(&subject))).unwrap();
    assert!(!locked, "the lock was not released");
}

#[actix_web::test]
async fn with_redis_down_the_provider_is_called_without_the_lock() {
    let server = RedisServer::start();
    let upstream = Upstream::start(DevIdpConfig::default()).await;
    let metrics = Metrics::new().unwrap();
    let a = upstream.replica(&store_on(&server, &prefix()), &metrics);
    let subject = upstream.subject("alice");
    server.stop();

    let answer = a.exchange(request(&subject)).await.unwrap();
    assert_eq!(sub_of(&answer.access_token), "alice");
    assert_eq!(upstream.exchanges(), 1);
    assert_eq!(
        counter(&metrics, "token_broker_exchange_lock_failures_total"),
        1
    );
}
