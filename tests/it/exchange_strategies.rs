//! The exchange strategies other than RFC 8693 — Entra's on-behalf-of and a refresh
//! grant for providers without any exchange — and actor tokens (RFC 8693 §4.1 `act`),
//! all against the dev IdP.

use serde_json::Value;

use crate::exchange::{CALLER, claims, service_token};
use crate::login_consent::register;
use crate::login_flow::{login, redeem, token};
use crate::support::{TestBroker, config_text, http};

const OBO: &str = "https://notes-obo.example";
const REFRESHED: &str = "https://notes-refresh.example";
const DIRECT: &str = "https://notes.example/api";
/// The downstream API as the dev IdP knows it.
const NOTES_API: &str = "https://notes.example/api";

fn text(profile: &str) -> String {
    let base = config_text().replacen(
        "client_secret = \"test-secret\"\n",
        &format!("client_secret = \"test-secret\"\nprofile = \"{profile}\"\n"),
        1,
    );
    format!(
        r#"{base}
[[exchange.audiences]]
audience = "{OBO}"
strategy = "entra-obo"
scopes = ["notes:read"]
upstream_audience = "api://notes"

[[exchange.audiences]]
audience = "{REFRESHED}"
strategy = "refresh"
scopes = ["notes:read"]
upstream_audience = "{NOTES_API}"

[[exchange.audiences]]
audience = "{DIRECT}"
scopes = ["notes:read", "notes:write"]

[[exchange.clients]]
client_id = "{}"
client_secret = "{}"
audiences = ["{OBO}", "{REFRESHED}", "{DIRECT}"]
"#,
        CALLER.0, CALLER.1
    )
}

/// Alice's broker tokens (access, refresh) and the client they were issued to.
async fn alice(broker: &TestBroker) -> (String, String, String) {
    let client = register(broker, "Strategies").await;
    let code = login(broker, &client, &[]).await;
    let (status, body) = redeem(broker, &client, &code).await;
    assert_eq!(status, 200, "{body}");
    (
        body["access_token"].as_str().unwrap().to_owned(),
        body["refresh_token"].as_str().unwrap().to_owned(),
        client,
    )
}

async fn exchange(broker: &TestBroker, form: &[(&str, &str)]) -> (u16, Value) {
    let mut all = vec![
        (
            "grant_type",
            "urn:ietf:params:oauth:grant-type:token-exchange",
        ),
        (
            "subject_token_type",
            "urn:ietf:params:oauth:token-type:access_token",
        ),
    ];
    all.extend_from_slice(form);
    let response = http()
        .post(broker.at("/oauth/token"))
        .basic_auth(CALLER.0, Some(CALLER.1))
        .form(&all)
        .send()
        .await
        .unwrap();
    (
        response.status().as_u16(),
        response.json().await.unwrap_or(Value::Null),
    )
}

