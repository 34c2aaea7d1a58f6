//! Address lists (`[resources.addresses]`, `[server.oauth_addresses]`): judged on the
//! client IP before anything else of a request is read — a denied address gets 403
//! whatever token it carries (a forged one is not even looked at), spends no budget,
//! and at the token endpoint spends no code; `X-Forwarded-For` counts only from a peer
//! in `server.trusted_proxies`. Refusals are counted by target and list.

use serde_json::{Value, json};

use crate::login_consent::register;
use crate::login_flow::{login, redeem};
use crate::support::{TestBroker, config_text, http};

const ADMIN: &str = "admin-token-of-at-least-thirty-two-bytes";

/// The test configuration with `trusted` as `server.trusted_proxies`, `lists` right
/// after the resource (its `[resources.addresses]`, say), `tail` at the end.
fn text(trusted: &str, lists: &str, tail: &str) -> String {
    config_text().replace(
        "workers = 1\n",
        &format!("workers = 1\ntrusted_proxies = [{trusted}]\n"),
    ) + lists
        + &format!("\n[admin]\ntoken = \"{ADMIN}\"\n")
        + tail
}

async fn verify(broker: &TestBroker, token: Option<&str>, from: Option<&str>) -> reqwest::Response {
    let mut request = http()
        .get(broker.at("/auth/verify"))
        .header("x-original-uri", "/mcp")
        .header("x-original-method", "POST")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/list");
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(ip) = from {
        request = request.header("x-forwarded-for", ip);
    }
    request.send().await.unwrap()
}

async fn status(broker: &TestBroker, token: Option<&str>, from: Option<&str>) -> u16 {
    verify(broker, token, from).await.status().as_u16()
}

/// 403 with the RFC 6749 body naming the address as the reason.
async fn assert_refused(response: reqwest::Response) {
    assert_eq!(response.status(), 403);
    assert!(response.headers().get("www-authenticate").is_none());
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "access_denied", "{body}");
    assert_eq!(
        body["error_description"],
        "requests from this address are not allowed"
    );
}

async fn metrics(broker: &TestBroker) -> String {
    let response = http().get(broker.at("/metrics")).send().await.unwrap();
    response.text().await.unwrap()
}

