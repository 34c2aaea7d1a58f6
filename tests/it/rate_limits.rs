//! Rate limits on a protected resource through forward-auth (`[resources.rate_limit]`):
//! a budget per kind of credential, keys by subject, client, API key or client IP, a
//! tool's own budget, the draft-ietf-httpapi-ratelimit-headers fields, the metric, the
//! off switch. The gateway's answers are in `gateway/limits.rs`, nginx's in
//! `nginx_limits.rs`, replicas on one Redis in `replica_limits.rs`.

use std::time::Duration;

use token_broker::tokens::api_keys::{generate_key, hash_key};

use crate::login_consent::register;
use crate::login_flow::{login, redeem};
use crate::support::{TestBroker, config_text, http};

/// The test resource with `limits` as its `[resources.rate_limit]` lines, two API keys
/// of one subject, and `extra` sections.
fn text(limits: &str, keys: (&str, &str), extra: &str) -> String {
    format!(
        r#"{}
[resources.rate_limit]
{limits}

[[resources.rate_limit.tools]]
name = "notes_write"
budget = 1

[[api_keys]]
name = "one"
hash = "{}"
subject = "service:shared"
scopes = ["notes:read"]

[[api_keys]]
name = "two"
hash = "{}"
subject = "service:shared"
scopes = ["notes:read"]
{extra}"#,
        config_text(),
        hash_key(keys.0),
        hash_key(keys.1)
    )
}

struct Rig {
    broker: TestBroker,
    keys: (String, String),
}

async fn rig(limits: &str, extra: &str) -> Rig {
    let keys = (generate_key(), generate_key());
    let text = text(limits, (&keys.0, &keys.1), extra);
    let broker = TestBroker::start_live(&text, Default::default(), |_| {}).await;
    Rig { broker, keys }
}

/// Forward-auth for a POST to `/mcp`, as a 2026-07-28 client's proxy asks; `tool`
/// makes it a `tools/call`; `forwarded_for` as a proxy would add it.
async fn verify(
    broker: &TestBroker,
    token: Option<&str>,
    tool: Option<&str>,
    forwarded_for: Option<&str>,
) -> reqwest::Response {
    let mut request = http()
        .get(broker.at("/auth/verify"))
        .header("x-original-uri", "/mcp")
        .header("x-original-method", "POST")
        .header("mcp-protocol-version", "2026-07-28");
    request = match tool {
        Some(tool) => request
            .header("mcp-method", "tools/call")
            .header("mcp-name", tool),
        None => request.header("mcp-method", "tools/list"),
    };
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(ip) = forwarded_for {
        request = request.header("x-forwarded-for", ip);
    }
    request.send().await.unwrap()
}

async fn statuses(
    broker: &TestBroker,
    token: Option<&str>,
    tool: Option<&str>,
    forwarded_for: Option<&str>,
    n: usize,
) -> Vec<u16> {
    let mut out = Vec::new();
    for _ in 0..n {
        let response = verify(broker, token, tool, forwarded_for).await;
        out.push(response.status().as_u16());
    }
    out
}

