//! The scope cache and invalidation: a grant's scopes and standing are re-read from
//! the store after an invalidation (revoke, `POST /admin/invalidate`) at once, and
//! after `scope_cache.ttl` without one; invalidating a subject also drops what was
//! exchanged for it. The admin API refuses anything but its token and a well-formed
//! body, and then changes nothing.

use std::time::Duration;

use serde_json::{Value, json};
use token_broker::domain::scope::Scopes;

use crate::exchange::{CALLER, alice, claims, exchange, text};
use crate::login_consent::register;
use crate::login_flow::{login, redeem};
use crate::support::{TestBroker, config_text, http};

const ADMIN: &str = "admin-token-0123456789abcdef0123456789";

fn with_admin(text: &str) -> String {
    format!("{text}\n[admin]\ntoken = \"{ADMIN}\"\n")
}

async fn broker() -> TestBroker {
    TestBroker::start_live(&with_admin(&text()), Default::default(), |_| {}).await
}

/// Forward-auth for the MCP resource: the status and the scopes the proxy is told.
async fn scopes_seen(broker: &TestBroker, token: &str) -> (u16, String) {
    let response = http()
        .get(broker.at("/auth/verify"))
        .header("x-original-uri", "/mcp")
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let scopes = response
        .headers()
        .get("x-auth-scopes")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (response.status().as_u16(), scopes)
}