#[actix_web::test]
async fn a_denied_address_is_refused_before_its_token_is_read_and_spends_nothing() {
    let lists = "\n[resources.rate_limit]\nanonymous = 2\n\n[resources.addresses]\ndeny = [\"203.0.113.0/24\"]\n";
    let broker = TestBroker::start_live(
        &text("\"127.0.0.1/32\"", lists, ""),
        Default::default(),
        |_| {},
    )
    .await;
    let valid = broker
        .idp
        .service_token(&broker.at("/mcp"), "notes:read")
        .await;
    let denied = Some("203.0.113.9");

    // Forged, valid or none: 403, not 401 — the token is never looked at.
    assert_refused(verify(&broker, Some("forged.not.ajwt"), denied).await).await;
    assert_refused(verify(&broker, Some(&valid), denied).await).await;
    for _ in 0..3 {
        assert_refused(verify(&broker, None, denied).await).await;
    }
    // From elsewhere the same tokens are judged as usual.
    assert_eq!(
        status(&broker, Some(&valid), Some("198.51.100.1")).await,
        200
    );
    assert_eq!(
        status(&broker, Some("forged.not.ajwt"), Some("198.51.100.1")).await,
        401
    );

    // The five refusals spent nothing of the denied address's anonymous budget (2).
    let budgets: Value = http()
        .get(broker.at("/admin/rate-limits"))
        .bearer_auth(ADMIN)
        .query(&[
            ("resource", broker.at("/mcp").as_str()),
            ("ip", "203.0.113.9"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let anonymous = budgets["budgets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["rule"] == "anonymous")
        .unwrap();
    assert_eq!(anonymous["remaining"], 2, "{budgets}");

    let metrics = metrics(&broker).await;
    let line = format!(
        "token_broker_address_refused_total{{list=\"deny\",target=\"{}\"}} 5",
        broker.at("/mcp")
    );
    assert!(metrics.contains(&line), "{line} in\n{metrics}");
    assert!(!metrics.contains("203.0.113"), "no address in a label");
}

#[actix_web::test]
async fn an_allow_list_believes_forwarded_for_only_from_a_trusted_peer() {
    let lists = "\n[resources.addresses]\nallow = [\"10.0.0.0/8\"]\n";
    // No trusted proxy: the peer (127.0.0.1) is the client, whatever it claims.
    let direct = TestBroker::start_live(&text("", lists, ""), Default::default(), |_| {}).await;
    assert_refused(verify(&direct, None, Some("10.1.2.3")).await).await;
    assert_refused(verify(&direct, None, None).await).await;

    // Behind a trusted proxy, its X-Forwarded-For names the client.
    let proxied = TestBroker::start_live(
        &text("\"127.0.0.1/32\"", lists, ""),
        Default::default(),
        |_| {},
    )
    .await;
    let valid = proxied
        .idp
        .service_token(&proxied.at("/mcp"), "notes:read")
        .await;
    assert_eq!(status(&proxied, Some(&valid), Some("10.1.2.3")).await, 200);
    assert_eq!(status(&proxied, None, Some("10.1.2.3")).await, 401);
    assert_refused(verify(&proxied, Some(&valid), Some("192.0.2.1")).await).await;
    // A client-written left-most entry cannot hide the hop the proxy saw.
    assert_refused(verify(&proxied, Some(&valid), Some("10.1.2.3, 192.0.2.1")).await).await;
    // The proxy's own address is not on the list either.
    assert_refused(verify(&proxied, Some(&valid), None).await).await;
    let metrics = metrics(&proxied).await;
    assert!(
        metrics.contains("token_broker_address_refused_total{list=\"allow\""),
        "{metrics}"
    );
}

#[actix_web::test]
async fn the_gateway_refuses_a_denied_address_before_reading_its_body() {
    let lists = "\n[resources.addresses]\ndeny = [\"127.0.0.1/32\"]\n";
    // Never reached: every request here is refused first.
    let gateway = "\n[[gateway]]\npath = \"/mcp\"\nupstream = \"http://127.0.0.2:9/mcp\"\n";
    let broker =
        TestBroker::start_live(&text("", lists, gateway), Default::default(), |_| {}).await;
    // Not JSON at all, with a forged token: the address is judged first.
    let response = http()
        .post(broker.at("/mcp"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .bearer_auth("forged")
        .body("{ not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["jsonrpc"], "2.0");
    assert_eq!(body["id"], Value::Null);
    assert_eq!(body["error"]["code"], -32003);
    assert_eq!(
        body["error"]["message"],
        "requests from this address are not allowed"
    );
    // GET (a 2025 stream) too.
    let stream = http()
        .get(broker.at("/mcp"))
        .header("mcp-protocol-version", "2025-06-18")
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 403);
}

#[actix_web::test]
async fn the_token_endpoint_refuses_a_denied_address_before_the_code_is_spent() {
    let lists = "\n[server.oauth_addresses]\ndeny = [\"203.0.113.0/24\"]\n";
    let broker = TestBroker::start_live(
        &text("\"127.0.0.1/32\"", lists, ""),
        Default::default(),
        |_| {},
    )
    .await;
    let denied = "203.0.113.9";

    let registration = http()
        .post(broker.at("/oauth/register"))
        .header("x-forwarded-for", denied)
        .json(
            &json!({ "client_name": "x", "redirect_uris": ["http://127.0.0.1:1/cb"],
                       "token_endpoint_auth_method": "none" }),
        )
        .send()
        .await
        .unwrap();
    assert_refused(registration).await;
    let authorize = http()
        .get(broker.at("/oauth/authorize?client_id=unknown"))
        .header("x-forwarded-for", denied)
        .send()
        .await
        .unwrap();
    assert_refused(authorize).await;

    let client = register(&broker, "Addresses").await;
    let code = login(&broker, &client, &[]).await;
    // From the denied address: refused before the client or the code is looked at.
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", client.as_str()),
        ("code", code.as_str()),
        ("redirect_uri", crate::login_consent::REDIRECT),
        ("code_verifier", crate::login_flow::VERIFIER),
    ];
    let refused = http()
        .post(broker.at("/oauth/token"))
        .header("x-forwarded-for", denied)
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_refused(refused).await;
    // The code is unspent: redeemed once from an allowed address.
    let (status, body) = redeem(&broker, &client, &code).await;
    assert_eq!(status, 200, "{body}");
    let token = body["access_token"].as_str().unwrap();
    // The OAuth list is not the resource's: the token works from the same address.
    assert_eq!(status_of(&broker, token, denied).await, 200);
    let metrics = metrics(&broker).await;
    assert!(
        metrics.contains("token_broker_address_refused_total{list=\"deny\",target=\"oauth\"} 3"),
        "{metrics}"
    );
}

async fn status_of(broker: &TestBroker, token: &str, from: &str) -> u16 {
    status(broker, Some(token), Some(from)).await
}
