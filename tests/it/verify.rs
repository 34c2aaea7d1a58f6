//! Forward-auth (`/auth/verify`) and upstream-token verification against the dev IdP:
//! every rejection reason, rotation, refetch limits, serve-stale and fail-closed.

use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use token_broker::dev_idp::keys::{SigningAlg, SigningKey};

use crate::support::{TestBroker, config_text, http};

const RESOURCE: &str = "http://127.0.0.1:9/mcp";
const METADATA: &str = "http://127.0.0.1:9/.well-known/oauth-protected-resource/mcp";

/// A client-credentials token from the dev IdP for `resource` with `scope`.
async fn token(broker: &TestBroker, resource: &str, scope: &str) -> String {
    let mut form = vec![("grant_type", "client_credentials"), ("resource", resource)];
    if !scope.is_empty() {
        form.push(("scope", scope));
    }
    let body: Value = http()
        .post(format!("{}/token", broker.idp.url))
        .basic_auth("demo-service", Some("demo-service-secret"))
        .form(&form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

async fn forward(broker: &TestBroker, authorization: Option<&str>, uri: &str) -> reqwest::Response {
    let mut request = http()
        .get(broker.at("/auth/verify"))
        .header("X-Original-Method", "POST")
        .header("X-Original-URI", uri);
    if let Some(value) = authorization {
        request = request.header("Authorization", value);
    }
    request.send().await.unwrap()
}

fn challenge(response: &reqwest::Response) -> String {
    response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned()
}

pub(crate) async fn failures(broker: &TestBroker, reason: &str) -> u64 {
    let text = http()
        .get(broker.at("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let prefix = format!("token_broker_auth_failures_total{{reason=\"{reason}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map_or(0, |n| n.parse().unwrap())
}

/// Claims as the dev IdP would issue them, for forging variants.
fn claims(broker: &TestBroker) -> Value {
    let now = broker.clock.unix();
    json!({"iss": broker.idp.url, "sub": "mallory", "aud": RESOURCE, "exp": now + 300,
           "iat": now, "nbf": now, "scope": "notes:read", "client_id": "x", "jti": "j"})
}

fn signed_by_idp(broker: &TestBroker, claims: &Value) -> String {
    broker.idp.idp.sign("at+jwt", claims).unwrap()
}

fn signed_by_stranger(kid: &str, claims: &Value) -> String {
    let key = SigningKey::generate(SigningAlg::Rs256).unwrap();
    let mut header = key.header("at+jwt");
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, key.encoding()).unwrap()
}

fn idp_kid(broker: &TestBroker) -> String {
    broker.idp.idp.keys.current().unwrap().kid.clone()
}

#[actix_web::test]
async fn a_valid_token_passes_with_identity_headers() {
    let broker = TestBroker::start().await;
    let token = token(&broker, RESOURCE, "notes:read").await;
    let response = forward(&broker, Some(&format!("bearer {token}")), "/mcp").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-auth-subject"], "demo-service");
    assert_eq!(response.headers()["x-auth-scopes"], "notes:read");
    assert_eq!(response.headers()["x-auth-client-id"], "demo-service");
    // A trailing slash on the audience does not matter; the path does.
    let slash = token_for(&broker, "http://127.0.0.1:9/mcp/").await;
    assert_eq!(
        forward(&broker, Some(&format!("Bearer {slash}")), "/mcp")
            .await
            .status(),
        200
    );
    broker.stop().await;
}

async fn token_for(broker: &TestBroker, resource: &str) -> String {
    token(broker, resource, "notes:read").await
}

#[actix_web::test]
async fn missing_and_misplaced_credentials_get_the_mcp_challenge() {
    let broker = TestBroker::start().await;
    let missing = forward(&broker, None, "/mcp").await;
    assert_eq!(missing.status(), 401);
    assert_eq!(
        challenge(&missing),
        format!("Bearer resource_metadata=\"{METADATA}\", scope=\"notes:read\"")
    );

    let basic = forward(&broker, Some("Basic dXNlcjpwdw=="), "/mcp").await;
    assert_eq!(basic.status(), 401);
    assert!(
        challenge(&basic).ends_with("error=\"invalid_request\""),
        "{}",
        challenge(&basic)
    );

    let token = token(&broker, RESOURCE, "notes:read").await;
    let in_query = forward(&broker, None, &format!("/mcp?access_token={token}")).await;
    assert_eq!(in_query.status(), 401);
    assert!(challenge(&in_query).contains("error=\"invalid_request\""));
    assert_eq!(failures(&broker, "token_in_query").await, 1);
    assert_eq!(failures(&broker, "wrong_scheme").await, 1);
    assert_eq!(failures(&broker, "missing").await, 1);
    broker.stop().await;
}

#[actix_web::test]
async fn every_forgery_is_refused_with_its_reason() {
    let broker = TestBroker::start().await;
    let base = claims(&broker);
    let kid = idp_kid(&broker);
    let b64 = |v: &Value| {
        base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            v.to_string(),
        )
    };
    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "kid": kid})),
        b64(&base)
    );
    // The classic confusion: HMAC keyed with the RSA public key.
    let public_n = broker.idp.idp.keys.current().unwrap().jwk.clone();
    let mut hs_header = Header::new(Algorithm::HS256);
    hs_header.kid = Some(kid.clone());
    let hs256 = jsonwebtoken::encode(
        &hs_header,
        &base,
        &EncodingKey::from_secret(serde_json::to_string(&public_n).unwrap().as_bytes()),
    )
    .unwrap();
    let mut wrong_iss = base.clone();
    wrong_iss["iss"] = json!("https://evil.example");
    let mut no_sub = base.clone();
    no_sub.as_object_mut().unwrap().remove("sub");
    let mut future = base.clone();
    future["nbf"] = json!(broker.clock.unix() + 3600);
    let mut other_aud = base.clone();
    other_aud["aud"] = json!("https://other.example/api");

    let cases = [
        ("malformed", "!!.not.jwt".to_owned()),
        (
            "inactive",
            "an-opaque-token-the-provider-never-issued".to_owned(),
        ),
        ("alg_not_allowed", none),
        ("alg_not_allowed", hs256),
        ("bad_signature", signed_by_stranger(&kid, &base)),
        ("wrong_issuer", signed_by_idp(&broker, &wrong_iss)),
        ("missing_claims", signed_by_idp(&broker, &no_sub)),
        ("not_yet_valid", signed_by_idp(&broker, &future)),
        ("wrong_audience", signed_by_idp(&broker, &other_aud)),
        ("unknown_kid", signed_by_stranger("forged-kid", &base)),
    ];
    for (reason, token) in cases {
        let before = failures(&broker, reason).await;
        let response = forward(&broker, Some(&format!("Bearer {token}")), "/mcp").await;
        assert_eq!(response.status(), 401, "{reason}");
        assert!(
            challenge(&response).ends_with("error=\"invalid_token\""),
            "{reason}: {}",
            challenge(&response)
        );
        assert_eq!(failures(&broker, reason).await, before + 1, "{reason}");
    }
    broker.stop().await;
}

