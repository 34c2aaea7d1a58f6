//! The consent cookie key kept in a shared store: two brokers on one Redis with no
//! `consent.cookie_key` create one key there, sealed, and each honours an approval
//! the other remembered (with a key per process, the other showed the page again).

use std::net::TcpListener;

use token_broker::clock::Clock;

use crate::login_consent::{register, skipped_consent};
use crate::login_remember::remembered_approval;
use crate::redis_outage::start_broker;
use crate::replicas::{Redis, replica_config};
use crate::support::TestDevIdp;

/// `text` without its shared `consent.cookie_key`.
fn without_cookie_key(text: &str) -> String {
    let without = text.replace(
        "cookie_key = \"a shared cookie key for both replicas\"\n",
        "",
    );
    assert_ne!(without, text);
    without
}

#[actix_web::test]
async fn replicas_on_one_redis_without_a_cookie_key_honour_each_others_remembered_approval() {
    let redis = Redis::start();
    let clock = Clock::system();
    let idp = TestDevIdp::start_with_clock(Default::default(), clock.clone()).await;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let public_url = format!("http://{}", listener.local_addr().unwrap());
    let text = without_cookie_key(&replica_config(&public_url, &idp.url, &redis.url()));
    let a = start_broker(&text, listener, &clock);
    let b = start_broker(&text, TcpListener::bind("127.0.0.1:0").unwrap(), &clock);
    let client = register(a.as_str(), "remembered across replicas").await;

    let on_a = remembered_approval(a.as_str(), &client).await;
    let to = skipped_consent(b.as_str(), &client, &on_a).await;
    assert!(to.expect("B skips the page").as_str().starts_with(&idp.url));
    let on_b = remembered_approval(b.as_str(), &client).await;
    assert!(skipped_consent(a.as_str(), &client, &on_b).await.is_some());
}
