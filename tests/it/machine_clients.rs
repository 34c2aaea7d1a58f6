//! Machine clients (the MCP OAuth client-credentials extension): `[[clients]]` and
//! registered confidential clients get access tokens for themselves with
//! `grant_type=client_credentials`, authenticating with a secret or with a client
//! assertion (`private_key_jwt`, RFC 7523 §2.2). Every refusal of a client assertion is
//! `invalid_client` (401) and issues nothing; the tokens work at forward-auth and
//! through the gateway like any other, and revoking their grant stops them.

use std::net::TcpListener;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpResponse, HttpServer, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use token_broker::tokens::keypair::{KeyPair, SigningAlg};

use crate::support::{TestBroker, config_text, http};

pub(crate) const RESOURCE: &str = "http://127.0.0.1:9/mcp";
const ISSUER: &str = "http://127.0.0.1:9";
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const BOT_SECRET: &str = "ci-bot-secret-0123456789";

/// `[[clients]]`: ci-bot with a secret, key-bot with `key`'s public JWK, code-bot
/// that did not get the client_credentials grant.
fn clients(key: &KeyPair) -> String {
    let jwks = json!({ "keys": [key.jwk] }).to_string();
    format!(
        r#"
[[clients]]
client_id = "ci-bot"
client_secret = "{BOT_SECRET}"
resources = ["{RESOURCE}"]
scopes = ["notes:read"]

[[clients]]
client_id = "key-bot"
jwks = '{jwks}'
resources = ["{RESOURCE}"]
scopes = ["notes:read", "notes:write"]

[[clients]]
client_id = "code-bot"
client_secret = "{BOT_SECRET}"
grant_types = ["authorization_code"]
redirect_uris = ["http://127.0.0.1:4713/callback"]
resources = ["{RESOURCE}"]
scopes = ["notes:read"]
"#
    )
}

struct Rig {
    broker: TestBroker,
    key: KeyPair,
}

async fn rig() -> Rig {
    let key = KeyPair::generate(SigningAlg::Es256).unwrap();
    let text = config_text() + &clients(&key);
    let broker = TestBroker::start_with(&text, |_| {}).await;
    Rig { broker, key }
}