#[actix_web::test]
async fn entra_on_behalf_of_gets_a_token_for_the_downstream_api() {
    // Without an audience at login the provider's token is for the broker's own
    // client, which is what on-behalf-of demands of its assertion.
    let broker = TestBroker::start_live(&text("none"), Default::default(), |_| {}).await;
    let (access, _, _) = alice(&broker).await;
    let before = broker.idp.calls("token").await;
    let (status, body) = exchange(&broker, &[("subject_token", &access), ("audience", OBO)]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "notes:read", "in the audience's own names");
    let downstream = claims(body["access_token"].as_str().unwrap());
    assert_eq!(downstream["aud"], "api://notes");
    assert_eq!(downstream["sub"], "alice");
    assert_eq!(broker.idp.calls("token").await, before + 1);
    // An actor cannot be carried by on-behalf-of: refused, nothing sent.
    let actor = service_token(&broker).await;
    let (status, body) = exchange(
        &broker,
        &[
            ("subject_token", &access),
            ("audience", OBO),
            ("actor_token", &actor),
            (
                "actor_token_type",
                "urn:ietf:params:oauth:token-type:access_token",
            ),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request")),
        "{body}"
    );
    assert_eq!(
        broker.idp.calls("token").await,
        before + 2,
        "only the actor's own token"
    );
}

#[actix_web::test]
async fn the_refresh_strategy_asks_for_the_api_with_the_grants_refresh_token_and_keeps_the_rotation()
 {
    let broker = TestBroker::start_live(&text("generic"), Default::default(), |_| {}).await;
    let (access, refresh, client) = alice(&broker).await;
    let before = broker.idp.calls("token").await;
    let (status, body) = exchange(
        &broker,
        &[("subject_token", &access), ("audience", REFRESHED)],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let downstream = claims(body["access_token"].as_str().unwrap());
    assert_eq!(downstream["aud"], NOTES_API, "the login asked for it too");
    assert_eq!(downstream["sub"], "alice");
    assert_eq!(broker.idp.calls("token").await, before + 1);

    // The provider rotated its refresh token; the grant kept the new one, so the
    // client's next refresh — which refreshes upstream once the provider's access
    // token has expired — still works (the old one would be a replay there).
    broker.clock.advance(std::time::Duration::from_secs(301));
    let (status, body) = token(
        &broker,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", &client),
            ("refresh_token", &refresh),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");

    // A provider token has no grant, hence no refresh token to use.
    let service = service_token(&broker).await;
    let (status, body) = exchange(
        &broker,
        &[("subject_token", &service), ("audience", REFRESHED)],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request")),
        "{body}"
    );
}

#[actix_web::test]
async fn an_actor_token_is_verified_and_recorded_as_act() {
    let broker = TestBroker::start_live(&text("generic"), Default::default(), |_| {}).await;
    let (access, _, _) = alice(&broker).await;
    let actor = service_token(&broker).await;
    let access_type = "urn:ietf:params:oauth:token-type:access_token";
    let with_actor = |actor: &str| {
        vec![
            ("subject_token".to_owned(), access.clone()),
            ("audience".to_owned(), DIRECT.to_owned()),
            ("actor_token".to_owned(), actor.to_owned()),
            ("actor_token_type".to_owned(), access_type.to_owned()),
        ]
    };
    let form = with_actor(&actor);
    let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let (status, body) = exchange(&broker, &pairs).await;
    assert_eq!(status, 200, "{body}");
    let downstream = claims(body["access_token"].as_str().unwrap());
    assert_eq!(downstream["sub"], "alice");
    assert_eq!(downstream["act"]["sub"], "demo-service");
    // Without the actor: another cache entry, no `act`.
    let (_, plain) = exchange(&broker, &[("subject_token", &access), ("audience", DIRECT)]).await;
    assert!(
        claims(plain["access_token"].as_str().unwrap())
            .get("act")
            .is_none()
    );

    let before = broker.idp.calls("token").await;
    let mut forged = actor.clone();
    forged.pop();
    forged.push(if actor.ends_with('A') { 'B' } else { 'A' });
    let forged_form = with_actor(&forged);
    let refusals: Vec<Vec<(&str, &str)>> = vec![
        forged_form
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect(),
        vec![
            ("subject_token", &access),
            ("audience", DIRECT),
            ("actor_token", &actor),
        ],
        vec![
            ("subject_token", &access),
            ("audience", DIRECT),
            ("actor_token_type", access_type),
        ],
        vec![
            ("subject_token", &access),
            ("audience", DIRECT),
            ("actor_token", &actor),
            ("actor_token_type", "urn:ietf:params:oauth:token-type:saml2"),
        ],
    ];
    for form in refusals {
        let (status, body) = exchange(&broker, &form).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_request")),
            "{body}"
        );
        assert!(body.get("access_token").is_none());
    }
    assert_eq!(
        broker.idp.calls("token").await,
        before,
        "nothing went upstream"
    );
}
