//! Token exchange (RFC 8693) through a real provider: the oidc-provider rig of
//! e2e_oidc_provider, whose provider.mjs registers the grant (oidc-provider 9 has none
//! of its own) with an audience allow-list per client. A client logs in through the
//! broker, a configured caller exchanges the client's token at the broker's token
//! endpoint, and the broker exchanges the grant's provider token at the rig.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::e2e_oidc_login::broker_token_from_provider_login;
use crate::e2e_oidc_provider::{Rig, rig_service_token, start_rig};
use crate::support::{TestBroker, UPSTREAM_PLACEHOLDER, config_text, http};

const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";
/// An audience the rig lets the broker's client exchange for (notes:read notes:write).
const NOTES: &str = "https://notes.example/api";
/// An audience the broker allows but the rig refuses the broker's client.
const PAYROLL: &str = "https://payroll.example/api";
const CALLER: (&str, &str) = ("notes-mcp", "notes-mcp-secret-0123456789");

/// A broker whose upstream is the rig, with NOTES and PAYROLL as exchange audiences
/// for CALLER.
async fn broker(rig: &Rig) -> TestBroker {
    let text = format!(
        r#"{}
[[exchange.audiences]]
audience = "{NOTES}"
scopes = ["notes:read", "notes:write"]

[[exchange.audiences]]
audience = "{PAYROLL}"
scopes = ["notes:read"]

[[exchange.clients]]
client_id = "{}"
client_secret = "{}"
audiences = ["{NOTES}", "{PAYROLL}"]
"#,
        config_text().replace(UPSTREAM_PLACEHOLDER, &rig.issuer),
        CALLER.0,
        CALLER.1
    );
    TestBroker::start_live(&text, Default::default(), |_| {}).await
}

/// CALLER exchanges `subject` at the broker's token endpoint: status, `Cache-Control`
/// and the JSON answer.
async fn exchange_at_broker(
    broker: &TestBroker,
    subject: &str,
    audience: &str,
    scope: Option<&str>,
) -> (u16, String, Value) {
    let mut form = vec![
        ("grant_type", TOKEN_EXCHANGE),
        ("subject_token", subject),
        ("subject_token_type", ACCESS_TOKEN),
        ("audience", audience),
    ];
    form.extend(scope.map(|s| ("scope", s)));
    let response = http()
        .post(broker.at("/oauth/token"))
        .basic_auth(CALLER.0, Some(CALLER.1))
        .form(&form)
        .send()
        .await
        .unwrap();
    let cache = response
        .headers()
        .get("cache-control")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (
        response.status().as_u16(),
        cache,
        response.json().await.unwrap_or(Value::Null),
    )
}

