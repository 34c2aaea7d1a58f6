//! The Redis store over TLS (`rediss://`, `[store.tls]`), opened from configuration
//! as `serve` opens it, against a `redis-server` that speaks TLS only and requires
//! client certificates: the behaviour suites pass over it, invalidations and locks
//! travel over it, and a Redis that refuses the broker's TLS is refused at start-up
//! with a reason — never answered in plain text instead.

use super::harness::RedisServer;
use super::harness::pki::Pki;
use super::peers::{next, subscribers};
use super::prefix;
use crate::config::{Environment, StoreConfig, load_str};
use crate::domain::invalidation::Invalidation;
use crate::store::suite::Subject;
use crate::store::suite::login_state::LoginSubject;
use crate::store::suite::rate_limits::RateSubject;
use crate::store::{OpenedStore, Peers, StoreError, open_shared};

/// `[store]` on `url` under `prefix`, followed by `tls` (a `[store.tls]` section or
/// nothing).
fn store_config(url: &str, prefix: &str, tls: &str) -> StoreConfig {
    store_config_with(url, prefix, "", tls)
}

/// [`store_config`] with more lines in `[store]`.
fn store_config_with(url: &str, prefix: &str, store: &str, tls: &str) -> StoreConfig {
    let text = format!(
        "[server]\npublic_url = \"https://broker.example.com\"\n\
         [upstream]\nissuer = \"https://idp.example.com\"\nclient_id = \"b\"\nclient_secret = \"s\"\n\
         [store]\nbackend = \"redis\"\nurl = \"{url}\"\nkey_prefix = \"{prefix}\"\n{store}\
         [store.encryption]\nkey_id = \"k1\"\nkeys = {{ k1 = \"{}\" }}\n{tls}",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [1u8; 32]),
    );
    load_str(&text, &Environment::default()).unwrap().store
}

/// The store on the shared mutual-TLS server, opened from its configuration.
fn opened(server: &RedisServer, prefix: &str) -> OpenedStore {
    let config = store_config(&server.url(), prefix, &server.store_tls_section());
    open_shared(&config, None).unwrap()
}

/// Why opening `config` failed.
fn refusal(config: &StoreConfig) -> String {
    match open_shared(config, None) {
        Ok(_) => panic!("opened a store that should have been refused"),
        Err(StoreError::Unavailable(why) | StoreError::Corrupt(why)) => why,
    }
}

mod store_suite {
    use super::*;

    fn open() -> Subject {
        let server = RedisServer::shared_tls();
        Subject::new(opened(&server, &prefix()).store, server)
    }

    crate::store::suite::store_behaviour!(open);
}

mod login_state_suite {
    use super::*;

    fn open() -> LoginSubject {
        let server = RedisServer::shared_tls();
        LoginSubject::new(opened(&server, &prefix()).login_state, server)
    }

    crate::store::suite::login_state::login_state_behaviour!(open);
}

mod rate_limits_suite {
    use super::*;

    fn open() -> RateSubject {
        let server = RedisServer::shared_tls();
        RateSubject::new(opened(&server, &prefix()).rate_limits, server)
    }

    crate::store::suite::rate_limits::rate_limits_behaviour!(open);
}

#[actix_web::test]
async fn invalidations_and_locks_travel_over_tls() {
    let server = RedisServer::shared_tls();
    let prefix = prefix();
    let (a, b) = (opened(&server, &prefix), opened(&server, &prefix));
    let (a_peers, b_peers) = (a.peers.unwrap(), b.peers.unwrap());
    let mut from_a = b_peers.subscribe();
    subscribers(&server, &format!("{prefix}invalidations"), 1).await;
    a_peers.publish(&Invalidation::GrantId("g1".into()));
    assert_eq!(next(&mut from_a).await, Invalidation::GrantId("g1".into()));

    let (a_lock, b_lock) = (a.refresh_lock.unwrap(), b.refresh_lock.unwrap());
    let ttl = std::time::Duration::from_secs(30);
    assert!(a_lock.try_lock("g1", "owner-a", ttl).await.unwrap());
    assert!(!b_lock.try_lock("g1", "owner-b", ttl).await.unwrap());
    a_lock.unlock("g1", "owner-a").await.unwrap();
    assert!(b_lock.try_lock("g1", "owner-b", ttl).await.unwrap());
}

#[actix_web::test]
async fn a_ca_that_did_not_sign_the_servers_certificate_is_refused_at_start() {
    let server = RedisServer::shared_tls();
    let dir = tempfile::tempdir().unwrap();
    let stranger = Pki::generate().write(dir.path());
    let tls = server.store_tls_section_trusting(&stranger.ca);
    let why = refusal(&store_config(&server.url(), &prefix(), &tls));
    assert!(why.contains("TLS handshake"), "{why}");
    assert!(why.contains("store.tls.ca"), "{why}");
    // Without a CA the system's are used, and none of them signed a test CA's
    // certificate: still refused, never connected unchecked.
    let why = refusal(&store_config(&server.url(), &prefix(), ""));
    assert!(why.contains("UnknownIssuer"), "{why}");
    assert!(why.contains("did not sign"), "{why}");
}

