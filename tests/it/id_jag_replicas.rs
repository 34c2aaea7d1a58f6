//! The ID-JAG grant on two replicas sharing Redis: an ID-JAG presented to one is
//! spent for the other too (the replay store is Redis itself).

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use token_broker::store::{ClientOrigin, RedisStore, Sealer, Store as _, StoredClient};

use crate::id_jag::{JWT_BEARER, enterprise};
use crate::replicas::{Redis, Replicas, Shared};
use crate::support::{TestDevIdp, http};

#[actix_web::test]
async fn an_id_jag_is_honoured_once_across_replicas_on_redis() {
    let redis = Redis::start();
    let idp = TestDevIdp::start().await;
    let extra = enterprise(&idp.url, r#""demo-agent""#);
    let replicas = Replicas::start_with(&idp, Shared::Redis(redis.url()), &extra).await;
    // The client, registered in the replicas' store (their prefix and store key).
    let sealer = Sealer::new(
        "k1",
        [("k1".to_owned(), zeroize::Zeroizing::new([7u8; 32]))],
    )
    .unwrap();
    let store = RedisStore::open(&redis.url(), "replicas:", sealer).unwrap();
    store
        .put_client(StoredClient {
            client_id: "demo-agent".into(),
            secret_hash: Some(Sha256::digest(b"demo-agent-secret").into()),
            metadata: json!({"token_endpoint_auth_method": "client_secret_basic"}),
            fingerprint: [0; 32],
            issued_at: idp.idp.clock.unix(),
            last_used_at: None,
            origin: ClientOrigin::Local,
        })
        .await
        .unwrap();
    let now = idp.idp.clock.unix();
    let assertion = idp
        .idp
        .sign(
            "oauth-id-jag+jwt",
            &json!({
                "iss": idp.url, "sub": "alice", "aud": replicas.a(), "client_id": "demo-agent",
                "jti": "once-across-replicas", "iat": now, "exp": now + 300,
                "resource": format!("{}/mcp", replicas.a()), "scope": "notes:read",
            }),
        )
        .unwrap();
    let assertion = assertion.as_str();
    let at = |base: String| async move {
        let response = http()
            .post(format!("{base}/oauth/token"))
            .basic_auth("demo-agent", Some("demo-agent-secret"))
            .form(&[("grant_type", JWT_BEARER), ("assertion", assertion)])
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json::<Value>().await.unwrap())
    };
    let (status, body) = at(replicas.a()).await;
    assert_eq!(status, 200, "{body}\n{}", replicas.logs());
    let (status, body) = at(replicas.b()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    assert_eq!(
        body["error_description"], "this ID-JAG was already used",
        "{body}"
    );
}
