//! The ID-JAG grant (enterprise-managed authorization): an ID-JAG the dev IdP mints
//! for the broker, presented with `grant_type=...:jwt-bearer`, buys what a login buys;
//! every check refuses on its own with `invalid_grant` and issues nothing.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use token_broker::store::{ClientOrigin, StoredClient};

use crate::support::{TestBroker, TestDevIdp, UPSTREAM_PLACEHOLDER, config_text, http};

pub(crate) const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const ID_JAG: &str = "urn:ietf:params:oauth:token-type:id-jag";
const RESOURCE: &str = "http://127.0.0.1:9/mcp";
const BROKER_ISSUER: &str = "http://127.0.0.1:9";

pub(crate) fn enterprise(issuer: &str, clients: &str) -> String {
    format!(
        r#"
[[enterprise.issuers]]
issuer = "{issuer}"
clients = [{clients}]
max_scopes = ["notes:read", "notes:write"]
"#
    )
}

/// A broker trusting its upstream dev IdP's ID-JAGs for `demo-agent`, which is
/// registered at the broker as a confidential client with the same id and secret.
async fn start() -> TestBroker {
    let text = config_text() + &enterprise(UPSTREAM_PLACEHOLDER, r#""demo-agent""#);
    let broker = TestBroker::start_with(&text, |_| {}).await;
    confidential(&broker, "demo-agent", "demo-agent-secret").await;
    confidential(&broker, "other-agent", "other-agent-secret").await;
    broker
}

pub(crate) async fn confidential(broker: &TestBroker, id: &str, secret: &str) {
    broker
        .state
        .store
        .put_client(StoredClient {
            client_id: id.into(),
            secret_hash: Some(Sha256::digest(secret.as_bytes()).into()),
            metadata: json!({"token_endpoint_auth_method": "client_secret_basic"}),
            fingerprint: [0; 32],
            issued_at: broker.clock.unix(),
            last_used_at: None,
            origin: ClientOrigin::Local,
        })
        .await
        .unwrap();
}

/// An ID-JAG from `idp`'s token endpoint for alice, asked for by `demo-agent`.
async fn minted(idp: &TestDevIdp, scope: &str) -> String {
    let id_token = idp
        .idp
        .mint_id_token("alice", "demo-agent", None, "unused")
        .unwrap();
    let response = http()
        .post(format!("{}/token", idp.url))
        .basic_auth("demo-agent", Some("demo-agent-secret"))
        .form(&[
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:token-exchange",
            ),
            ("requested_token_type", ID_JAG),
            ("subject_token", &id_token),
            (
                "subject_token_type",
                "urn:ietf:params:oauth:token-type:id_token",
            ),
            ("audience", BROKER_ISSUER),
            ("resource", RESOURCE),
            ("scope", scope),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["issued_token_type"], ID_JAG);
    assert_eq!(body["token_type"], "N_A");
    body["access_token"].as_str().unwrap().to_owned()
}

/// The claims of a good ID-JAG from the upstream dev IdP, to change one at a time.
fn claims(broker: &TestBroker) -> Value {
    let now = broker.clock.unix();
    json!({
        "iss": broker.idp.url,
        "sub": "alice",
        "aud": BROKER_ISSUER,
        "client_id": "demo-agent",
        "jti": URL_SAFE_NO_PAD.encode(rand_bytes()),
        "iat": now,
        "exp": now + 300,
        "resource": RESOURCE,
        "scope": "notes:read notes:write",
    })
}

fn rand_bytes() -> [u8; 16] {
    Sha256::digest(format!("{:?}", std::time::Instant::now()).as_bytes())[..16]
        .try_into()
        .unwrap()
}

fn signed(broker: &TestBroker, claims: &Value) -> String {
    broker.idp.idp.sign("oauth-id-jag+jwt", claims).unwrap()
}

async fn present_as(
    broker: &TestBroker,
    client: (&str, &str),
    assertion: &str,
    scope: Option<&str>,
) -> (u16, Value) {
    let mut form = vec![("grant_type", JWT_BEARER), ("assertion", assertion)];
    if let Some(scope) = scope {
        form.push(("scope", scope));
    }
    let response = http()
        .post(broker.at("/oauth/token"))
        .basic_auth(client.0, Some(client.1))
        .form(&form)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

async fn present(broker: &TestBroker, assertion: &str) -> (u16, Value) {
    present_as(broker, ("demo-agent", "demo-agent-secret"), assertion, None).await
}

/// Asserts an `invalid_grant` refusal whose description mentions `why`.
async fn refused(broker: &TestBroker, assertion: &str, why: &str) {
    let (status, body) = present(broker, assertion).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_grant", "{body}");
    assert!(
        body["error_description"].as_str().unwrap().contains(why),
        "{body}"
    );
    assert!(body.get("access_token").is_none());
}

async fn verify(broker: &TestBroker, token: &str) -> u16 {
    http()
        .get(broker.at("/auth/verify"))
        .header("x-original-uri", "/mcp")
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[actix_web::test]
async fn an_id_jag_from_the_idp_buys_an_access_token_for_its_resource_and_a_revocable_grant() {
    let broker = start().await;
    let assertion = minted(&broker.idp, "notes:read").await;
    let (status, body) = present(&broker, &assertion).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "notes:read");
    assert!(body.get("refresh_token").is_none(), "{body}");
    let token = body["access_token"].as_str().unwrap();
    let resource = &broker.state.config.resources[0];
    let principal = broker.state.verifier.verify(token, resource).await.unwrap();
    assert_eq!(principal.subject, "alice");
    assert_eq!(principal.client_id.as_deref(), Some("demo-agent"));
    assert_eq!(verify(&broker, token).await, 200);
    assert!(principal.grant_id.is_some());
    // A grant like a login's: the client revoking its access token (RFC 7009) ends it.
    let revoked = http()
        .post(broker.at("/oauth/revoke"))
        .basic_auth("demo-agent", Some("demo-agent-secret"))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    assert_eq!(verify(&broker, token).await, 401);
}

#[actix_web::test]
async fn an_id_jag_is_honoured_once() {
    let broker = start().await;
    let assertion = minted(&broker.idp, "notes:read").await;
    assert_eq!(present(&broker, &assertion).await.0, 200);
    refused(&broker, &assertion, "already used").await;
}

#[actix_web::test]
async fn scopes_are_what_was_asked_carried_and_allowed_at_once() {
    let broker = start().await;
    let mut c = claims(&broker);
    c["scope"] = json!("notes:read notes:write admin");
    let client = ("demo-agent", "demo-agent-secret");
    let (status, body) = present_as(
        &broker,
        client,
        &signed(&broker, &c),
        Some("notes:write other"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "notes:write");
    c["jti"] = json!("another");
    c["scope"] = json!("admin");
    refused(&broker, &signed(&broker, &c), "nothing the ID-JAG grants").await;
}

#[actix_web::test]
async fn the_header_must_be_typed_and_signed_with_an_allowed_algorithm() {
    let broker = start().await;
    let c = claims(&broker);
    refused(&broker, &broker.idp.idp.sign("JWT", &c).unwrap(), "typed").await;
    let payload = URL_SAFE_NO_PAD.encode(c.to_string());
    let none = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"oauth-id-jag+jwt"}"#);
    refused(&broker, &format!("{none}.{payload}."), "algorithm").await;
    let hmac = jsonwebtoken::encode(
        &jsonwebtoken::Header {
            typ: Some("oauth-id-jag+jwt".into()),
            ..jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256)
        },
        &c,
        &jsonwebtoken::EncodingKey::from_secret(b"the public key, perhaps"),
    )
    .unwrap();
    refused(&broker, &hmac, "algorithm").await;
}

#[actix_web::test]
async fn the_signature_must_verify_by_a_published_key_refetched_for_a_new_kid() {
    let broker = start().await;
    let good = signed(&broker, &claims(&broker));
    let (head, rest) = good.split_once('.').unwrap();
    let (payload, signature) = rest.split_once('.').unwrap();
    let mut other = claims(&broker);
    other["sub"] = json!("mallory");
    let swapped = format!(
        "{head}.{}.{signature}",
        URL_SAFE_NO_PAD.encode(other.to_string())
    );
    refused(&broker, &swapped, "signature does not verify").await;
    let mut header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(head).unwrap()).unwrap();
    header["kid"] = json!("never-published");
    let unknown = format!(
        "{}.{payload}.{signature}",
        URL_SAFE_NO_PAD.encode(header.to_string())
    );
    refused(&broker, &unknown, "key its issuer does not publish").await;
    // The IdP rotates: a grant signed with the new key is accepted after one refetch
    // (the made-up kid above spent this interval's: `upstream.jwks_refetch_interval`).
    broker
        .idp
        .idp
        .keys
        .rotate(None, broker.clock.unix())
        .unwrap();
    broker.clock.advance(std::time::Duration::from_secs(61));
    let (status, body) = present(&broker, &signed(&broker, &claims(&broker))).await;
    assert_eq!(status, 200, "{body}");
}

