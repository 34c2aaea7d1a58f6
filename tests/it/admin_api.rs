//! The admin API over HTTP: clients, grants and logins in progress listed and looked
//! up; one grant, a subject's and a client's grants revoked (idempotently) with their
//! tokens refused at once; a client deleted with its grants; pages walked with the
//! cursor; the token checked first and nothing changed without it; the served OpenAPI
//! document naming exactly the mounted routes.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::Value;
use token_broker::domain::scope::Scopes;
use token_broker::store::{Grant, UpstreamTokens};

use crate::login_consent::{authorize_url, open_consent, register};
use crate::login_flow::{login, redeem, verify};
use crate::support::{TestBroker, config_text, http};

pub const ADMIN: &str = "admin-token-0123456789abcdef0123456789";

pub async fn admin_broker() -> TestBroker {
    let text = format!("{}\n[admin]\ntoken = \"{ADMIN}\"\n", config_text());
    TestBroker::start_live(&text, Default::default(), |_| {}).await
}

/// `method path` with the admin token (or `token`): the status and the JSON body.
pub async fn call(
    broker: &TestBroker,
    method: Method,
    path: &str,
    token: Option<&str>,
) -> (u16, Value) {
    let mut request = http().request(method, broker.at(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn admin(broker: &TestBroker, method: Method, path: &str) -> (u16, Value) {
    call(broker, method, path, Some(ADMIN)).await
}

/// A client of alice's with a live access token: (client id, access token).
pub async fn alice_client(broker: &TestBroker, name: &str) -> (String, String) {
    let client = register(broker, name).await;
    let code = login(broker, &client, &[]).await;
    let (status, tokens) = redeem(broker, &client, &code).await;
    assert_eq!(status, 200, "{tokens}");
    (client, tokens["access_token"].as_str().unwrap().to_owned())
}

/// A grant written straight to the store (many subjects, quickly).
pub fn seeded(id: &str, subject: &str, client: &str) -> Grant {
    Grant {
        grant_id: id.into(),
        subject: subject.into(),
        client_id: client.into(),
        scopes: Scopes::of(["notes:read"]),
        resource: None,
        upstream: UpstreamTokens {
            access_token: "at".into(),
            refresh_token: None,
            expires_at: None,
            scope: None,
            obtained_at: None,
            identity: None,
        },
        created_at: 1,
        revoked_at: None,
    }
}

fn ids(page: &Value, field: &str) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i[field].as_str().unwrap().to_owned())
        .collect()
}

#[actix_web::test]
async fn grants_are_listed_and_revoked_one_by_subject_and_by_client() {
    let broker = admin_broker().await;
    let (first, first_token) = alice_client(&broker, "First").await;
    let (second, second_token) = alice_client(&broker, "Second").await;
    let (third, third_token) = alice_client(&broker, "Third").await;
    broker
        .state
        .store
        .put_grant(seeded("bob-1", "bob", &first))
        .await
        .unwrap();

    let (status, clients) = admin(&broker, Method::GET, "/admin/clients").await;
    assert_eq!(status, 200, "{clients}");
    let listed: BTreeSet<_> = ids(&clients, "client_id").into_iter().collect();
    assert_eq!(
        listed,
        BTreeSet::from([first.clone(), second.clone(), third.clone()])
    );
    assert_eq!(clients["items"][0]["kind"], "registered");
    assert!(clients["items"][0]["last_used_at"].is_u64(), "{clients}");
    let (status, shown) = admin(&broker, Method::GET, &format!("/admin/clients/{second}")).await;
    assert_eq!(
        (status, shown["client_name"].as_str()),
        (200, Some("Second"))
    );

    let (_, alice) = admin(&broker, Method::GET, "/admin/grants?subject=alice").await;
    assert_eq!(alice["items"].as_array().unwrap().len(), 3, "{alice}");
    let (_, of_first) = admin(
        &broker,
        Method::GET,
        &format!("/admin/grants?client_id={first}"),
    )
    .await;
    assert_eq!(
        of_first["items"].as_array().unwrap().len(),
        2,
        "alice's and bob's"
    );
    let grant = alice["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["client_id"] == second.as_str())
        .unwrap();
    let grant_id = grant["grant_id"].as_str().unwrap();
    assert_eq!(grant["scope"], "notes:read");
    assert_eq!(grant["revoked"], false);
    assert!(
        grant.get("upstream").is_none(),
        "no provider token is shown"
    );

    // One grant: its token refused at once; a second revocation revokes nothing.
    let (status, done) = admin(
        &broker,
        Method::DELETE,
        &format!("/admin/grants/{grant_id}"),
    )
    .await;
    assert_eq!((status, done["revoked"].as_u64()), (200, Some(1)), "{done}");
    assert_eq!(verify(&broker, &second_token).await.0, 401);
    assert_eq!(verify(&broker, &first_token).await.0, 200);
    let (status, again) = admin(
        &broker,
        Method::DELETE,
        &format!("/admin/grants/{grant_id}"),
    )
    .await;
    assert_eq!((status, again["revoked"].as_u64()), (200, Some(0)));
    let (_, shown) = admin(&broker, Method::GET, &format!("/admin/grants/{grant_id}")).await;
    assert_eq!(shown["revoked"], true);
    assert!(shown["revoked_at"].is_u64());

    // A client's grants: the third client's only.
    let path = format!("/admin/grants?client_id={third}");
    let (status, done) = admin(&broker, Method::DELETE, &path).await;
    assert_eq!((status, done["revoked"].as_u64()), (200, Some(1)), "{done}");
    assert_eq!(verify(&broker, &third_token).await.0, 401);
    assert_eq!(verify(&broker, &first_token).await.0, 200);

    // Offboarding alice: what is left of hers goes; bob's stays.
    let (status, done) = admin(&broker, Method::DELETE, "/admin/grants?subject=alice").await;
    assert_eq!((status, done["revoked"].as_u64()), (200, Some(1)), "{done}");
    assert_eq!(verify(&broker, &first_token).await.0, 401);
    let (_, again) = admin(&broker, Method::DELETE, "/admin/grants?subject=alice").await;
    assert_eq!(again["revoked"].as_u64(), Some(0));
    let (_, bob) = admin(&broker, Method::GET, "/admin/grants/bob-1").await;
    assert_eq!(bob["revoked"], false);

    // A bulk revocation must name whose grants.
    for path in [
        "/admin/grants",
        "/admin/grants?subject=",
        "/admin/grants?resource=x",
    ] {
        let (status, body) = admin(&broker, Method::DELETE, path).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_request")),
            "{path}"
        );
    }
    let (_, bob) = admin(&broker, Method::GET, "/admin/grants/bob-1").await;
    assert_eq!(bob["revoked"], false, "a refused request changes nothing");
}

#[actix_web::test]
async fn unknown_ids_are_404_and_a_document_client_cannot_be_deleted() {
    let broker = admin_broker().await;
    for (method, path, what) in [
        (Method::GET, "/admin/grants/nope", "no such grant"),
        (Method::DELETE, "/admin/grants/nope", "no such grant"),
        (Method::GET, "/admin/clients/nope", "no such client"),
        (Method::DELETE, "/admin/clients/nope", "no such client"),
    ] {
        let (status, body) = admin(&broker, method, path).await;
        assert_eq!(status, 404, "{path}");
        assert_eq!(body["error_description"], what);
    }
    let document = "/admin/clients/https%3A%2F%2Fapp.example%2Fclient.json";
    let (status, body) = admin(&broker, Method::DELETE, document).await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("metadata document"),
        "{body}"
    );
}

