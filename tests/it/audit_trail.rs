//! The audit trail (`[audit]`, target `audit`): a login, a refresh, a reuse, an
//! exchange and an offboarding through HTTP write exactly their events, in order,
//! with their fields; with `pseudonymize_subjects` the raw subject appears nowhere in
//! the trail. A recording layer in this process takes every event of target `audit`;
//! each test logs in as a user of its own, so tests running alongside are told apart.

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use reqwest::Method;
use token_broker::dev_idp::DevIdpConfig;
use token_broker::dev_idp::config::User;
use token_broker::telemetry::audit::pseudonym;
use tracing::field::{Field, Visit};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::{Context, SubscriberExt};

use crate::admin_api::{ADMIN, call};
use crate::exchange::{CALLER, NOTES, exchange};
use crate::login_consent::register;
use crate::login_flow::{login, redeem, refresh};
use crate::support::TestBroker;

pub(crate) type Event = BTreeMap<String, String>;

/// Every `audit` event this process wrote, as field → value.
pub(crate) fn recorded() -> &'static Mutex<Vec<Event>> {
    static EVENTS: OnceLock<Mutex<Vec<Event>>> = OnceLock::new();
    EVENTS.get_or_init(|| {
        let subscriber = tracing_subscriber::registry().with(Recorder);
        // Fails only if another test installed one first: none does.
        tracing::subscriber::set_global_default(subscriber).unwrap();
        Mutex::new(Vec::new())
    })
}

struct Recorder;

impl<S: tracing::Subscriber> Layer<S> for Recorder {
    fn enabled(&self, metadata: &tracing::Metadata<'_>, _: Context<'_, S>) -> bool {
        metadata.target() == "audit"
    }

    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        if event.metadata().target() != "audit" {
            return;
        }
        let mut fields = Fields(Event::new());
        event.record(&mut fields);
        recorded().lock().unwrap().push(fields.0);
    }
}

struct Fields(Event);

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), value.to_string());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

/// A broker whose dev IdP logs everyone in as a user of this test's own.
async fn broker_for(subject: &str, extra: &str) -> TestBroker {
    let idp = DevIdpConfig {
        default_user: subject.to_owned(),
        users: vec![User {
            sub: subject.to_owned(),
            name: "Audit".to_owned(),
            email: "audit@example.com".to_owned(),
            groups: Vec::new(),
        }],
        ..DevIdpConfig::default()
    };
    let text = format!(
        "{}\n[admin]\ntoken = \"{ADMIN}\"\n{extra}",
        crate::exchange::text()
    );
    TestBroker::start_live(&text, idp, |_| {}).await
}

/// The recorded events that mention `client_id` or `subject` (as itself or written
/// as `subject_as`), in order.
fn events_of(client_id: &str, subject_as: &str) -> Vec<Event> {
    recorded()
        .lock()
        .unwrap()
        .iter()
        .filter(|e| {
            e.get("client_id").map(String::as_str) == Some(client_id)
                || e.get("subject").map(String::as_str) == Some(subject_as)
        })
        .cloned()
        .collect()
}