/// A request straight to the rig's token endpoint as the broker's client.
async fn at_rig(rig: &Rig, form: &[(&str, &str)]) -> (u16, Value) {
    let response = http()
        .post(format!("{}/token", rig.issuer))
        .basic_auth("token-broker", Some("token-broker-secret"))
        .form(form)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

/// A token exchange straight at the rig as `token-broker`.
async fn rig_exchange(rig: &Rig, subject: &str, extra: &[(&str, &str)]) -> (u16, Value) {
    let mut form = vec![
        ("grant_type", TOKEN_EXCHANGE),
        ("subject_token", subject),
        ("subject_token_type", ACCESS_TOKEN),
    ];
    form.extend_from_slice(extra);
    at_rig(rig, &form).await
}

fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// The provider tokens the broker holds for the grant behind a broker token.
async fn upstream_tokens(broker: &TestBroker, access: &str) -> (String, String) {
    let grant = broker.grant_behind(access).await;
    (
        grant.upstream.access_token,
        grant.upstream.refresh_token.unwrap(),
    )
}

#[actix_web::test]
async fn a_broker_token_is_exchanged_at_oidc_provider_for_a_configured_audience() {
    let rig = start_rig();
    let broker = broker(&rig).await;
    let login = broker_token_from_provider_login(&broker, &rig, "notes:read notes:write").await;
    let subject = login["access_token"].as_str().unwrap();
    let (upstream_access, _) = upstream_tokens(&broker, subject).await;

    let (status, cache, body) = exchange_at_broker(&broker, subject, NOTES, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(cache, "no-store");
    assert_eq!(body["issued_token_type"], ACCESS_TOKEN);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "notes:read notes:write");
    let downstream = body["access_token"].as_str().unwrap();
    assert_ne!(downstream, subject, "never the client's token");
    assert_ne!(
        downstream, upstream_access,
        "nor the grant's provider token"
    );
    let c = claims(downstream);
    assert_eq!(c["iss"], rig.issuer.as_str());
    assert_eq!(c["aud"], NOTES);
    assert_eq!(c["sub"], "alice", "the user who logged in at the provider");
    assert_eq!(c["scope"], "notes:read notes:write");
    assert_eq!(
        c["client_id"], "token-broker",
        "the broker asked the provider"
    );
    assert!(c.get("act").is_none(), "no actor token was presented");

    // Narrowed on request: the provider issues a token with only that scope.
    let (status, _, narrow) = exchange_at_broker(&broker, subject, NOTES, Some("notes:read")).await;
    assert_eq!(status, 200, "{narrow}");
    assert_eq!(narrow["scope"], "notes:read");
    let c = claims(narrow["access_token"].as_str().unwrap());
    assert_eq!(
        (c["aud"].as_str(), c["sub"].as_str(), c["scope"].as_str()),
        (Some(NOTES), Some("alice"), Some("notes:read"))
    );
}

#[actix_web::test]
async fn an_audience_oidc_provider_refuses_is_an_rfc8693_error_never_the_clients_token() {
    let rig = start_rig();
    let broker = broker(&rig).await;
    let login = broker_token_from_provider_login(&broker, &rig, "notes:read").await;
    let subject = login["access_token"].as_str().unwrap();
    let (upstream_access, upstream_refresh) = upstream_tokens(&broker, subject).await;

    // The broker's policy allows PAYROLL for this caller; the provider does not.
    let (status, cache, body) = exchange_at_broker(&broker, subject, PAYROLL, None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_target")),
        "{body}"
    );
    assert_eq!(cache, "no-store");
    let description = body["error_description"].as_str().unwrap();
    assert!(
        description.contains(PAYROLL) && description.contains("invalid_target"),
        "the provider's refusal is named: {description}"
    );
    assert!(body.get("access_token").is_none());
    let text = body.to_string();
    assert!(!text.contains(subject) && !text.contains(&upstream_access));

    // Once the provider revokes the grant (its refresh token revoked there), its
    // access token is refused as a subject: an error again, no token.
    let revoked = http()
        .post(format!("{}/token/revocation", rig.issuer))
        .basic_auth("token-broker", Some("token-broker-secret"))
        .form(&[
            ("token", upstream_refresh.as_str()),
            ("token_type_hint", "refresh_token"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    let (status, body) = rig_exchange(&rig, &upstream_access, &[("audience", NOTES)]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request")),
        "{body}"
    );
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("revoked"),
        "{body}"
    );
    let (status, _, body) = exchange_at_broker(&broker, subject, NOTES, None).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].is_string(), "{body}");
    assert!(body.get("access_token").is_none());
    assert!(!body.to_string().contains(subject));
}

#[actix_web::test]
async fn a_token_oidc_provider_issued_directly_is_exchanged_through_the_broker() {
    let rig = start_rig();
    let broker = broker(&rig).await;
    // A service's own token from the provider, for the broker's protected resource.
    let subject =
        rig_service_token(&rig, "token-broker-post", &broker.at("/mcp"), "notes:read").await;
    let (status, _, body) = exchange_at_broker(&broker, &subject, NOTES, None).await;
    assert_eq!(status, 200, "{body}");
    let c = claims(body["access_token"].as_str().unwrap());
    assert_eq!(
        (c["aud"].as_str(), c["sub"].as_str(), c["scope"].as_str()),
        (Some(NOTES), Some("token-broker-post"), Some("notes:read"))
    );
    let (status, _, body) = exchange_at_broker(&broker, &subject, PAYROLL, None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_target")),
        "{body}"
    );
}

#[actix_web::test]
async fn oidc_provider_exchange_checks_subject_audience_scope_and_records_the_actor() {
    let rig = start_rig();
    let subject = rig_service_token(
        &rig,
        "token-broker",
        "urn:token-broker:test",
        "notes:read notes:write mcp",
    )
    .await;
    let actor = rig_service_token(&rig, "token-broker-post", "urn:token-broker:test", "mcp").await;

    // Narrowed to what the audience offers; the actor recorded (RFC 8693 §4.1).
    let (status, body) = rig_exchange(
        &rig,
        &subject,
        &[
            ("audience", NOTES),
            ("actor_token", &actor),
            ("actor_token_type", ACCESS_TOKEN),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let exchanged = body["access_token"].as_str().unwrap().to_owned();
    let c = claims(&exchanged);
    assert_eq!(c["aud"], NOTES);
    assert_eq!(c["sub"], "token-broker");
    assert_eq!(c["scope"], "notes:read notes:write", "mcp is not offered");
    assert_eq!(c["act"], json!({ "sub": "token-broker-post" }));
    // Exchanged again by another actor: the earlier one nests inside.
    let (status, body) = rig_exchange(
        &rig,
        &exchanged,
        &[
            ("resource", NOTES),
            ("scope", "notes:read"),
            ("actor_token", &subject),
            ("actor_token_type", ACCESS_TOKEN),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        claims(body["access_token"].as_str().unwrap())["act"],
        json!({ "sub": "token-broker", "act": { "sub": "token-broker-post" } })
    );

    // The subject's header and signature with a payload naming someone else.
    let mut forged_claims = claims(&subject);
    forged_claims["sub"] = json!("mallory");
    let parts: Vec<&str> = subject.split('.').collect();
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(forged_claims.to_string()),
        parts[2]
    );
    type Refusal<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a str);
    let refusals: Vec<Refusal> = vec![
        (
            subject.as_str(),
            vec![("audience", PAYROLL)],
            "invalid_target",
        ),
        (
            subject.as_str(),
            vec![("audience", NOTES), ("scope", "mcp")],
            "invalid_scope",
        ),
        (
            subject.as_str(),
            vec![("audience", NOTES), ("scope", "calendar:read")],
            "invalid_scope",
        ),
        (subject.as_str(), vec![], "invalid_request"),
        ("not-a-token", vec![("audience", NOTES)], "invalid_request"),
        (
            tampered.as_str(),
            vec![("audience", NOTES)],
            "invalid_request",
        ),
    ];
    for (token, extra, error) in refusals {
        let (status, body) = rig_exchange(&rig, token, &extra).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some(error)),
            "{extra:?}: {body}"
        );
        assert!(body.get("access_token").is_none());
    }

    // Expired (the rig's tokens live 300 s): the rig's exchange clock moves instead
    // of the test waiting.
    let moved = http()
        .post(format!("{}/_rig/clock", rig.issuer))
        .json(&json!({ "advance_secs": 301 }))
        .send()
        .await
        .unwrap();
    assert_eq!(moved.status(), 200);
    let (status, body) = rig_exchange(&rig, &subject, &[("audience", NOTES)]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request")),
        "{body}"
    );
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("expired"),
        "{body}"
    );
}
