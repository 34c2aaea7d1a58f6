//! Token exchange (RFC 8693) at `/oauth/token`: a configured caller trades a client's
//! token for a downstream token from the dev IdP; policy, cache, coalescing, subjects
//! kept apart, and failures that never hand back the client's token.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use token_broker::dev_idp::DevIdpConfig;
use token_broker::domain::invalidation::Invalidation;

use crate::login_consent::register;
use crate::login_flow::{login, redeem};
use crate::support::{TestBroker, config_text, http};

pub(crate) const NOTES: &str = "https://notes.example/api";
const CALENDAR: &str = "https://calendar.example/api";
pub(crate) const CALLER: (&str, &str) = ("notes-mcp", "notes-mcp-secret-0123456789");

pub(crate) fn text() -> String {
    format!(
        r#"{}
[[exchange.audiences]]
audience = "{NOTES}"
scopes = ["notes:read", "notes:write"]

[[exchange.audiences]]
audience = "{CALENDAR}"
scopes = ["calendar:read"]

[[exchange.clients]]
client_id = "{}"
client_secret = "{}"
audiences = ["{NOTES}"]
"#,
        config_text(),
        CALLER.0,
        CALLER.1
    )
}

async fn broker_with(idp: DevIdpConfig) -> TestBroker {
    TestBroker::start_live(&text(), idp, |_| {}).await
}

/// A broker-issued access token for alice.
pub(crate) async fn alice(broker: &TestBroker) -> String {
    let client = register(broker, "Exchange test").await;
    let code = login(broker, &client, &[]).await;
    let (_, body) = redeem(broker, &client, &code).await;
    body["access_token"].as_str().unwrap().to_owned()
}

pub(crate) async fn exchange(
    broker: &TestBroker,
    caller: (&str, &str),
    subject: &str,
    extra: &[(&str, &str)],
) -> (u16, Value) {
    let mut form = vec![
        (
            "grant_type",
            "urn:ietf:params:oauth:grant-type:token-exchange",
        ),
        ("subject_token", subject),
        (
            "subject_token_type",
            "urn:ietf:params:oauth:token-type:access_token",
        ),
    ];
    if !extra.iter().any(|(k, _)| *k == "audience") {
        form.push(("audience", NOTES));
    }
    form.extend(extra.iter().filter(|(_, v)| !v.is_empty()));
    let response = http()
        .post(broker.at("/oauth/token"))
        .basic_auth(caller.0, Some(caller.1))
        .form(&form)
        .send()
        .await
        .unwrap();
    (
        response.status().as_u16(),
        response.json().await.unwrap_or(Value::Null),
    )
}