#[actix_web::test]
async fn each_claim_check_refuses_on_its_own() {
    let broker = start().await;
    let now = broker.clock.unix();
    let cases: Vec<(&str, Value, &str)> = vec![
        ("iss", json!("https://untrusted.example"), "not trusted"),
        ("aud", json!(format!("{BROKER_ISSUER}/")), "aud"),
        (
            "aud",
            json!([BROKER_ISSUER, "https://other.example"]),
            "aud",
        ),
        ("exp", json!(now - 600), "expired"),
        ("iat", json!(now + 600), "not valid yet"),
        ("exp", json!(now + 3_000), "lives longer"),
        ("client_id", json!("other-agent"), "client_id"),
        (
            "resource",
            json!("http://127.0.0.1:9/elsewhere"),
            "resource",
        ),
        ("resource", Value::Null, "resource"),
        ("jti", Value::Null, "lacks a required claim"),
    ];
    for (claim, value, why) in cases {
        let mut c = claims(&broker);
        if value.is_null() {
            c.as_object_mut().unwrap().remove(claim);
        } else {
            c[claim] = value;
        }
        refused(&broker, &signed(&broker, &c), why).await;
    }
    // Nothing was issued, nothing stored: the good one still works once.
    let (status, body) = present(&broker, &signed(&broker, &claims(&broker))).await;
    assert_eq!(status, 200, "{body}");
}