/// Found by `fuzz/fuzz_targets/jwt.rs`: an `exp` near `u64::MAX` overflowed the
/// expiry check (a crashed request in a debug build, a wrapped "expired" in release),
/// and a payload that is not UTF-8 passed as long as serde skipped the bad bytes. Both
/// signed by the provider's own key: each gets a defined answer.
#[actix_web::test]
async fn extreme_times_and_claims_that_are_not_text_get_defined_answers() {
    let broker = TestBroker::start().await;
    let mut forever = claims(&broker);
    forever["exp"] = json!(u64::MAX);
    let token = signed_by_idp(&broker, &forever);
    let response = forward(&broker, Some(&format!("Bearer {token}")), "/mcp").await;
    assert_eq!(response.status(), 200, "the provider's word on expiry");
    // Twice: the second answer comes from the verified-token cache.
    let response = forward(&broker, Some(&format!("Bearer {token}")), "/mcp").await;
    assert_eq!(response.status(), 200);

    let key = broker.idp.idp.keys.current().unwrap();
    let b64 = |bytes: &[u8]| {
        base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, bytes)
    };
    let mut payload = claims(&broker).to_string().into_bytes();
    payload.pop();
    payload.extend_from_slice(b",\"x-unread\":\"\xff\"}");
    let input = format!(
        "{}.{}",
        b64(json!({"alg": "RS256", "kid": key.kid, "typ": "at+jwt"})
            .to_string()
            .as_bytes()),
        b64(&payload)
    );
    let signature =
        jsonwebtoken::crypto::sign(input.as_bytes(), key.encoding(), Algorithm::RS256).unwrap();
    let before = failures(&broker, "malformed").await;
    let response = forward(
        &broker,
        Some(&format!("Bearer {input}.{signature}")),
        "/mcp",
    )
    .await;
    assert_eq!(response.status(), 401);
    assert_eq!(failures(&broker, "malformed").await, before + 1);
    broker.stop().await;
}

