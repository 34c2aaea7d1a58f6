//! A machine client whose key is P-521 signs its client assertions with ES512
//! (`private_key_jwt`, RFC 7523 §2.2): its JWKS is accepted, its assertion gets a
//! token that forward-auth accepts, and an assertion by another P-521 key under the
//! same `kid` is refused.

use serde_json::json;

use crate::machine_clients::{RESOURCE, claims, forward, refused_client, with_assertion};
use crate::support::{TestBroker, config_text};

#[path = "../../src/upstream/jws/es512.rs"]
mod es512;

use self::es512::Es512;

async fn broker(key: &Es512) -> TestBroker {
    let text = format!(
        "{}\n[[clients]]\nclient_id = \"p521-bot\"\njwks = '{}'\nresources = [\"{RESOURCE}\"]\nscopes = [\"notes:read\"]\n",
        config_text(),
        key.jwks()
    );
    TestBroker::start_with(&text, |_| {}).await
}

#[actix_web::test]
async fn an_es512_client_assertion_gets_a_token_and_another_keys_does_not() {
    let key = Es512::generate("p521-bot-key");
    let broker = broker(&key).await;

    let assertion = key.sign(json!({"typ": "JWT"}), &claims(&broker, "p521-bot"));
    let (status, body) = with_assertion(&broker, &assertion).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "notes:read");
    let token = body["access_token"].as_str().unwrap();
    assert_eq!(forward(&broker, token).await.status(), 200);

    let other = Es512::generate("p521-bot-key");
    let forged = other.sign(json!({"typ": "JWT"}), &claims(&broker, "p521-bot"));
    refused_client(
        with_assertion(&broker, &forged).await,
        "signature does not verify",
    );
}