async fn invalidate(broker: &TestBroker, token: Option<&str>, body: &str) -> (u16, Value) {
    let mut request = http()
        .post(broker.at("/admin/invalidate"))
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Alice's token with both notes scopes, and its grant id.
async fn alice_with_both(broker: &TestBroker) -> (String, String) {
    let client = register(broker, "Invalidation test").await;
    let code = login(broker, &client, &[("scope", "notes:read notes:write")]).await;
    let (_, body) = redeem(broker, &client, &code).await;
    let token = body["access_token"].as_str().unwrap().to_owned();
    let grant = claims(&token)["sid"].as_str().unwrap().to_owned();
    (token, grant)
}

/// What an operator (or another replica, on a shared store) does: the grant now
/// allows only `scopes`.
async fn narrow(broker: &TestBroker, grant_id: &str, scopes: &str) {
    let mut grant = broker
        .state
        .store
        .get_grant(grant_id)
        .await
        .unwrap()
        .unwrap();
    grant.scopes = Scopes::parse(scopes).unwrap();
    broker.state.store.put_grant(grant).await.unwrap();
}

#[actix_web::test]
async fn admin_invalidation_makes_the_next_request_reread_the_grant() {
    let broker = broker().await;
    let (token, grant) = alice_with_both(&broker).await;
    assert_eq!(
        scopes_seen(&broker, &token).await,
        (200, "notes:read notes:write".to_owned())
    );
    narrow(&broker, &grant, "notes:read").await;
    assert_eq!(
        scopes_seen(&broker, &token).await.1,
        "notes:read notes:write",
        "the standing is cached until invalidated or stale"
    );
    let (status, body) = invalidate(
        &broker,
        Some(ADMIN),
        &json!({"grant_id": grant}).to_string(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["invalidated"], json!({"grant_id": grant}));
    assert_eq!(
        scopes_seen(&broker, &token).await,
        (200, "notes:read".to_owned())
    );

    // By subject and by client, too.
    narrow(&broker, &grant, "notes:read notes:write").await;
    invalidate(&broker, Some(ADMIN), r#"{"subject": "bob"}"#).await;
    assert_eq!(
        scopes_seen(&broker, &token).await.1,
        "notes:read",
        "not bob's"
    );
    invalidate(&broker, Some(ADMIN), r#"{"subject": "alice"}"#).await;
    assert_eq!(
        scopes_seen(&broker, &token).await.1,
        "notes:read notes:write"
    );
    narrow(&broker, &grant, "notes:write").await;
    let client_id = claims(&token)["client_id"].as_str().unwrap().to_owned();
    invalidate(
        &broker,
        Some(ADMIN),
        &json!({"client_id": client_id}).to_string(),
    )
    .await;
    // The resource requires notes:read, which the grant no longer allows.
    assert_eq!(scopes_seen(&broker, &token).await.0, 403);
    let metrics = http()
        .get(broker.at("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"token_broker_invalidations_total{kind="subject",origin="local"} 2"#),
        "{metrics}"
    );
}

#[actix_web::test]
async fn without_an_invalidation_the_store_is_reread_after_the_ttl() {
    let broker = broker().await;
    let (token, grant) = alice_with_both(&broker).await;
    assert_eq!(
        scopes_seen(&broker, &token).await.1,
        "notes:read notes:write"
    );
    narrow(&broker, &grant, "notes:read").await;
    // Well inside the TTL: the broker's clock is real time plus the offset, so a check
    // one second before the TTL raced the wall clock on a loaded machine.
    broker.clock.advance(Duration::from_secs(290));
    assert_eq!(
        scopes_seen(&broker, &token).await.1,
        "notes:read notes:write"
    );
    broker.clock.advance(Duration::from_secs(10));
    assert_eq!(scopes_seen(&broker, &token).await.1, "notes:read");
    // A revocation recorded elsewhere (another replica) shows the same way.
    broker
        .state
        .store
        .revoke_grant(&grant, broker.clock.unix())
        .await
        .unwrap();
    assert_eq!(scopes_seen(&broker, &token).await.0, 200);
    broker.clock.advance(Duration::from_secs(300));
    assert_eq!(scopes_seen(&broker, &token).await.0, 401);
}

#[actix_web::test]
async fn invalidating_a_subject_drops_what_was_exchanged_for_it() {
    let broker = broker().await;
    let subject = alice(&broker).await;
    let before = broker.idp.calls("token").await;
    let (status, first) = exchange(&broker, CALLER, &subject, &[]).await;
    assert_eq!(status, 200, "{first}");
    exchange(&broker, CALLER, &subject, &[]).await;
    assert_eq!(broker.idp.calls("token").await, before + 1, "cached");
    // Another client's invalidation leaves alice's entry alone.
    invalidate(&broker, Some(ADMIN), r#"{"client_id": "someone-else"}"#).await;
    exchange(&broker, CALLER, &subject, &[]).await;
    assert_eq!(broker.idp.calls("token").await, before + 1);
    invalidate(&broker, Some(ADMIN), r#"{"subject": "alice"}"#).await;
    let (status, _) = exchange(&broker, CALLER, &subject, &[]).await;
    assert_eq!(status, 200);
    assert_eq!(broker.idp.calls("token").await, before + 2, "asked anew");
}

#[actix_web::test]
async fn the_admin_api_refuses_and_changes_nothing() {
    let broker = broker().await;
    let (token, grant) = alice_with_both(&broker).await;
    assert_eq!(
        scopes_seen(&broker, &token).await.1,
        "notes:read notes:write"
    );
    narrow(&broker, &grant, "notes:read").await;
    let everything = r#"{"all": true}"#;

    let (status, body) = invalidate(&broker, None, everything).await;
    assert_eq!(status, 401, "{body}");
    let (status, body) = invalidate(
        &broker,
        Some("wrong-token-0123456789abcdef0123456789"),
        everything,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_token"))
    );
    for bad in [
        "{not json",
        "[]",
        r#"{"subject": ""}"#,
        r#"{"subject": "alice", "client_id": "c"}"#,
        r#"{"all": false}"#,
        r#"{"everyone": true}"#,
    ] {
        let (status, body) = invalidate(&broker, Some(ADMIN), bad).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_request")),
            "{bad}: {body}"
        );
    }
    let oversized = json!({"subject": "a".repeat(70_000)}).to_string();
    assert_eq!(invalidate(&broker, Some(ADMIN), &oversized).await.0, 413);
    let get = http()
        .get(broker.at("/admin/invalidate"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 405);
    assert_eq!(
        scopes_seen(&broker, &token).await.1,
        "notes:read notes:write",
        "nothing was invalidated"
    );
    assert_eq!(invalidate(&broker, Some(ADMIN), everything).await.0, 200);
    assert_eq!(scopes_seen(&broker, &token).await.1, "notes:read");
}

#[actix_web::test]
async fn without_an_admin_token_there_is_no_admin_api() {
    let broker = TestBroker::start_with(&config_text(), |_| {}).await;
    let (status, body) = invalidate(&broker, Some(ADMIN), r#"{"all": true}"#).await;
    assert_eq!(status, 404, "{body}");
}
