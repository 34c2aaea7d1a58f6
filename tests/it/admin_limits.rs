//! The operator's view and reset of a caller's budgets (`/admin/rate-limits`): a spent
//! budget shows at zero, a reset gives it back whole (idempotently), a wrong or
//! missing admin token is 401 and resets nothing, and on Redis a reset through one
//! replica is every replica's at once.

use std::net::TcpListener;

use base64::Engine;
use serde_json::Value;
use token_broker::clock::Clock;
use token_broker::tokens::api_keys::{generate_key, hash_key};

use crate::redis_outage::start_broker;
use crate::replicas::{Redis, replica_config};
use crate::support::{TestBroker, TestDevIdp, config_text, http};

const ADMIN: &str = "admin-token-of-at-least-thirty-two-bytes";

async fn verify(broker: &str, token: &str) -> u16 {
    http()
        .get(format!("{broker}/auth/verify"))
        .header("x-original-uri", "/mcp")
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// `method` on `/admin/rate-limits` (or `path`) with `query`, as `admin` (if any).
async fn admin(
    method: reqwest::Method,
    url: &str,
    admin: Option<&str>,
    query: &[(&str, &str)],
) -> (u16, Value) {
    let mut request = http().request(method, url).query(query);
    if let Some(token) = admin {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn budget<'a>(report: &'a Value, rule: &str) -> &'a Value {
    report["budgets"]
        .as_array()
        .unwrap_or_else(|| panic!("{report}"))
        .iter()
        .find(|b| b["rule"] == rule)
        .unwrap_or_else(|| panic!("{rule} in {report}"))
}

#[actix_web::test]
async fn an_operator_sees_a_spent_budget_at_zero_resets_it_and_the_caller_is_admitted() {
    let key = generate_key();
    let text = format!(
        "{}\n[resources.rate_limit]\napi_key = 2\n\n[[resources.rate_limit.tools]]\nname = \"notes_*\"\nbudget = 5\n\n\
         [[api_keys]]\nname = \"ci\"\nhash = \"{}\"\nsubject = \"service:ci\"\nscopes = [\"notes:read\"]\n\n\
         [admin]\ntoken = \"{ADMIN}\"\n",
        config_text(),
        hash_key(&key)
    );
    let broker = TestBroker::start_live(&text, Default::default(), |_| {}).await;
    let url = broker.at("/admin/rate-limits");
    let resource = broker.at("/mcp");
    let who = [
        ("resource", resource.as_str()),
        ("subject", "service:ci"),
        ("client", "api-key:ci"),
    ];
    let (status, fresh) = admin(reqwest::Method::GET, &url, Some(ADMIN), &who).await;
    assert_eq!(status, 200, "{fresh}");
    assert_eq!(fresh["key_kind"], "subject+client");
    assert_eq!(budget(&fresh, "api_key")["remaining"], 2);
    assert_eq!(budget(&fresh, "api_key")["limit"], 2);
    assert_eq!(budget(&fresh, "tool:notes_*")["remaining"], 5);
    assert!(
        fresh["budgets"]
            .as_array()
            .unwrap()
            .iter()
            .all(|b| b["rule"] != "anonymous")
    );

    assert_eq!(
        [
            verify(&broker.url, &key).await,
            verify(&broker.url, &key).await
        ],
        [200, 200]
    );
    assert_eq!(verify(&broker.url, &key).await, 429);
    let (_, spent) = admin(reqwest::Method::GET, &url, Some(ADMIN), &who).await;
    assert_eq!(budget(&spent, "api_key")["remaining"], 0, "{spent}");
    let reset_after = budget(&spent, "api_key")["reset_after_secs"]
        .as_u64()
        .unwrap();
    assert!((59..=60).contains(&reset_after), "{spent}");

    // No token, a wrong one, a malformed one: 401, and nothing reset.
    for token in [
        None,
        Some("not the admin token at all, but long enough"),
        Some("a b"),
    ] {
        let (status, _) = admin(reqwest::Method::DELETE, &url, token, &who).await;
        assert_eq!(status, 401, "{token:?}");
    }
    assert_eq!(verify(&broker.url, &key).await, 429);

    // A query that names no key, or a part the resource does not key by: 400.
    let (status, body) = admin(reqwest::Method::GET, &url, Some(ADMIN), &who[..1]).await;
    assert_eq!(
        (status, &body["error"]),
        (400, &Value::from("invalid_request"))
    );
    let api = [("resource", resource.as_str()), ("api_key", "ci")];
    assert_eq!(
        admin(reqwest::Method::GET, &url, Some(ADMIN), &api).await.0,
        400
    );
    let with_ip = [who[0], who[1], who[2], ("ip", "192.0.2.1")];
    assert_eq!(
        admin(reqwest::Method::GET, &url, Some(ADMIN), &with_ip)
            .await
            .0,
        400
    );
    let typo = [who[0], ("subjct", "service:ci")];
    assert_eq!(
        admin(reqwest::Method::GET, &url, Some(ADMIN), &typo)
            .await
            .0,
        400
    );
    let elsewhere = [
        ("resource", "https://elsewhere.example/mcp"),
        ("subject", "x"),
    ];
    assert_eq!(
        admin(reqwest::Method::GET, &url, Some(ADMIN), &elsewhere)
            .await
            .0,
        400
    );

    let (status, after) = admin(reqwest::Method::DELETE, &url, Some(ADMIN), &who).await;
    assert_eq!(status, 200, "{after}");
    assert_eq!(budget(&after, "api_key")["remaining"], 2);
    assert_eq!(budget(&after, "api_key")["reset_after_secs"], 0);
    // Idempotent, by DELETE or POST …/reset.
    let reset = broker.at("/admin/rate-limits/reset");
    let (status, again) = admin(reqwest::Method::POST, &reset, Some(ADMIN), &who).await;
    assert_eq!(
        (status, budget(&again, "api_key")["remaining"].clone()),
        (200, 2.into())
    );
    assert_eq!(
        [
            verify(&broker.url, &key).await,
            verify(&broker.url, &key).await
        ],
        [200, 200]
    );
    assert_eq!(verify(&broker.url, &key).await, 429);
}

/// The `sub` and `client_id` a JWT carries.
fn subject_and_client(jwt: &str) -> (String, String) {
    let payload = jwt.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    let claims: Value = serde_json::from_slice(&bytes).unwrap();
    let client = claims["client_id"].as_str().or(claims["azp"].as_str());
    (
        claims["sub"].as_str().unwrap().to_owned(),
        client.unwrap().to_owned(),
    )
}

#[actix_web::test]
async fn a_reset_through_one_replica_is_every_replicas_at_once() {
    let redis = Redis::start();
    let clock = Clock::system();
    let idp = TestDevIdp::start_with_clock(Default::default(), clock.clone()).await;
    let (first, second) = (
        TcpListener::bind("127.0.0.1:0").unwrap(),
        TcpListener::bind("127.0.0.1:0").unwrap(),
    );
    let public_url = format!("http://{}", first.local_addr().unwrap());
    let resource = "scopes_supported = [\"notes:read\", \"notes:write\"]\n";
    let text = replica_config(&public_url, &idp.url, &redis.url()).replacen(
        resource,
        &format!("{resource}\n[resources.rate_limit]\nupstream_token = 2\n"),
        1,
    ) + &format!("\n[admin]\ntoken = \"{ADMIN}\"\n");
    let a = start_broker(&text, first, &clock);
    let b = start_broker(&text, second, &clock);
    let token = idp
        .service_token(&format!("{public_url}/mcp"), "notes:read")
        .await;
    let (subject, client) = subject_and_client(&token);
    let mcp = format!("{public_url}/mcp");
    let who = [
        ("resource", mcp.as_str()),
        ("subject", subject.as_str()),
        ("client", client.as_str()),
    ];

    // Spent across both, refused on both.
    assert_eq!(
        [verify(&a, &token).await, verify(&b, &token).await],
        [200, 200]
    );
    assert_eq!(
        [verify(&a, &token).await, verify(&b, &token).await],
        [429, 429]
    );
    let (_, seen) = admin(
        reqwest::Method::GET,
        &format!("{b}/admin/rate-limits"),
        Some(ADMIN),
        &who,
    )
    .await;
    assert_eq!(budget(&seen, "upstream_token")["remaining"], 0, "{seen}");

    // Reset through a; b admits at once, the whole burst and no more.
    let (status, _) = admin(
        reqwest::Method::DELETE,
        &format!("{a}/admin/rate-limits"),
        Some(ADMIN),
        &who,
    )
    .await;
    assert_eq!(status, 200);
    let (_, seen) = admin(
        reqwest::Method::GET,
        &format!("{b}/admin/rate-limits"),
        Some(ADMIN),
        &who,
    )
    .await;
    assert_eq!(budget(&seen, "upstream_token")["remaining"], 2, "{seen}");
    assert_eq!(
        [verify(&b, &token).await, verify(&b, &token).await],
        [200, 200]
    );
    assert_eq!(verify(&a, &token).await, 429);
}