fn event(fields: &[(&str, &str)]) -> Event {
    fields
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Login, refresh, exchange, reuse (the grant revoked), a second login, offboarding:
/// the client id, the refresh token's rotated successor's access token.
async fn walk(broker: &TestBroker, subject: &str) -> String {
    let client = register(broker, "Audit trail").await;
    let code = login(broker, &client, &[]).await;
    let (status, first) = redeem(broker, &client, &code).await;
    assert_eq!(status, 200, "{first}");
    let original = first["refresh_token"].as_str().unwrap().to_owned();
    let (status, rotated) = refresh(broker, &client, &original).await;
    assert_eq!(status, 200, "{rotated}");
    let access = rotated["access_token"].as_str().unwrap();
    let (status, exchanged) = exchange(broker, CALLER, access, &[]).await;
    assert_eq!(status, 200, "{exchanged}");
    // Outside the reuse grace: a theft signal, the grant ends.
    broker.clock.advance(Duration::from_secs(11));
    let (status, reused) = refresh(broker, &client, &original).await;
    assert_eq!(
        (status, reused["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let code = login(broker, &client, &[]).await;
    assert_eq!(redeem(broker, &client, &code).await.0, 200);
    let (status, body) = call(
        broker,
        Method::DELETE,
        &format!("/admin/grants?subject={subject}"),
        Some(ADMIN),
    )
    .await;
    assert_eq!((status, body["revoked"].as_u64()), (200, Some(1)), "{body}");
    client
}

#[actix_web::test]
async fn a_login_refresh_reuse_exchange_and_offboarding_write_exactly_their_events() {
    recorded();
    let subject = format!("audit-{}", uuid::Uuid::new_v4());
    let broker = broker_for(&subject, "").await;
    let client = walk(&broker, &subject).await;
    let resource = broker.at("/mcp");
    let (c, s, r) = (client.as_str(), subject.as_str(), resource.as_str());
    let login = [
        event(&[
            ("event", "consent_given"),
            ("client_id", c),
            ("resource", r),
        ]),
        event(&[
            ("event", "login_completed"),
            ("client_id", c),
            ("subject", s),
            ("resource", r),
        ]),
        issued("authorization_code", c, s, r),
    ];
    let mut expected = vec![event(&[("event", "client_registered"), ("client_id", c)])];
    expected.extend(login.iter().cloned());
    expected.extend([
        event(&[
            ("event", "refresh_rotated"),
            ("client_id", c),
            ("subject", s),
        ]),
        issued("refresh_token", c, s, r),
        event(&[
            ("event", "exchange_performed"),
            ("client_id", CALLER.0),
            ("subject", s),
            ("audience", NOTES),
        ]),
        event(&[("event", "refresh_reuse"), ("client_id", c), ("subject", s)]),
    ]);
    expected.extend(login.iter().cloned());
    expected.push(event(&[
        ("event", "admin_action"),
        ("caller", "127.0.0.1"),
        ("action", "revoke_subject_grants"),
        ("subject", s),
        ("count", "1"),
    ]));
    assert_eq!(events_of(c, s), expected);
    let metrics = crate::support::http()
        .get(broker.at("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("token_broker_audit_events_total{event=\"token_issued\"} 3"),
        "{metrics}"
    );
    broker.stop().await;
}

fn issued(grant_type: &str, client_id: &str, subject: &str, resource: &str) -> Event {
    event(&[
        ("event", "token_issued"),
        ("grant_type", grant_type),
        ("client_id", client_id),
        ("subject", subject),
        ("resource", resource),
        ("scopes", "notes:read"),
    ])
}

#[actix_web::test]
async fn pseudonymised_subjects_never_show_the_raw_subject() {
    recorded();
    let subject = format!("audit-{}", uuid::Uuid::new_v4());
    let key = "audit-key-0123456789abcdef0123456789abcdef";
    let extra = format!("[audit]\npseudonymize_subjects = true\nsubject_key = \"{key}\"\n");
    let broker = broker_for(&subject, &extra).await;
    let client = walk(&broker, &subject).await;
    let alias = pseudonym(key, &subject);
    assert_ne!(alias, subject);
    let events = events_of(&client, &alias);
    // Every event of the walk that names a subject names the alias.
    let with_subject = events.iter().filter(|e| e.contains_key("subject")).count();
    assert_eq!(with_subject, 9, "{events:?}");
    assert!(
        events
            .iter()
            .all(|e| e.get("subject").is_none_or(|s| *s == alias))
    );
    let everything = recorded().lock().unwrap().clone();
    assert!(
        everything
            .iter()
            .all(|e| e.values().all(|v| !v.contains(&subject))),
        "the raw subject is in the audit trail"
    );
    broker.stop().await;
}

/// The recorded events of `name` that carry `field` = `value`.
fn events_named(name: &str, field: &str, value: &str) -> Vec<Event> {
    recorded()
        .lock()
        .unwrap()
        .iter()
        .filter(|e| {
            e.get("event").map(String::as_str) == Some(name)
                && e.get(field).map(String::as_str) == Some(value)
        })
        .cloned()
        .collect()
}

#[actix_web::test]
async fn operator_invalidations_budget_resets_and_refused_tokens_are_recorded() {
    recorded();
    let subject = format!("audit-{}", uuid::Uuid::new_v4());
    let broker = broker_for(&subject, "[resources.rate_limit]\nupstream_token = 100\n").await;
    let resource = broker.at("/mcp");

    let response = crate::support::http()
        .post(broker.at("/admin/invalidate"))
        .bearer_auth(ADMIN)
        .json(&serde_json::json!({ "subject": subject }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        events_named("admin_action", "subject", &subject),
        [event(&[
            ("event", "admin_action"),
            ("caller", "127.0.0.1"),
            ("action", "invalidate"),
            ("subject", &subject),
            ("count", "0"),
        ])]
    );

    let reset = format!(
        "/admin/rate-limits/reset?resource={}&subject={subject}&client=app",
        url::form_urlencoded::byte_serialize(resource.as_bytes()).collect::<String>()
    );
    let (status, body) = call(&broker, Method::POST, &reset, Some(ADMIN)).await;
    assert_eq!(status, 200, "{body}");
    let resets = events_named("admin_action", "resource", &resource);
    assert_eq!(resets.len(), 1, "{resets:?}");
    assert_eq!(resets[0]["action"], "reset_rate_limits");
    assert_eq!(resets[0]["caller"], "127.0.0.1");

    // A forged token at forward-auth: refused, and recorded with the reason only.
    let forged = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln";
    let response = crate::support::http()
        .get(broker.at("/auth/verify"))
        .header("x-original-uri", "/mcp")
        .bearer_auth(forged)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let refused = events_named("token_refused", "resource", &resource);
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(!refused[0]["reason"].is_empty());
    assert!(refused[0].values().all(|v| !v.contains(forged)));
    broker.stop().await;
}

#[actix_web::test]
async fn a_registration_the_sweep_removes_is_recorded_with_why() {
    recorded();
    let subject = format!("audit-{}", uuid::Uuid::new_v4());
    let broker = broker_for(&subject, "").await;
    let client = register(&broker, "Never used").await;
    broker.clock.advance(Duration::from_secs(24 * 3600 + 1));
    assert_eq!(broker.state.registration.sweep().await.unwrap().removed, 1);
    assert_eq!(
        events_named("client_removed", "client_id", &client),
        [event(&[
            ("event", "client_removed"),
            ("client_id", &client),
            ("reason", "unused"),
        ])]
    );
    broker.stop().await;
}