#[actix_web::test]
async fn expiry_applies_to_cached_tokens_too() {
    let broker = TestBroker::start().await;
    let token = token(&broker, RESOURCE, "notes:read").await;
    let auth = format!("Bearer {token}");
    assert_eq!(forward(&broker, Some(&auth), "/mcp").await.status(), 200);
    // Within the 30 s leeway after `exp` the token still passes; past it, never.
    // (Margins of several seconds: the IdP minted `exp` a moment before this test's
    // first check, possibly across a second boundary.)
    broker.clock.advance(Duration::from_secs(300 + 20));
    assert_eq!(forward(&broker, Some(&auth), "/mcp").await.status(), 200);
    broker.clock.advance(Duration::from_secs(15));
    assert_eq!(forward(&broker, Some(&auth), "/mcp").await.status(), 401);
    assert_eq!(failures(&broker, "expired").await, 1);
    broker.stop().await;
}

#[actix_web::test]
async fn missing_scope_is_403_naming_what_is_needed() {
    let broker = TestBroker::start().await;
    let token = token(&broker, RESOURCE, "").await;
    let response = forward(&broker, Some(&format!("Bearer {token}")), "/mcp").await;
    assert_eq!(response.status(), 403);
    assert_eq!(
        challenge(&response),
        format!(
            "Bearer resource_metadata=\"{METADATA}\", scope=\"notes:read\", error=\"insufficient_scope\", error_description=\"missing scope: notes:read\""
        )
    );
    broker.stop().await;
}

#[actix_web::test]
async fn a_rotated_key_is_picked_up_on_first_use() {
    let broker = TestBroker::start().await;
    let before = token(&broker, RESOURCE, "notes:read").await;
    assert_eq!(
        forward(&broker, Some(&format!("Bearer {before}")), "/mcp")
            .await
            .status(),
        200
    );
    let jwks_calls = broker.idp.calls("jwks").await;
    http()
        .post(format!("{}/_dev/keys/rotate", broker.idp.url))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let after = token(&broker, RESOURCE, "notes:read").await;
    assert_eq!(
        forward(&broker, Some(&format!("Bearer {after}")), "/mcp")
            .await
            .status(),
        200
    );
    assert_eq!(broker.idp.calls("jwks").await, jwks_calls + 1);
    broker.stop().await;
}

#[actix_web::test]
async fn forged_kids_cause_at_most_one_refetch_per_interval() {
    let broker = TestBroker::start().await;
    let valid = token(&broker, RESOURCE, "notes:read").await;
    assert_eq!(
        forward(&broker, Some(&format!("Bearer {valid}")), "/mcp")
            .await
            .status(),
        200
    );
    let start = broker.idp.calls("jwks").await;
    let base = claims(&broker);
    for i in 0..30 {
        let forged = signed_by_stranger(&format!("forged-{i}"), &base);
        assert_eq!(
            forward(&broker, Some(&format!("Bearer {forged}")), "/mcp")
                .await
                .status(),
            401
        );
    }
    assert_eq!(broker.idp.calls("jwks").await, start + 1);
    broker.clock.advance(Duration::from_secs(61));
    let forged = signed_by_stranger("forged-late", &claims(&broker));
    forward(&broker, Some(&format!("Bearer {forged}")), "/mcp").await;
    assert_eq!(broker.idp.calls("jwks").await, start + 2);
    broker.stop().await;
}

