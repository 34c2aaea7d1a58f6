//! `tokens.mode = "passthrough"`: the client holds the provider's access token, and
//! the broker still answers for it — revoking it (RFC 7009) refuses it at
//! `/auth/verify` on the next request, on every replica, and kills the grant's
//! refresh token (and the broker asks the provider to revoke its tokens); it acts for
//! the broker's client that logged in, so per-client allow-lists apply; and the token
//! response names the scope the token carries.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use token_broker::domain::scope::Scopes;
use token_broker::store::{ClientOrigin, StoredClient};

use crate::login_consent::{REDIRECT, register};
use crate::login_flow::{login, redeem, refresh, verify};
use crate::replicas::{Redis, Replicas, Shared, until_refused};
use crate::support::{BaseUrl, TestBroker, TestDevIdp, config_text, http};

const PASSTHROUGH: &str = "\n[tokens]\nmode = \"passthrough\"\n";

async fn broker(extra: &str) -> TestBroker {
    let text = format!("{}{extra}{PASSTHROUGH}", config_text());
    TestBroker::start_live(&text, Default::default(), |_| {}).await
}

/// A client's login in passthrough mode: the token response.
async fn logged_in(broker: &(impl BaseUrl + ?Sized), client: &str) -> Value {
    let code = login(broker, client, &[]).await;
    let (status, body) = redeem(broker, client, &code).await;
    assert_eq!(status, 200, "{body}");
    body
}

fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