#[actix_web::test]
async fn only_listed_confidential_clients_may_present_an_issuers_grants() {
    let broker = start().await;
    let mut c = claims(&broker);
    c["client_id"] = json!("other-agent");
    let (status, body) = present_as(
        &broker,
        ("other-agent", "other-agent-secret"),
        &signed(&broker, &c),
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let (status, body) = present_as(
        &broker,
        ("demo-agent", "wrong-secret"),
        &signed(&broker, &claims(&broker)),
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    // A public client (no secret) may not present one at all.
    broker
        .state
        .store
        .put_client(StoredClient {
            client_id: "demo-agent-public".into(),
            secret_hash: None,
            metadata: json!({"token_endpoint_auth_method": "none"}),
            fingerprint: [0; 32],
            issued_at: broker.clock.unix(),
            last_used_at: None,
            origin: ClientOrigin::Local,
        })
        .await
        .unwrap();
    let mut c = claims(&broker);
    c["client_id"] = json!("demo-agent-public");
    let response = http()
        .post(broker.at("/oauth/token"))
        .form(&[
            ("grant_type", JWT_BEARER),
            ("client_id", "demo-agent-public"),
            ("assertion", &signed(&broker, &c)),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "unauthorized_client", "{body}");
}

#[actix_web::test]
async fn without_trusted_issuers_the_grant_is_neither_offered_nor_advertised() {
    let off = TestBroker::start().await;
    confidential(&off, "demo-agent", "demo-agent-secret").await;
    let assertion = minted(&off.idp, "notes:read").await;
    let (status, body) = present(&off, &assertion).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );
    let metadata = |b: &TestBroker| b.at("/.well-known/oauth-authorization-server");
    let doc: Value = http()
        .get(metadata(&off))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc.get("authorization_grant_profiles_supported").is_none());
    assert!(
        !doc["grant_types_supported"]
            .as_array()
            .unwrap()
            .contains(&json!(JWT_BEARER))
    );

    let on = start().await;
    let doc: Value = http()
        .get(metadata(&on))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        doc["authorization_grant_profiles_supported"],
        json!(["urn:ietf:params:oauth:grant-profile:id-jag"])
    );
    assert!(
        doc["grant_types_supported"]
            .as_array()
            .unwrap()
            .contains(&json!(JWT_BEARER))
    );
}