pub(crate) fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// A provider token for the dev IdP's service account: a realistic actor.
pub(crate) async fn service_token(broker: &TestBroker) -> String {
    let body: Value = http()
        .post(format!("{}/token", broker.idp.url))
        .basic_auth("demo-service", Some("demo-service-secret"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "notes:read"),
            ("resource", &broker.at("/mcp")),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

#[actix_web::test]
async fn a_broker_token_is_exchanged_at_the_provider_and_cached_until_near_expiry() {
    let broker = broker_with(Default::default()).await;
    let subject = alice(&broker).await;
    let before = broker.idp.calls("token").await;
    let (status, body) = exchange(&broker, CALLER, &subject, &[]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["issued_token_type"],
        "urn:ietf:params:oauth:token-type:access_token"
    );
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "notes:read");
    let downstream = body["access_token"].as_str().unwrap();
    assert_ne!(downstream, subject, "never the client's token");
    let c = claims(downstream);
    assert_eq!(c["iss"], broker.idp.url.as_str());
    assert_eq!(c["sub"], "alice");
    assert_eq!(c["aud"], NOTES);
    assert_eq!(broker.idp.calls("token").await, before + 1);
    // Cached: the same answer, no upstream call.
    let (_, again) = exchange(&broker, CALLER, &subject, &[]).await;
    assert_eq!(again["access_token"], body["access_token"]);
    assert_eq!(broker.idp.calls("token").await, before + 1);
    // The dev IdP's token lives 5 min; 30 s before that it is fetched anew.
    broker.clock.advance(Duration::from_secs(271));
    let (status, _) = exchange(&broker, CALLER, &subject, &[]).await;
    assert_eq!(status, 200, "still a live subject");
    assert_eq!(broker.idp.calls("token").await, before + 2);
}

#[actix_web::test]
async fn tokens_about_to_expire_are_not_cached() {
    let idp = DevIdpConfig {
        access_token_ttl: Duration::from_secs(20),
        ..Default::default()
    };
    let broker = broker_with(idp).await;
    let subject = alice(&broker).await;
    let before = broker.idp.calls("token").await;
    for _ in 0..2 {
        let (status, body) = exchange(&broker, CALLER, &subject, &[]).await;
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(broker.idp.calls("token").await, before + 2);
}

#[actix_web::test]
async fn every_policy_refusal_has_its_code() {
    let broker = broker_with(Default::default()).await;
    let subject = alice(&broker).await;
    type Case<'a> = ((&'a str, &'a str), Vec<(&'a str, &'a str)>, u16, &'a str);
    let cases: Vec<Case> = vec![
        (
            (CALLER.0, "wrong-secret-0123456789"),
            vec![],
            401,
            "invalid_client",
        ),
        (
            ("unknown", "whatever-secret-0123"),
            vec![],
            401,
            "invalid_client",
        ),
        (
            CALLER,
            vec![("audience", "https://unknown.example")],
            400,
            "invalid_target",
        ),
        (CALLER, vec![("audience", CALENDAR)], 400, "invalid_target"),
        (CALLER, vec![("scope", "notes:write")], 400, "invalid_scope"),
        (
            CALLER,
            vec![(
                "requested_token_type",
                "urn:ietf:params:oauth:token-type:id_token",
            )],
            400,
            "invalid_request",
        ),
    ];
    let before = broker.idp.calls("token").await;
    for (caller, extra, status, error) in cases {
        let (got, body) = exchange(&broker, caller, &subject, &extra).await;
        assert_eq!(
            (got, body["error"].as_str()),
            (status, Some(error)),
            "{extra:?}: {body}"
        );
    }
    // RFC 8693 §2.2.2: an invalid subject_token is `invalid_request`.
    let (got, body) = exchange(&broker, CALLER, "not-a-token", &[]).await;
    assert_eq!(
        (got, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
    assert_eq!(
        broker.idp.calls("token").await,
        before,
        "nothing went upstream"
    );
}

#[actix_web::test]
async fn five_hundred_identical_concurrent_exchanges_make_one_upstream_call() {
    let broker = broker_with(Default::default()).await;
    let subject = alice(&broker).await;
    let before = broker.idp.calls("token").await;
    // One client, as a resource server would use: 500 requests, all in flight at
    // once over its pooled connections. The first is coalesced with every other miss
    // into one upstream call; later ones are cache hits.
    let client = http();
    let form = [
        (
            "grant_type",
            "urn:ietf:params:oauth:grant-type:token-exchange",
        ),
        ("subject_token", subject.as_str()),
        (
            "subject_token_type",
            "urn:ietf:params:oauth:token-type:access_token",
        ),
        ("audience", NOTES),
    ];
    let requests = (0..500).map(|_| {
        let request = client
            .post(broker.at("/oauth/token"))
            .basic_auth(CALLER.0, Some(CALLER.1))
            .form(&form)
            .send();
        async move {
            let response = request.await.unwrap();
            let status = response.status().as_u16();
            (
                status,
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    });
    let answers: Vec<(u16, Value)> = futures_util::future::join_all(requests).await;
    assert!(answers.iter().all(|(status, _)| *status == 200));
    let first = &answers[0].1["access_token"];
    assert!(
        answers
            .iter()
            .all(|(_, body)| &body["access_token"] == first)
    );
    assert_eq!(broker.idp.calls("token").await, before + 1);
}

#[actix_web::test]
async fn two_subjects_never_share_an_entry() {
    let broker = broker_with(Default::default()).await;
    let alice_token = alice(&broker).await;
    // A provider token for another subject (the dev IdP's service account).
    let service = service_token(&broker).await;
    let service_token = service.as_str();
    let (_, a) = exchange(&broker, CALLER, &alice_token, &[]).await;
    let (status, s) = exchange(&broker, CALLER, service_token, &[]).await;
    assert_eq!(status, 200, "{s}");
    assert_eq!(claims(a["access_token"].as_str().unwrap())["sub"], "alice");
    assert_eq!(
        claims(s["access_token"].as_str().unwrap())["sub"],
        "demo-service"
    );
}

#[actix_web::test]
async fn a_provider_refusal_is_an_error_never_the_clients_token() {
    let broker = broker_with(Default::default()).await;
    let subject = alice(&broker).await;
    http()
        .post(format!("{}/_dev/exchange", broker.idp.url))
        .json(&serde_json::json!({"refuse": true}))
        .send()
        .await
        .unwrap();
    let (status, body) = exchange(&broker, CALLER, &subject, &[]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_target"))
    );
    let description = body["error_description"].as_str().unwrap();
    assert!(description.contains("unauthorized_client"), "{description}");
    assert!(body.get("access_token").is_none());
    assert!(!body.to_string().contains(&subject));
}

#[actix_web::test]
async fn a_revoked_grant_can_no_longer_be_exchanged() {
    let broker = broker_with(Default::default()).await;
    let client = register(&broker, "Revoked").await;
    let code = login(&broker, &client, &[]).await;
    let (_, body) = redeem(&broker, &client, &code).await;
    let access = body["access_token"].as_str().unwrap();
    assert_eq!(exchange(&broker, CALLER, access, &[]).await.0, 200);
    http()
        .post(broker.at("/oauth/revoke"))
        .form(&[
            ("client_id", client.as_str()),
            ("token", body["refresh_token"].as_str().unwrap()),
        ])
        .send()
        .await
        .unwrap();
    let (status, body) = exchange(&broker, CALLER, access, &[]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
    let description = body["error_description"].as_str().unwrap();
    assert!(description.contains("revoked"), "{description}");
}

#[actix_web::test]
async fn forward_auth_hands_the_proxy_the_downstream_token() {
    let text = text().replacen(
        "scopes_supported = [\"notes:read\", \"notes:write\"]\n",
        &format!("scopes_supported = [\"notes:read\", \"notes:write\"]\nexchange_audience = \"{NOTES}\"\n"),
        1,
    );
    let broker = TestBroker::start_live(&text, Default::default(), |_| {}).await;
    let subject = alice(&broker).await;
    let verify = || {
        http()
            .get(broker.at("/auth/verify"))
            .header("x-original-uri", "/mcp")
            .bearer_auth(&subject)
            .send()
    };
    let ok = verify().await.unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.headers()["x-auth-subject"], "alice");
    let downstream = ok.headers()["x-auth-access-token"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        ok.headers()["authorization"].to_str().unwrap(),
        format!("Bearer {downstream}")
    );
    assert_ne!(downstream, subject);
    let c = claims(&downstream);
    assert_eq!(
        (c["sub"].as_str(), c["aud"].as_str()),
        (Some("alice"), Some(NOTES))
    );
    // The provider refuses: the request is not let through, and no token is handed on.
    http()
        .post(format!("{}/_dev/exchange", broker.idp.url))
        .json(&serde_json::json!({"refuse": true}))
        .send()
        .await
        .unwrap();
    broker.state.exchanger.invalidate(&Invalidation::All(true));
    let refused = verify().await.unwrap();
    assert_eq!(refused.status(), 503);
    assert!(refused.headers().get("x-auth-access-token").is_none());
    assert!(refused.headers().get("authorization").is_none());
}
