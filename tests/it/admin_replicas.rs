//! Offboarding on replicas: two brokers on one Redis, alice logged in with two
//! clients, each token accepted by both; one `DELETE /admin/grants?subject=alice` on
//! one replica, and the next request of each client is refused on both — the one
//! that answered before replying, the other as soon as Redis's channel delivers.

use std::net::TcpListener;

use token_broker::clock::Clock;

use crate::admin_api::ADMIN;
use crate::login_consent::register;
use crate::login_flow::{login, redeem, refresh, verify};
use crate::redis_outage::start_broker;
use crate::replicas::{Redis, replica_config, until_refused};
use crate::support::{TestDevIdp, http};

#[actix_web::test]
async fn offboarding_ends_a_subjects_access_on_every_replica_at_once() {
    let redis = Redis::start();
    let clock = Clock::system();
    let idp = TestDevIdp::start_with_clock(Default::default(), clock.clone()).await;
    let (first, second) = (
        TcpListener::bind("127.0.0.1:0").unwrap(),
        TcpListener::bind("127.0.0.1:0").unwrap(),
    );
    let public_url = format!("http://{}", first.local_addr().unwrap());
    let text = format!(
        "{}\n[admin]\ntoken = \"{ADMIN}\"\n",
        replica_config(&public_url, &idp.url, &redis.url())
    );
    let a = start_broker(&text, first, &clock);
    let b = start_broker(&text, second, &clock);

    let mut sessions = Vec::new();
    for name in ["Laptop", "Phone"] {
        let client = register(a.as_str(), name).await;
        let code = login(a.as_str(), &client, &[]).await;
        let (status, tokens) = redeem(a.as_str(), &client, &code).await;
        assert_eq!(status, 200, "{tokens}");
        let access = tokens["access_token"].as_str().unwrap().to_owned();
        let refresh_token = tokens["refresh_token"].as_str().unwrap().to_owned();
        for replica in [&a, &b] {
            assert_eq!(verify(replica.as_str(), &access).await.0, 200);
        }
        sessions.push((client, access, refresh_token));
    }

    let response = http()
        .delete(format!("{b}/admin/grants?subject=alice"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["revoked"], 2, "{body}");

    for (client, access, refresh_token) in &sessions {
        assert_eq!(
            verify(b.as_str(), access).await.0,
            401,
            "at once where it ran"
        );
        until_refused(&a, access).await;
        let (status, refused) = refresh(a.as_str(), client, refresh_token).await;
        assert_eq!(
            (status, refused["error"].as_str()),
            (400, Some("invalid_grant"))
        );
    }
    // Listed as revoked from either replica.
    let listed: serde_json::Value = http()
        .get(format!("{a}/admin/grants?subject=alice"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let items = listed["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert!(items.iter().all(|g| g["revoked"] == true), "{listed}");
}