#[actix_web::test]
async fn concurrent_requests_on_a_cold_cache_fetch_discovery_once() {
    let broker = TestBroker::start().await;
    let token = token(&broker, RESOURCE, "notes:read").await;
    let auth = format!("Bearer {token}");
    // Let the start-up fetch finish, then age it past the TTL: every request below
    // finds the copy stale at once.
    assert_eq!(
        http()
            .get(broker.at("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let (discovery, jwks) = (
        broker.idp.calls("discovery").await,
        broker.idp.calls("jwks").await,
    );
    broker.clock.advance(Duration::from_secs(301));
    let client = http();
    let requests = (0..200).map(|_| {
        client
            .get(broker.at("/auth/verify"))
            .header("X-Original-URI", "/mcp")
            .header("Authorization", &auth)
            .send()
    });
    let responses = futures_util::future::join_all(requests).await;
    assert!(
        responses
            .iter()
            .all(|r| r.as_ref().unwrap().status() == 200)
    );
    assert_eq!(broker.idp.calls("discovery").await, discovery + 1);
    assert_eq!(broker.idp.calls("jwks").await, jwks + 1);
    broker.stop().await;
}

#[actix_web::test]
async fn an_outage_is_served_stale_within_the_grace_then_fails_closed() {
    let idp_config = token_broker::dev_idp::DevIdpConfig {
        access_token_ttl: Duration::from_secs(3 * 3600),
        ..Default::default()
    };
    let broker = TestBroker::start_with_idp(&config_text(), idp_config, |_| {}).await;
    let first = token(&broker, RESOURCE, "notes:read").await;
    let second = token(&broker, RESOURCE, "notes:read").await;
    let third = token(&broker, RESOURCE, "notes:read").await;
    assert_eq!(
        forward(&broker, Some(&format!("Bearer {first}")), "/mcp")
            .await
            .status(),
        200
    );

    http()
        .post(format!("{}/_dev/down", broker.idp.url))
        .send()
        .await
        .unwrap();
    broker.clock.advance(Duration::from_secs(301));
    assert_eq!(
        forward(&broker, Some(&format!("Bearer {second}")), "/mcp")
            .await
            .status(),
        200
    );
    assert_eq!(
        http()
            .get(broker.at("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let metrics = http()
        .get(broker.at("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("token_broker_upstream_discovery_refreshes_total{outcome=\"stale\"}"),
        "{metrics}"
    );

    // Fail closed, as unavailable (503, retry later), not as a bad token (401).
    broker.clock.advance(Duration::from_secs(3600));
    let closed = forward(&broker, Some(&format!("Bearer {third}")), "/mcp").await;
    assert_eq!(closed.status(), 503);
    assert!(closed.headers().contains_key("retry-after"));
    assert!(!closed.headers().contains_key("x-auth-subject"));
    assert_eq!(failures(&broker, "unavailable").await, 1);
    assert_eq!(
        http()
            .get(broker.at("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        503
    );

    http()
        .post(format!("{}/_dev/up", broker.idp.url))
        .send()
        .await
        .unwrap();
    assert_eq!(
        forward(&broker, Some(&format!("Bearer {third}")), "/mcp")
            .await
            .status(),
        200
    );
    assert_eq!(
        http()
            .get(broker.at("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    broker.stop().await;
}

#[actix_web::test]
async fn protected_resource_metadata_is_served_at_both_locations() {
    let broker = TestBroker::start().await;
    for path in [
        "/.well-known/oauth-protected-resource/mcp",
        "/.well-known/oauth-protected-resource",
    ] {
        let response = http().get(broker.at(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let doc: Value = response.json().await.unwrap();
        assert_eq!(
            doc,
            json!({
                "resource": RESOURCE,
                "resource_name": "Test MCP server",
                "authorization_servers": ["http://127.0.0.1:9"],
                "scopes_supported": ["notes:read", "notes:write"],
                "bearer_methods_supported": ["header"],
            }),
            "{path}"
        );
    }
    let unknown = http()
        .get(broker.at("/.well-known/oauth-protected-resource/other"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    broker.stop().await;
}