async fn revoke(broker: &(impl BaseUrl + ?Sized), client: &str, token: &str) {
    let response = http()
        .post(broker.at("/oauth/revoke"))
        .form(&[("client_id", client), ("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[actix_web::test]
async fn a_revoked_provider_token_is_refused_at_once_and_its_refresh_token_dies() {
    let broker = broker("").await;
    let client = register(&broker, "Passthrough").await;
    let body = logged_in(&broker, &client).await;
    let access = body["access_token"].as_str().unwrap();
    assert_eq!(claims(access)["iss"], broker.idp.url.as_str());
    // Verified once: from now on the verified-token cache knows it.
    assert_eq!(verify(&broker, access).await.0, 200);
    // Another client cannot revoke it.
    let other = register(&broker, "Other").await;
    revoke(&broker, &other, access).await;
    assert_eq!(verify(&broker, access).await.0, 200);
    assert!(broker.idp.idp.verify_access(access).is_some());
    revoke(&broker, &client, access).await;
    assert_eq!(verify(&broker, access).await.0, 401);
    // The broker asks the provider to revoke its tokens too, in the background.
    for _ in 0..100 {
        if broker.idp.idp.verify_access(access).is_none() {
            break;
        }
        actix_web::rt::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        broker.idp.idp.verify_access(access).is_none(),
        "the provider still accepts its token"
    );
    assert_eq!(
        broker.idp.calls("revoke").await,
        2,
        "refresh and access token"
    );
    let (status, refused) =
        refresh(&broker, &client, body["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused["error"], "invalid_grant");
    let metrics = http()
        .get(broker.at("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"auth_failures_total{reason="revoked"} 1"#),
        "{metrics}"
    );
}

#[actix_web::test]
async fn a_provider_token_revoked_on_one_replica_is_refused_by_the_other() {
    let redis = Redis::start();
    let idp = TestDevIdp::start().await;
    let replicas = Replicas::start_with(&idp, Shared::Redis(redis.url()), PASSTHROUGH).await;
    let (a, b) = (replicas.a(), replicas.b());
    let client = register(a.as_str(), "Replicated passthrough").await;
    let body = logged_in(a.as_str(), &client).await;
    let access = body["access_token"].as_str().unwrap();
    assert_eq!(claims(access)["iss"], idp.url.as_str());
    assert_eq!(
        verify(b.as_str(), access).await.0,
        200,
        "{}",
        replicas.logs()
    );
    revoke(a.as_str(), &client, access).await;
    assert_eq!(verify(a.as_str(), access).await.0, 401);
    until_refused(&b, access).await;
}

#[actix_web::test]
async fn a_provider_token_acts_for_the_client_that_logged_in() {
    let broker = broker(
        "\n[[resources.tools]]\nname = \"notes_*\"\nscopes = [\"notes:read\"]\n\n\
         [[resources.clients]]\nclient_id = \"limited-client\"\ntools = [\"notes_read\"]\n",
    )
    .await;
    // A client whose id the configuration can name ahead of time.
    broker
        .state
        .store
        .put_client(StoredClient {
            client_id: "limited-client".to_owned(),
            secret_hash: None,
            metadata: json!({
                "client_name": "Limited",
                "redirect_uris": [REDIRECT],
                "grant_types": ["authorization_code", "refresh_token"],
                "token_endpoint_auth_method": "none",
            }),
            fingerprint: [0; 32],
            issued_at: broker.clock.unix(),
            last_used_at: None,
            origin: ClientOrigin::Local,
        })
        .await
        .unwrap();
    let body = logged_in(&broker, "limited-client").await;
    let access = body["access_token"].as_str().unwrap();
    assert_eq!(
        claims(access)["client_id"],
        "token-broker",
        "the provider's own client"
    );
    let call = |tool: &'static str| {
        http()
            .post(broker.at("/auth/verify"))
            .header("x-original-uri", "/mcp")
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", "tools/call")
            .header("mcp-name", tool)
            .bearer_auth(access)
            .send()
    };
    let allowed = call("notes_read").await.unwrap();
    assert_eq!(allowed.status(), 200);
    assert_eq!(allowed.headers()["x-auth-client-id"], "limited-client");
    let refused = call("notes_list").await.unwrap();
    assert_eq!(refused.status(), 403);
    let challenge = refused.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.contains(r#"error="access_denied""#),
        "{challenge}"
    );
}

#[actix_web::test]
async fn the_token_response_names_the_scope_the_provider_token_carries() {
    let broker = broker("").await;
    let client = register(&broker, "Scopes").await;
    let body = logged_in(&broker, &client).await;
    let carried = Scopes::parse(
        claims(body["access_token"].as_str().unwrap())["scope"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    // The broker asks the provider for `openid` too, which the client did not ask for.
    assert!(carried.contains("openid"), "{carried}");
    assert_eq!(body["scope"], carried.to_string());
    let (status, refreshed) =
        refresh(&broker, &client, body["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, 200, "{refreshed}");
    assert_eq!(refreshed["scope"], carried.to_string());
}

#[actix_web::test]
async fn a_refresh_refused_while_the_provider_is_down_leaves_the_token_unspent_past_the_grace() {
    let broker = broker("").await;
    let client = register(&broker, "Outage").await;
    let body = logged_in(&broker, &client).await;
    let token = body["refresh_token"].as_str().unwrap();
    // The provider's access token has expired, and its token endpoint fails: in
    // passthrough mode there is nothing to hand the client.
    broker.clock.advance(std::time::Duration::from_secs(301));
    broker
        .idp
        .fault(json!({"endpoint": "token", "status": 503, "count": 1000}))
        .await;
    let (status, refused) = refresh(&broker, &client, token).await;
    assert_eq!(status, 503, "{refused}");
    assert_eq!(refused["error"], "temporarily_unavailable");

    // The outage outlasts refresh.reuse_grace (10 s). The client was told nothing
    // changed, so the token it holds is still its newest: not a replay.
    broker.clock.advance(std::time::Duration::from_secs(60));
    broker.idp.reset().await;
    let (status, refreshed) = refresh(&broker, &client, token).await;
    assert_eq!(status, 200, "{refreshed}");
    let access = refreshed["access_token"].as_str().unwrap();
    assert_eq!(verify(&broker, access).await.0, 200);
    // And the chain goes on from the new token.
    let (status, next) = refresh(
        &broker,
        &client,
        refreshed["refresh_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{next}");
}