#[actix_web::test]
async fn a_server_that_requires_a_client_certificate_refuses_a_broker_without_one() {
    let server = RedisServer::shared_tls();
    let tls = format!(
        "[store.tls]\nca = \"file:{}\"\n",
        server.tls().files.ca.display()
    );
    let why = refusal(&store_config(&server.url(), &prefix(), &tls));
    assert!(why.contains("TLS handshake"), "{why}");
    assert!(why.contains("client_cert"), "{why}");
    // A client certificate from another CA is refused alike.
    let dir = tempfile::tempdir().unwrap();
    let stranger = Pki::generate().write(dir.path());
    let tls = format!(
        "{tls}client_cert = \"file:{}\"\nclient_key = \"file:{}\"\n",
        stranger.client_cert.display(),
        stranger.client_key.display()
    );
    let why = refusal(&store_config(&server.url(), &prefix(), &tls));
    assert!(why.contains("client_cert"), "{why}");
}

#[actix_web::test]
async fn client_certificates_are_optional_where_the_server_says_so() {
    let server = RedisServer::start_tls(false);
    let tls = format!(
        "[store.tls]\nca = \"file:{}\"\n",
        server.tls().files.ca.display()
    );
    let opened = open_shared(&store_config(&server.url(), &prefix(), &tls), None).unwrap();
    let grant = crate::store::suite::grant("g1");
    opened.store.put_grant(grant.clone()).await.unwrap();
    assert_eq!(opened.store.get_grant("g1").await.unwrap(), Some(grant));
}

#[actix_web::test]
async fn a_rediss_url_on_a_plain_text_port_never_falls_back_to_plain_text() {
    // A plain Redis reads the TLS greeting as a command line and may wait for its
    // end: the broker starts (as for a Redis that is away) but is never served.
    let plain = RedisServer::shared();
    let url = plain.url().replace("redis://", "rediss://");
    let tls_server = RedisServer::shared_tls();
    let own = prefix();
    let config = store_config(&url, &own, &tls_server.store_tls_section());
    let opened = match open_shared(&config, None) {
        Ok(opened) => opened,
        Err(StoreError::Unavailable(why)) => {
            assert!(why.contains("TLS port"), "{why}");
            return;
        }
        Err(other) => panic!("{other}"),
    };
    let grant = crate::store::suite::grant("g1");
    assert!(matches!(
        opened.store.put_grant(grant).await,
        Err(StoreError::Unavailable(_))
    ));
    let mut conn = plain.connection();
    // Only this test's keys: the shared server holds other tests' grants `g1` too.
    let keys: Vec<String> = ::redis::cmd("KEYS")
        .arg(format!("{own}*"))
        .query(&mut conn)
        .unwrap();
    assert!(keys.is_empty(), "{keys:?}");
}

#[actix_web::test]
async fn a_tls_redis_that_is_away_at_start_is_not_a_refusal() {
    let server = RedisServer::start_tls(true);
    let (url, tls) = (server.url(), server.store_tls_section());
    server.stop();
    let opened = open_shared(&store_config(&url, &prefix(), &tls), None).unwrap();
    assert!(matches!(
        opened.store.get_grant("g1").await,
        Err(StoreError::Unavailable(_))
    ));
    server.restart();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while opened.store.get_grant("g1").await.is_err() {
        assert!(std::time::Instant::now() < deadline, "never reconnected");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[actix_web::test]
async fn credentials_redis_rejects_are_refused_at_start_and_the_password_may_stand_apart() {
    let server = RedisServer::start_tls(true);
    ::redis::cmd("CONFIG")
        .arg("SET")
        .arg("requirepass")
        .arg("s3cret-pw")
        .exec(&mut server.connection())
        .unwrap();
    let tls = server.store_tls_section();
    let why = refusal(&store_config(&server.url(), &prefix(), &tls));
    assert!(why.contains("credentials"), "{why}");
    assert!(!why.contains("s3cret-pw"), "{why}");
    let wrong = server.url().replace("rediss://", "rediss://:wrong-pw@");
    let why = refusal(&store_config(&wrong, &prefix(), &tls));
    assert!(
        why.contains("credentials") && !why.contains("wrong-pw"),
        "{why}"
    );
    // The password as its own secret reference, the url free of it.
    let apart = store_config_with(&server.url(), &prefix(), "password = \"s3cret-pw\"\n", &tls);
    let opened = open_shared(&apart, None).unwrap();
    opened
        .store
        .put_grant(crate::store::suite::grant("g1"))
        .await
        .unwrap();
    assert!(opened.store.get_grant("g1").await.unwrap().is_some());
}