fn jti() -> String {
    use rand::Rng;
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Good claims for `client`, to change one at a time.
pub(crate) fn claims(broker: &TestBroker, client: &str) -> Value {
    let now = broker.clock.unix();
    json!({
        "iss": client, "sub": client, "aud": ISSUER,
        "iat": now, "exp": now + 60, "jti": jti(),
    })
}

fn sign(key: &KeyPair, claims: &Value) -> String {
    jsonwebtoken::encode(&key.header("JWT"), claims, key.encoding()).unwrap()
}

/// `POST /oauth/token` with `form`, optionally with Basic credentials.
async fn token(
    broker: &TestBroker,
    basic: Option<(&str, &str)>,
    form: &[(&str, &str)],
) -> (u16, Value, Option<String>) {
    let mut request = http().post(broker.at("/oauth/token")).form(form);
    if let Some((id, secret)) = basic {
        request = request.basic_auth(id, Some(secret));
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, response.json().await.unwrap(), challenge)
}

/// client_credentials with `assertion` (which names the client).
pub(crate) async fn with_assertion(broker: &TestBroker, assertion: &str) -> (u16, Value) {
    let (status, body, _) = token(
        broker,
        None,
        &[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", assertion),
            ("resource", RESOURCE),
        ],
    )
    .await;
    (status, body)
}

fn payload(token: &str) -> Value {
    let part = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

pub(crate) async fn forward(broker: &TestBroker, token: &str) -> reqwest::Response {
    http()
        .get(broker.at("/auth/verify"))
        .header("X-Original-Method", "POST")
        .header("X-Original-URI", "/mcp")
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

/// Asserts a refusal is `invalid_client` with 401, for the reason `why` names (a
/// part of its description).
pub(crate) fn refused_client(answer: (u16, Value), why: &str) {
    assert_eq!(answer.0, 401, "{why}: {}", answer.1);
    assert_eq!(answer.1["error"], "invalid_client", "{why}");
    let description = answer.1["error_description"].as_str().unwrap_or_default();
    assert!(description.contains(why), "{why}: {description}");
    assert!(answer.1.get("access_token").is_none());
}

#[actix_web::test]
async fn a_configured_client_with_a_secret_gets_a_token_for_itself_that_forward_auth_accepts() {
    let rig = rig().await;
    let broker = &rig.broker;
    let (status, body, _) = token(
        broker,
        Some(("ci-bot", BOT_SECRET)),
        &[("grant_type", "client_credentials"), ("resource", RESOURCE)],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "notes:read");
    assert!(
        body.get("refresh_token").is_none(),
        "no refresh token: {body}"
    );
    let access = body["access_token"].as_str().unwrap();
    let claims = payload(access);
    assert_eq!(claims["sub"], "ci-bot");
    assert_eq!(claims["client_id"], "ci-bot");
    assert_eq!(claims["aud"], RESOURCE);

    let allowed = forward(broker, access).await;
    assert_eq!(allowed.status(), 200);
    assert_eq!(allowed.headers()["x-auth-subject"], "ci-bot");
    assert_eq!(allowed.headers()["x-auth-client-id"], "ci-bot");

    // client_secret_post works the same; asking for more than the ceiling narrows.
    let (status, body, _) = token(
        broker,
        None,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "ci-bot"),
            ("client_secret", BOT_SECRET),
            ("resource", RESOURCE),
            ("scope", "notes:read notes:write"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "notes:read");

    // Revoking the token revokes its grant: forward-auth refuses it from then on.
    let revoked = http()
        .post(broker.at("/oauth/revoke"))
        .basic_auth("ci-bot", Some(BOT_SECRET))
        .form(&[("token", access)])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    assert_eq!(forward(broker, access).await.status(), 401);
}

#[actix_web::test]
async fn a_wrong_secret_is_invalid_client_with_a_basic_challenge() {
    let rig = rig().await;
    let (status, body, challenge) = token(
        &rig.broker,
        Some(("ci-bot", "not-the-secret-at-all")),
        &[("grant_type", "client_credentials"), ("resource", RESOURCE)],
    )
    .await;
    refused_client((status, body), "authentication failed");
    assert!(challenge.unwrap().starts_with("Basic"));
}

#[actix_web::test]
async fn a_client_assertion_gets_a_token_once_and_its_replay_is_refused() {
    let rig = rig().await;
    let assertion = sign(&rig.key, &claims(&rig.broker, "key-bot"));
    let (status, body) = with_assertion(&rig.broker, &assertion).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "notes:read notes:write");
    assert_eq!(
        payload(body["access_token"].as_str().unwrap())["sub"],
        "key-bot"
    );
    refused_client(
        with_assertion(&rig.broker, &assertion).await,
        "already used",
    );
    // The token endpoint's address is an audience too (RFC 7523 §3).
    let mut to_endpoint = claims(&rig.broker, "key-bot");
    to_endpoint["aud"] = json!(format!("{ISSUER}/oauth/token"));
    let (status, body) = with_assertion(&rig.broker, &sign(&rig.key, &to_endpoint)).await;
    assert_eq!(status, 200, "{body}");
}

/// One changed claim of key-bot's assertion, which must then be refused.
async fn refused_with(change: impl FnOnce(&mut Value, u64), why: &str) {
    let rig = rig().await;
    let mut claims = claims(&rig.broker, "key-bot");
    change(&mut claims, rig.broker.clock.unix());
    refused_client(
        with_assertion(&rig.broker, &sign(&rig.key, &claims)).await,
        why,
    );
}

#[actix_web::test]
async fn an_assertion_for_another_audience_is_refused() {
    refused_with(
        |c, _| c["aud"] = json!("https://elsewhere.example"),
        "aud names neither",
    )
    .await;
}

#[actix_web::test]
async fn an_expired_assertion_is_refused() {
    refused_with(|c, now| c["exp"] = json!(now - 120), "expired").await;
}

#[actix_web::test]
async fn an_assertion_valid_for_too_long_is_refused() {
    refused_with(|c, now| c["exp"] = json!(now + 3600), "too long").await;
}

#[actix_web::test]
async fn an_assertion_without_jti_is_refused() {
    refused_with(
        |c, _| {
            c.as_object_mut()
                .unwrap()
                .remove("jti")
                .map(drop)
                .unwrap_or(())
        },
        "no jti",
    )
    .await;
}

#[actix_web::test]
async fn an_assertion_whose_issuer_is_not_the_client_is_refused() {
    refused_with(|c, _| c["iss"] = json!("ci-bot"), "iss is not the client").await;
}

#[actix_web::test]
async fn an_assertion_signed_by_another_key_is_refused() {
    let rig = rig().await;
    let mut other = KeyPair::generate(SigningAlg::Es256).unwrap();
    // Same kid, other key: the signature must not verify.
    other.kid = rig.key.kid.clone();
    let assertion = sign(&other, &claims(&rig.broker, "key-bot"));
    refused_client(
        with_assertion(&rig.broker, &assertion).await,
        "signature does not verify",
    );
}

#[actix_web::test]
async fn an_assertion_with_an_unknown_kid_is_refused() {
    let rig = rig().await;
    let other = KeyPair::generate(SigningAlg::Es256).unwrap();
    let assertion = sign(&other, &claims(&rig.broker, "key-bot"));
    refused_client(
        with_assertion(&rig.broker, &assertion).await,
        "does not publish",
    );
}

#[actix_web::test]
async fn an_unsigned_assertion_is_refused() {
    let rig = rig().await;
    let body = URL_SAFE_NO_PAD.encode(claims(&rig.broker, "key-bot").to_string());
    let none = format!("{}.{body}.", URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#));
    refused_client(
        with_assertion(&rig.broker, &none).await,
        "algorithm is not allowed",
    );
}

#[actix_web::test]
async fn an_hmac_assertion_keyed_with_the_public_key_is_refused() {
    let rig = rig().await;
    let public = serde_json::to_vec(&rig.key.jwk).unwrap();
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(rig.key.kid.clone());
    let forged = jsonwebtoken::encode(
        &header,
        &claims(&rig.broker, "key-bot"),
        &EncodingKey::from_secret(&public),
    )
    .unwrap();
    refused_client(
        with_assertion(&rig.broker, &forged).await,
        "algorithm is not allowed",
    );
}

#[actix_web::test]
async fn an_assertion_from_a_client_without_keys_and_a_secret_for_one_with_keys_are_refused() {
    let rig = rig().await;
    // ci-bot has a secret, no keys.
    let assertion = sign(&rig.key, &claims(&rig.broker, "ci-bot"));
    let (status, body, _) = token(
        &rig.broker,
        None,
        &[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", &assertion),
            ("resource", RESOURCE),
        ],
    )
    .await;
    refused_client((status, body), "has no keys");
    let (status, body, _) = token(
        &rig.broker,
        Some(("key-bot", BOT_SECRET)),
        &[("grant_type", "client_credentials"), ("resource", RESOURCE)],
    )
    .await;
    refused_client((status, body), "private_key_jwt");
}

#[actix_web::test]
async fn another_assertion_type_is_refused() {
    let rig = rig().await;
    let assertion = sign(&rig.key, &claims(&rig.broker, "key-bot"));
    let (status, body, _) = token(
        &rig.broker,
        None,
        &[
            ("grant_type", "client_credentials"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:saml2-bearer",
            ),
            ("client_assertion", &assertion),
            ("resource", RESOURCE),
        ],
    )
    .await;
    refused_client((status, body), "client_assertion_type");
}

#[actix_web::test]
async fn the_grant_needs_one_allowed_resource_granted_scopes_and_the_grant_type() {
    let rig = rig().await;
    let broker = &rig.broker;
    let bot = Some(("ci-bot", BOT_SECRET));
    let grant = ("grant_type", "client_credentials");
    type Case<'a> = (
        &'a [(&'a str, &'a str)],
        Option<(&'a str, &'a str)>,
        u16,
        &'a str,
    );
    let cases: [Case<'_>; 4] = [
        (&[grant], bot, 400, "invalid_target"),
        (
            &[grant, ("resource", "http://127.0.0.1:9/other")],
            bot,
            400,
            "invalid_target",
        ),
        (
            &[grant, ("resource", RESOURCE), ("scope", "notes:write")],
            bot,
            400,
            "invalid_scope",
        ),
        (
            &[grant, ("resource", RESOURCE)],
            Some(("code-bot", BOT_SECRET)),
            400,
            "unauthorized_client",
        ),
    ];
    for (form, basic, status, error) in cases {
        let (got, body, _) = token(broker, basic, form).await;
        assert_eq!(
            (got, body["error"].as_str()),
            (status, Some(error)),
            "{form:?}: {body}"
        );
    }
}

#[actix_web::test]
async fn the_metadata_lists_the_grant_the_methods_and_the_algorithms() {
    let rig = rig().await;
    let metadata: Value = http()
        .get(rig.broker.at("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let has = |field: &str, value: &str| {
        metadata[field]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v == value)
    };
    assert!(has("grant_types_supported", "client_credentials"));
    assert!(has(
        "token_endpoint_auth_methods_supported",
        "private_key_jwt"
    ));
    assert!(has(
        "token_endpoint_auth_methods_supported",
        "client_secret_basic"
    ));
    assert!(has(
        "token_endpoint_auth_signing_alg_values_supported",
        "ES256"
    ));
    assert!(!has(
        "token_endpoint_auth_signing_alg_values_supported",
        "algorithm is not allowed"
    ));
    assert!(has(
        "introspection_endpoint_auth_methods_supported",
        "private_key_jwt"
    ));
}

/// A JWKS server for registered clients: serves `keys`, counts fetches.
struct KeyHost {
    url: String,
    keys: Arc<Mutex<Value>>,
    fetches: Arc<AtomicU64>,
}

fn key_host(first: &KeyPair) -> KeyHost {
    let keys = Arc::new(Mutex::new(json!({ "keys": [first.jwk] })));
    let fetches = Arc::new(AtomicU64::new(0));
    let (served, counted) = (keys.clone(), fetches.clone());
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
    let server = HttpServer::new(move || {
        let (served, counted) = (served.clone(), counted.clone());
        App::new().route(
            "/jwks.json",
            web::get().to(move || {
                let (served, counted) = (served.clone(), counted.clone());
                async move {
                    counted.fetch_add(1, Ordering::SeqCst);
                    let body = served.lock().unwrap().clone();
                    HttpResponse::Ok().json(body)
                }
            }),
        )
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .unwrap()
    .run();
    actix_web::rt::spawn(server);
    KeyHost { url, keys, fetches }
}

#[actix_web::test]
async fn a_registered_private_key_jwt_client_is_checked_against_its_jwks_uri_refetched_for_a_new_kid()
 {
    let first = KeyPair::generate(SigningAlg::Es256).unwrap();
    let host = key_host(&first);
    let text = config_text() + "\n[registration]\nmetadata_documents_allow_loopback = true\n";
    let broker = TestBroker::start_with(&text, |_| {}).await;
    let registered = http()
        .post(broker.at("/oauth/register"))
        .json(&json!({
            "client_name": "nightly job",
            "grant_types": ["client_credentials"],
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks_uri": host.url,
            "scope": "notes:read",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 201);
    let registered: Value = registered.json().await.unwrap();
    assert!(registered.get("client_secret").is_none(), "{registered}");
    assert_eq!(registered["token_endpoint_auth_method"], "private_key_jwt");
    let id = registered["client_id"].as_str().unwrap().to_owned();

    let (status, body) = with_assertion(&broker, &sign(&first, &claims(&broker, &id))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "notes:read");
    let (status, _) = with_assertion(&broker, &sign(&first, &claims(&broker, &id))).await;
    assert_eq!(status, 200);
    assert_eq!(
        host.fetches.load(Ordering::SeqCst),
        1,
        "the key set is cached"
    );

    // The client rotates to a new key: an unknown kid fetches the set again, but at
    // most once per refetch interval.
    let second = KeyPair::generate(SigningAlg::Rs256).unwrap();
    *host.keys.lock().unwrap() = json!({ "keys": [first.jwk, second.jwk] });
    refused_client(
        with_assertion(&broker, &sign(&second, &claims(&broker, &id))).await,
        "does not publish",
    );
    assert_eq!(host.fetches.load(Ordering::SeqCst), 1);
    broker.clock.advance(Duration::from_secs(61));
    let (status, body) = with_assertion(&broker, &sign(&second, &claims(&broker, &id))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(host.fetches.load(Ordering::SeqCst), 2);

    // It introspects its own token with an assertion too.
    let access = body["access_token"].as_str().unwrap();
    let introspected: Value = http()
        .post(broker.at("/oauth/introspect"))
        .form(&[
            ("token", access),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", &sign(&second, &claims(&broker, &id))),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(introspected["active"], true, "{introspected}");
    assert_eq!(introspected["sub"], id);
}

#[actix_web::test]
async fn a_registered_client_keeps_its_keys_to_itself_and_public_clients_get_no_machine_grant() {
    let broker = TestBroker::start().await;
    let key = KeyPair::generate(SigningAlg::Es256).unwrap();
    let mut private = serde_json::to_value(&key.jwk).unwrap();
    private["d"] = json!("AAAA");
    for body in [
        json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "private_key_jwt",
               "jwks": {"keys": [private]}}),
        json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "none"}),
        json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "private_key_jwt"}),
    ] {
        let answer = http()
            .post(broker.at("/oauth/register"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 400, "{body}");
        let answer: Value = answer.json().await.unwrap();
        assert_eq!(answer["error"], "invalid_client_metadata", "{body}");
    }
}