#[actix_web::test]
async fn another_issuer_is_trusted_through_its_discovery_document() {
    let enterprise_idp = TestDevIdp::start().await;
    let text = config_text() + &enterprise(&enterprise_idp.url, r#""demo-agent""#);
    let broker = TestBroker::start_with(&text, |_| {}).await;
    confidential(&broker, "demo-agent", "demo-agent-secret").await;
    let assertion = minted(&enterprise_idp, "notes:read notes:write").await;
    let (status, body) = present(&broker, &assertion).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "notes:read notes:write");
    // The upstream provider is not trusted unless it is listed.
    let upstream = minted(&broker.idp, "notes:read").await;
    refused(&broker, &upstream, "not trusted").await;
    // Its keys rotate: an unknown kid is refetched at most once per
    // `upstream.jwks_refetch_interval` (keys fetched a moment ago are not asked again).
    enterprise_idp
        .idp
        .keys
        .rotate(None, enterprise_idp.idp.clock.unix())
        .unwrap();
    let rotated = minted(&enterprise_idp, "notes:read").await;
    refused(&broker, &rotated, "key its issuer does not publish").await;
    broker.clock.advance(std::time::Duration::from_secs(61));
    let (status, body) = present(&broker, &rotated).await;
    assert_eq!(status, 200, "{body}");
}

/// A resource that hands on a provider token (`exchange_audience`) needs a provider
/// login; an ID-JAG grant has none, so the token endpoint refuses before spending the
/// `jti`, rather than issue a token every call with would fail.
#[actix_web::test]
async fn an_id_jag_for_a_resource_that_exchanges_is_refused_before_its_jti_is_spent() {
    let text = crate::exchange::text().replacen(
        "scopes_supported = [\"notes:read\", \"notes:write\"]\n",
        &format!(
            "scopes_supported = [\"notes:read\", \"notes:write\"]\nexchange_audience = \"{}\"\n",
            crate::exchange::NOTES
        ),
        1,
    ) + &enterprise(UPSTREAM_PLACEHOLDER, r#""demo-agent""#);
    let broker = TestBroker::start_with(&text, |_| {}).await;
    confidential(&broker, "demo-agent", "demo-agent-secret").await;
    let claims = claims(&broker);
    refused(&broker, &signed(&broker, &claims), "provider login").await;
    // The jti is still unspent: the store takes it now, for the first time.
    let digest: [u8; 32] = Sha256::new()
        .chain_update(broker.idp.url.as_bytes())
        .chain_update([0])
        .chain_update(claims["jti"].as_str().unwrap().as_bytes())
        .finalize()
        .into();
    let now = broker.clock.unix();
    let first = broker.state.store.spend_assertion(digest, now + 600, now);
    assert!(first.await.unwrap(), "the refused ID-JAG's jti was spent");
}

/// A token whose grant holds no provider token (an ID-JAG grant issued before the
/// resource began to exchange) at a resource with an `exchange_audience`: refused
/// with 401 `invalid_token` and a reason, never a 503 the client would retry forever.
#[actix_web::test]
async fn a_grant_without_a_provider_token_is_refused_at_an_exchanging_resource_not_retried() {
    use token_broker::domain::scope::Scopes;
    use token_broker::store::{Grant, UpstreamTokens};
    use token_broker::tokens::issue::{Minting, mint};

    let text = crate::exchange::text().replacen(
        "scopes_supported = [\"notes:read\", \"notes:write\"]\n",
        &format!(
            "scopes_supported = [\"notes:read\", \"notes:write\"]\nexchange_audience = \"{}\"\n",
            crate::exchange::NOTES
        ),
        1,
    );
    let broker = TestBroker::start_with(&text, |_| {}).await;
    let now = broker.clock.unix();
    let grant = Grant {
        grant_id: "enterprise-grant".to_owned(),
        subject: "alice".to_owned(),
        client_id: "demo-agent".to_owned(),
        scopes: Scopes::of(["notes:read"]),
        resource: Some(RESOURCE.to_owned()),
        upstream: UpstreamTokens {
            access_token: String::new(),
            refresh_token: None,
            expires_at: None,
            scope: None,
            obtained_at: Some(now),
            identity: None,
        },
        created_at: now,
        revoked_at: None,
    };
    broker.state.store.put_grant(grant).await.unwrap();
    let minting = Minting {
        issuer: broker.state.config.server.public_url.as_str(),
        subject: "alice",
        client_id: "demo-agent",
        audience: RESOURCE,
        scopes: &Scopes::of(["notes:read"]),
        grant_id: "enterprise-grant",
        now,
        ttl: std::time::Duration::from_secs(300),
        identity: None,
    };
    let token = mint(&broker.state.signing, &minting).unwrap().0;
    let answer = http()
        .get(broker.at("/auth/verify"))
        .header("x-original-uri", "/mcp")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 401);
    assert!(answer.headers().get("retry-after").is_none());
    assert!(answer.headers().get("x-auth-access-token").is_none());
    let challenge = answer.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    assert!(challenge.contains("no provider token"), "{challenge}");
}
