//! The consent page in a real browser: headless Chromium (Debian's, installed by
//! scripts/mcp-client-setup.sh) renders it, approves and denies through it, and a
//! forged form post without the CSRF token is refused.

use serde_json::json;

use crate::login_consent::{CHALLENGE, live_broker};
use crate::login_sdk::run_node;
use crate::support::http;

#[actix_web::test]
async fn chromium_renders_the_page_and_approve_deny_and_forgery_behave() {
    let broker = live_broker().await;
    // A native client's loopback redirect URI: any port matches (RFC 8252 §7.3).
    let registered: serde_json::Value = http()
        .post(broker.at("/oauth/register"))
        .json(&json!({
            "client_name": "Browser Test Client",
            "redirect_uris": ["http://127.0.0.1/callback"],
            "token_endpoint_auth_method": "none",
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let client = registered["client_id"].as_str().unwrap().to_owned();
    let result = run_node(
        "consent-browser.mjs",
        vec![broker.url.clone(), client, CHALLENGE.to_owned()],
    )
    .await;
    assert_eq!(result["ok"], true, "{result:#}");

    let approve = &result["approve"];
    assert_eq!(approve["view"]["status"], 200);
    assert_eq!(approve["view"]["title"], "Allow Browser Test Client?");
    assert_eq!(approve["view"]["scripts"], 0, "no JavaScript on the page");
    assert_eq!(
        approve["view"]["buttons"],
        serde_json::json!(["approve", "deny"])
    );
    let text = approve["view"]["text"].as_str().unwrap();
    assert!(
        text.contains("notes:read") && text.contains(&broker.at("/mcp")),
        "{text}"
    );
    assert!(
        text.contains("on your own device"),
        "loopback warning: {text}"
    );
    let back = &approve["redirect"];
    assert!(
        back["code"].as_str().is_some_and(|c| c.len() >= 40),
        "{back}"
    );
    assert_eq!(back["state"], "approve-state");
    assert_eq!(back["iss"], broker.url.as_str());

    let deny = &result["deny"]["redirect"];
    assert_eq!(deny["error"], "access_denied");
    assert_eq!(deny["state"], "deny-state");
    assert!(deny.get("code").is_none());

    let forged = &result["forged"];
    assert_eq!(forged["status"], 403, "{forged}");
    assert!(forged["url"].as_str().unwrap().starts_with(&broker.url));
    // Only the approved login reached the provider.
    assert_eq!(broker.idp.calls("authorize").await, 1);
}