#[actix_web::test]
async fn deleting_a_client_revokes_its_grants_and_removes_it() {
    let broker = admin_broker().await;
    let (client, token) = alice_client(&broker, "Doomed").await;
    let (other, other_token) = alice_client(&broker, "Kept").await;
    let (status, done) = admin(&broker, Method::DELETE, &format!("/admin/clients/{client}")).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["revoked"], 1);
    assert_eq!(done["upstream_deleted"], Value::Null);
    assert_eq!(verify(&broker, &token).await.0, 401);
    assert_eq!(verify(&broker, &other_token).await.0, 200);
    let (status, _) = admin(&broker, Method::GET, &format!("/admin/clients/{client}")).await;
    assert_eq!(status, 404);
    let (status, _) = admin(&broker, Method::DELETE, &format!("/admin/clients/{client}")).await;
    assert_eq!(status, 404);
    let (_, clients) = admin(&broker, Method::GET, "/admin/clients").await;
    assert_eq!(ids(&clients, "client_id"), [other]);
}

#[actix_web::test]
async fn pagination_walks_every_grant_exactly_once_while_grants_are_added() {
    let broker = admin_broker().await;
    for i in 0..60 {
        let subject = if i % 3 == 0 { "carol" } else { "dave" };
        let grant = seeded(&format!("g{i:03}"), subject, "c1");
        broker.state.store.put_grant(grant).await.unwrap();
    }
    let mut seen = Vec::new();
    let mut path = "/admin/grants?limit=7".to_owned();
    let mut pages = 0;
    loop {
        let (status, page) = admin(&broker, Method::GET, &path).await;
        assert_eq!(status, 200, "{page}");
        assert!(page["items"].as_array().unwrap().len() <= 7);
        seen.extend(ids(&page, "grant_id"));
        pages += 1;
        if pages == 3 {
            // Added behind the cursor (not seen by this walk) and ahead of it (seen).
            for id in ["g000a", "g999"] {
                let grant = seeded(id, "carol", "c1");
                broker.state.store.put_grant(grant).await.unwrap();
            }
        }
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/admin/grants?limit=7&cursor={cursor}"),
            None => break,
        }
    }
    let mut expected: Vec<String> = (0..60).map(|i| format!("g{i:03}")).collect();
    expected.push("g999".into());
    assert_eq!(seen, expected);

    let (_, carol) = admin(
        &broker,
        Method::GET,
        "/admin/grants?subject=carol&limit=500",
    )
    .await;
    assert_eq!(carol["items"].as_array().unwrap().len(), 22);
    assert_eq!(carol["next_cursor"], Value::Null);
    for bad in [
        "limit=0",
        "limit=501",
        "limit=-1",
        "cursor=%21%21",
        "colour=blue",
    ] {
        let (status, body) = admin(&broker, Method::GET, &format!("/admin/grants?{bad}")).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_request")),
            "{bad}"
        );
    }
}