fn header(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

async fn broker_token(broker: &TestBroker, client_name: &str) -> String {
    let client = register(broker, client_name).await;
    let code = login(broker, &client, &[]).await;
    let (_, body) = redeem(broker, &client, &code).await;
    body["access_token"].as_str().unwrap().to_owned()
}

#[actix_web::test]
async fn each_credential_kind_spends_its_own_budget_with_the_drafts_headers() {
    let limits = "broker_token = 2\nupstream_token = 3\napi_key = 4\nanonymous = 1";
    let Rig { broker, keys } = rig(limits, "").await;
    let upstream = broker
        .idp
        .service_token(&broker.at("/mcp"), "notes:read")
        .await;
    let alice = broker_token(&broker, "Limits").await;

    // The provider's token: 3, each answer saying what is left.
    for left in [2, 1, 0] {
        let allowed = verify(&broker, Some(&upstream), None, None).await;
        assert_eq!(allowed.status(), 200);
        assert_eq!(
            header(&allowed, "ratelimit-policy"),
            "\"upstream_token\";q=3;w=60"
        );
        let value = header(&allowed, "ratelimit");
        assert!(
            value.starts_with(&format!("\"upstream_token\";r={left};t=")),
            "{value}"
        );
    }
    let refused = verify(&broker, Some(&upstream), None, None).await;
    assert_eq!(refused.status(), 429);
    assert_eq!(header(&refused, "retry-after"), "20", "60 s / 3");
    assert_eq!(header(&refused, "x-auth-status"), "429");
    assert_eq!(header(&refused, "ratelimit"), "\"upstream_token\";r=0;t=20");
    assert_eq!(
        header(&refused, "ratelimit-policy"),
        "\"upstream_token\";q=3;w=60"
    );

    // The others have budgets of their own.
    let api_key = statuses(&broker, Some(&keys.0), None, None, 5).await;
    assert_eq!(api_key, [200, 200, 200, 200, 429]);
    let broker_tokens = statuses(&broker, Some(&alice), None, None, 3).await;
    assert_eq!(broker_tokens, [200, 200, 429]);
    // Without a verified caller (no token, then a bad one): the anonymous budget, by IP.
    assert_eq!(statuses(&broker, None, None, None, 1).await, [401]);
    assert_eq!(
        statuses(&broker, Some("forged"), None, None, 1).await,
        [429]
    );

    // Once the wait has passed, one more.
    broker.clock.advance(Duration::from_secs(20));
    assert_eq!(
        statuses(&broker, Some(&upstream), None, None, 2).await,
        [200, 429]
    );

    let metrics = http()
        .get(broker.at("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for (kind, rule, count) in [
        ("subject+client", "upstream_token", 2),
        ("subject+client", "api_key", 1),
        ("subject+client", "broker_token", 1),
        ("ip", "anonymous", 1),
    ] {
        let line = format!(
            "token_broker_rate_limited_total{{key_kind=\"{kind}\",resource=\"{}\",rule=\"{rule}\"}} {count}",
            broker.at("/mcp")
        );
        assert!(metrics.contains(&line), "{line} in:\n{metrics}");
    }
    assert!(!metrics.contains("demo-service"), "no subject in a label");
    broker.stop().await;
}

#[actix_web::test]
async fn the_key_decides_who_shares_a_budget() {
    // By subject: two API keys of one subject share one budget.
    let Rig { broker, keys } = rig("key = [\"subject\"]\napi_key = 2", "").await;
    assert_eq!(
        statuses(&broker, Some(&keys.0), None, None, 2).await,
        [200, 200]
    );
    assert_eq!(statuses(&broker, Some(&keys.1), None, None, 1).await, [429]);
    broker.stop().await;

    // By API key: each key its own.
    let Rig { broker, keys } = rig("key = [\"api_key\"]\napi_key = 2", "").await;
    assert_eq!(
        statuses(&broker, Some(&keys.0), None, None, 3).await,
        [200, 200, 429]
    );
    assert_eq!(statuses(&broker, Some(&keys.1), None, None, 1).await, [200]);
    broker.stop().await;

    // By client: one user through two clients has two budgets; the default
    // (subject + client) too.
    for key in ["key = [\"client\"]\n", ""] {
        let Rig { broker, .. } = rig(&format!("{key}broker_token = 1"), "").await;
        let first = broker_token(&broker, "First").await;
        let second = broker_token(&broker, "Second").await;
        assert_eq!(
            statuses(&broker, Some(&first), None, None, 2).await,
            [200, 429]
        );
        assert_eq!(statuses(&broker, Some(&second), None, None, 1).await, [200]);
        broker.stop().await;
    }

    // By client IP: from a trusted proxy's X-Forwarded-For only.
    let trusted = "\n[server]\ntrusted_proxies = [\"127.0.0.1/32\"]\n";
    let text_with_proxy =
        |limits: &str| text(limits, ("a", "b"), "").replace("[server]\n", trusted.trim_start());
    let text = text_with_proxy("key = [\"ip\"]\nupstream_token = 1");
    let broker = TestBroker::start_live(&text, Default::default(), |_| {}).await;
    let token = broker
        .idp
        .service_token(&broker.at("/mcp"), "notes:read")
        .await;
    let one = Some("198.51.100.1");
    let two = Some("198.51.100.2");
    assert_eq!(
        statuses(&broker, Some(&token), None, one, 2).await,
        [200, 429]
    );
    assert_eq!(statuses(&broker, Some(&token), None, two, 1).await, [200]);
    broker.stop().await;
    // Without trusted proxies the header is the client's own word: ignored.
    let Rig { broker, .. } = rig("key = [\"ip\"]\nupstream_token = 1", "").await;
    let token = broker
        .idp
        .service_token(&broker.at("/mcp"), "notes:read")
        .await;
    assert_eq!(statuses(&broker, Some(&token), None, one, 1).await, [200]);
    assert_eq!(statuses(&broker, Some(&token), None, two, 1).await, [429]);
    broker.stop().await;
}

#[actix_web::test]
async fn a_tool_budget_applies_only_to_its_tool() {
    let Rig { broker, keys } = rig("api_key = 100", "").await;
    let key = Some(keys.0.as_str());
    let first = verify(&broker, key, Some("notes_write"), None).await;
    assert_eq!(first.status(), 200);
    // The tightest budget is the one reported.
    assert_eq!(
        header(&first, "ratelimit-policy"),
        "\"tool:notes_write\";q=1;w=60"
    );
    let second = verify(&broker, key, Some("notes_write"), None).await;
    assert_eq!(second.status(), 429);
    assert_eq!(header(&second, "retry-after"), "60");
    assert_eq!(
        header(&second, "ratelimit"),
        "\"tool:notes_write\";r=0;t=60"
    );
    // Other tools, and other requests, are not held back by it.
    let other = statuses(&broker, key, Some("notes_read"), None, 3).await;
    assert_eq!(other, [200, 200, 200]);
    assert_eq!(statuses(&broker, key, None, None, 1).await, [200]);
    // A POST whose headers cannot stand for its body could be any call: it spends
    // every tool budget, so it cannot be used to get around one.
    let unseen = http()
        .get(broker.at("/auth/verify"))
        .header("x-original-uri", "/mcp")
        .header("x-original-method", "POST")
        .bearer_auth(&keys.1)
        .send()
        .await
        .unwrap();
    assert_eq!(unseen.status(), 200);
    assert_eq!(
        verify(&broker, Some(&keys.1), Some("notes_write"), None)
            .await
            .status(),
        429
    );
    broker.stop().await;
}

#[actix_web::test]
async fn with_the_limits_off_nothing_is_counted_or_reported() {
    let Rig { broker, keys } = rig("enabled = false\napi_key = 1", "").await;
    let key = Some(keys.0.as_str());
    let answers = statuses(&broker, key, Some("notes_write"), None, 3).await;
    assert_eq!(answers, [200, 200, 200]);
    let allowed = verify(&broker, key, None, None).await;
    assert!(allowed.headers().get("ratelimit").is_none());
    assert_eq!(
        statuses(&broker, None, None, None, 3).await,
        [401, 401, 401]
    );
    broker.stop().await;
}

#[test]
fn bad_limits_are_refused_at_start_with_their_keys() {
    let text = text(
        "key = [\"token\"]\nwindow = \"0s\"\nanonymous = 0",
        ("a", "b"),
        "",
    );
    let error = token_broker::config::load_str(&text, &Default::default())
        .unwrap_err()
        .to_string();
    for key in [
        "resources[0].rate_limit.key",
        "resources[0].rate_limit.window",
        "resources[0].rate_limit.anonymous",
    ] {
        assert!(error.contains(key), "{key} in:\n{error}");
    }
}
