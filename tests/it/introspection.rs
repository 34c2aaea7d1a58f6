//! `POST /oauth/introspect` (RFC 7662): confidential callers only; any access token
//! described only to the resource servers of `[introspection] clients`; anyone else,
//! and a resource server asking about a refresh token, learns only of its own
//! tokens (§4) — the rest is `{"active": false}`.

use serde_json::{Value, json};

use crate::login_consent::{REDIRECT, register};
use crate::login_flow::{VERIFIER, login, redeem, token};
use crate::support::{BaseUrl, TestBroker, config_text, http};

/// A resource server configured with a secret, allowed to introspect any token.
const SERVER: (&str, &str) = ("notes-mcp", "notes-mcp-secret-0123456789");

async fn broker() -> TestBroker {
    let text = format!(
        "{}\n[[exchange.clients]]\nclient_id = \"{}\"\nclient_secret = \"{}\"\n\n\
         [introspection]\nclients = [\"{}\"]\n",
        config_text(),
        SERVER.0,
        SERVER.1,
        SERVER.0
    );
    TestBroker::start_live(&text, Default::default(), |_| {}).await
}

async fn introspect(broker: &TestBroker, (id, secret): (&str, &str), token: &str) -> Value {
    let response = http()
        .post(broker.at("/oauth/introspect"))
        .basic_auth(id, Some(secret))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// A confidential client registered by anyone, with its secret.
async fn register_confidential(broker: &(impl BaseUrl + ?Sized)) -> (String, String) {
    let body: Value = http()
        .post(broker.at("/oauth/register"))
        .json(&json!({
            "client_name": "Someone",
            "redirect_uris": [REDIRECT],
            "grant_types": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_method": "client_secret_basic",
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    (
        body["client_id"].as_str().unwrap().to_owned(),
        body["client_secret"].as_str().unwrap().to_owned(),
    )
}

/// A public client's login: its access and refresh tokens.
async fn alices_tokens(broker: &TestBroker) -> (String, String, String) {
    let public = register(broker, "Public").await;
    let code = login(broker, &public, &[]).await;
    let (status, body) = redeem(broker, &public, &code).await;
    assert_eq!(status, 200, "{body}");
    (
        public,
        body["access_token"].as_str().unwrap().to_owned(),
        body["refresh_token"].as_str().unwrap().to_owned(),
    )
}

#[actix_web::test]
async fn a_self_registered_client_learns_nothing_of_another_clients_tokens() {
    let broker = broker().await;
    let (public, access, refresh) = alices_tokens(&broker).await;
    let refused = http()
        .post(broker.at("/oauth/introspect"))
        .form(&[("client_id", public.as_str()), ("token", &access)])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401, "public clients may not introspect");
    let (id, secret) = register_confidential(&broker).await;
    for token in [&access, &refresh] {
        assert_eq!(
            introspect(&broker, (&id, &secret), token).await,
            json!({"active": false})
        );
    }
}

#[actix_web::test]
async fn a_configured_resource_server_learns_of_access_tokens_but_not_refresh_tokens() {
    let broker = broker().await;
    let (public, access, refresh) = alices_tokens(&broker).await;
    let active = introspect(&broker, SERVER, &access).await;
    assert_eq!(active["active"], true, "{active}");
    assert_eq!(active["sub"], "alice");
    assert_eq!(active["client_id"], public.as_str());
    assert_eq!(active["scope"], "notes:read");
    assert_eq!(
        introspect(&broker, SERVER, &refresh).await,
        json!({"active": false})
    );
    assert_eq!(
        introspect(&broker, SERVER, "garbage").await,
        json!({"active": false})
    );
    let wrong = http()
        .post(broker.at("/oauth/introspect"))
        .basic_auth(SERVER.0, Some("not-the-secret-0123456789"))
        .form(&[("token", access.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
}

#[actix_web::test]
async fn a_confidential_client_learns_of_its_own_tokens() {
    let broker = broker().await;
    let (id, secret) = register_confidential(&broker).await;
    let code = login(&broker, &id, &[]).await;
    let (status, body) = token(
        &broker,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", &id),
            ("client_secret", &secret),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    for (field, kind) in [
        ("access_token", "Bearer"),
        ("refresh_token", "refresh_token"),
    ] {
        let own = introspect(&broker, (&id, &secret), body[field].as_str().unwrap()).await;
        assert_eq!(own["active"], true, "{field}: {own}");
        assert_eq!(own["token_type"], kind);
        assert_eq!(own["client_id"], id.as_str());
    }
}

#[test]
fn introspection_clients_must_be_named_once() {
    let text = format!(
        "{}\n[introspection]\nclients = [\"rs\", \"rs\", \"\"]\n",
        config_text()
    );
    let error = token_broker::config::load_str(&text, &Default::default())
        .unwrap_err()
        .to_string();
    assert!(error.contains("introspection.clients"), "{error}");
}