#[actix_web::test]
async fn logins_in_progress_are_listed_without_their_secrets() {
    let broker = admin_broker().await;
    let client = register(&broker, "Pending").await;
    let consent = open_consent(&authorize_url(&broker, &client, &[])).await;
    let (status, sessions) = admin(&broker, Method::GET, "/admin/sessions").await;
    assert_eq!(status, 200, "{sessions}");
    let items = sessions["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["client_id"], client.as_str());
    assert_eq!(items[0]["approved"], false);
    assert_eq!(items[0]["id"].as_str().unwrap().len(), 64);
    let text = sessions.to_string();
    assert!(!text.contains(&consent.cookie) && !text.contains("csrf"));
    let (_, other) = admin(&broker, Method::GET, "/admin/sessions?client_id=other").await;
    assert!(other["items"].as_array().unwrap().is_empty());
    let (status, _) = admin(&broker, Method::GET, "/admin/sessions?subject=alice").await;
    assert_eq!(status, 400);
}

#[actix_web::test]
async fn without_the_token_every_route_is_401_and_nothing_changes() {
    let broker = admin_broker().await;
    let (client, token) = alice_client(&broker, "Guarded").await;
    let (_, grants) = admin(&broker, Method::GET, "/admin/grants").await;
    let grant_id = ids(&grants, "grant_id").remove(0);
    let targets = [
        (Method::DELETE, format!("/admin/grants/{grant_id}")),
        (Method::DELETE, "/admin/grants?subject=alice".to_owned()),
        (Method::DELETE, format!("/admin/clients/{client}")),
        (Method::GET, "/admin/grants?limit=0".to_owned()),
        (Method::GET, "/admin/openapi.json".to_owned()),
    ];
    for presented in [
        None,
        Some("wrong-token-0123456789abcdef0123456789"),
        Some(""),
    ] {
        for (method, path) in &targets {
            let response = {
                let mut request = http().request(method.clone(), broker.at(path));
                if let Some(token) = presented {
                    request = request.header("authorization", format!("Bearer {token}"));
                }
                request.send().await.unwrap()
            };
            assert_eq!(response.status(), 401, "{method} {path} with {presented:?}");
            assert!(
                response.headers()["www-authenticate"]
                    .to_str()
                    .unwrap()
                    .starts_with("Bearer")
            );
        }
    }
    assert_eq!(verify(&broker, &token).await.0, 200, "nothing was revoked");
    let (status, _) = admin(&broker, Method::GET, &format!("/admin/clients/{client}")).await;
    assert_eq!(status, 200, "nothing was deleted");
}

#[actix_web::test]
async fn without_an_admin_token_configured_the_api_is_not_there() {
    let broker = TestBroker::start_live(&config_text(), Default::default(), |_| {}).await;
    for path in ["/admin/grants", "/admin/openapi.json", "/admin/clients/x"] {
        let (status, _) = call(&broker, Method::GET, path, Some(ADMIN)).await;
        assert_eq!(status, 404, "{path}");
    }
}

#[actix_web::test]
async fn the_served_document_describes_exactly_the_routes_that_answer() {
    let broker = admin_broker().await;
    let response = http()
        .get(broker.at("/admin/openapi.json"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let served: Value = response.json().await.unwrap();
    let file: Value =
        serde_json::from_str(include_str!("../../src/http/admin_openapi.json")).unwrap();
    assert_eq!(served, file, "the served document is the repository's");
    assert_eq!(served["openapi"], "3.1.0");
    let paths = served["paths"].as_object().unwrap();
    let verbs = ["get", "put", "post", "delete", "patch"];
    for (path, item) in paths {
        let concrete = path.replace("{client_id}", "x").replace("{grant_id}", "x");
        for verb in verbs {
            let method = Method::from_bytes(verb.to_uppercase().as_bytes()).unwrap();
            let (status, _) = call(&broker, method, &concrete, None).await;
            if item.get(verb).is_some() {
                assert_eq!(status, 401, "{verb} {path} is documented but not mounted");
            } else {
                assert_eq!(status, 405, "{verb} {path} answers but is not documented");
            }
        }
    }
    // And no admin path answers that the document does not name.
    for path in ["/admin", "/admin/subjects/alice/revoke", "/admin/users"] {
        let (status, _) = call(&broker, Method::GET, path, None).await;
        assert_eq!(status, 404, "{path}");
    }
}
