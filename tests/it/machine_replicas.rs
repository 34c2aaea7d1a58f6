//! Client assertions on two replicas sharing Redis: an assertion (`private_key_jwt`)
//! accepted by one is spent for the other too (the replay store is Redis itself).

use serde_json::{Value, json};
use token_broker::store::{ClientOrigin, RedisStore, Sealer, Store as _, StoredClient};
use token_broker::tokens::keypair::{KeyPair, SigningAlg};

use crate::replicas::{Redis, Replicas, Shared};
use crate::support::{TestDevIdp, http};

#[actix_web::test]
async fn a_client_assertion_is_accepted_once_across_replicas_on_redis() {
    let redis = Redis::start();
    let idp = TestDevIdp::start().await;
    let replicas = Replicas::start_with(&idp, Shared::Redis(redis.url()), "").await;
    let key = KeyPair::generate(SigningAlg::Es256).unwrap();
    // A machine client registered with its keys, in the replicas' store.
    let sealer = Sealer::new(
        "k1",
        [("k1".to_owned(), zeroize::Zeroizing::new([7u8; 32]))],
    )
    .unwrap();
    let store = RedisStore::open(&redis.url(), "replicas:", sealer).unwrap();
    store
        .put_client(StoredClient {
            client_id: "nightly".into(),
            secret_hash: None,
            metadata: json!({
                "token_endpoint_auth_method": "private_key_jwt",
                "grant_types": ["client_credentials"],
                "jwks": {"keys": [key.jwk]},
                "scope": "notes:read",
            }),
            fingerprint: [0; 32],
            issued_at: idp.idp.clock.unix(),
            last_used_at: None,
            origin: ClientOrigin::Local,
        })
        .await
        .unwrap();
    let now = idp.idp.clock.unix();
    let claims = json!({
        "iss": "nightly", "sub": "nightly", "aud": replicas.a(),
        "jti": "once-across-replicas", "iat": now, "exp": now + 60,
    });
    let assertion = jsonwebtoken::encode(&key.header("JWT"), &claims, key.encoding()).unwrap();
    let resource = format!("{}/mcp", replicas.a());
    let at = |base: String| {
        let (assertion, resource) = (assertion.clone(), resource.clone());
        async move {
            let response = http()
                .post(format!("{base}/oauth/token"))
                .form(&[
                    ("grant_type", "client_credentials"),
                    (
                        "client_assertion_type",
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    ),
                    ("client_assertion", &assertion),
                    ("resource", &resource),
                ])
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    let (status, body) = at(replicas.a()).await;
    assert_eq!(status, 200, "{body}\n{}", replicas.logs());
    assert_eq!(body["scope"], "notes:read");
    let (status, body) = at(replicas.b()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client")),
        "{body}"
    );
    assert_eq!(
        body["error_description"], "this client assertion was already used",
        "{body}"
    );
}
