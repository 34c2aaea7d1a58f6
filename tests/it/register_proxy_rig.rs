//! `registration.mode = "proxy"` in front of a real provider (the oidc-provider rig of
//! e2e_oidc_provider) and the dev IdP, driven by a real MCP client: the TypeScript
//! SDK registers with the scope it takes from `scopes_supported`, and must still log
//! in, call a tool and refresh.

use actix_web::middleware::from_fn;
use actix_web::web;
use serde_json::Value;
use token_broker::http::protect;
use token_broker::store::ClientOrigin;

use crate::e2e_oidc_provider::{Rig, start_rig};
use crate::login_sdk::run_node;
use crate::support::{TestBroker, UPSTREAM_PLACEHOLDER, config_text};

pub fn proxy_text(issuer: Option<&str>) -> String {
    let text = config_text().replace(
        "[upstream]",
        "[registration]\nmode = \"proxy\"\n\n[upstream]",
    );
    match issuer {
        Some(issuer) => text.replace(UPSTREAM_PLACEHOLDER, issuer),
        None => text,
    }
}

/// A proxy-mode broker at its real address with the demo's MCP server at `/mcp`, in
/// front of the rig (or, without one, the dev IdP).
pub async fn proxy_broker(rig: Option<&Rig>) -> TestBroker {
    let text = proxy_text(rig.map(|r| r.issuer.as_str()));
    TestBroker::start_live(&text, Default::default(), |cfg| {
        cfg.service(
            web::scope("/mcp")
                .wrap(from_fn(protect::require_token))
                .configure(|inner| token_broker::demo::mcp::configure(inner, "")),
        );
    })
    .await
}

/// The SDK's whole run succeeded: registered with the resource's scopes, logged in,
/// called a tool as alice, refreshed.
fn assert_logged_in(result: &Value) {
    assert_eq!(result["ok"], true, "{result:#}");
    assert_eq!(result["registered"], true);
    assert_eq!(result["refresh_token_issued"], true, "{result:#}");
    assert!(
        result["whoami"]
            .as_str()
            .unwrap_or_default()
            .contains("alice"),
        "{result:#}"
    );
    assert_eq!(result["refreshed"], true, "{result:#}");
}

/// The one upstream client the broker registered for the SDK.
async fn only_upstream_client(broker: &TestBroker) -> (String, Option<String>) {
    assert_eq!(broker.state.store.count_clients().await.unwrap(), 1);
    let all = broker
        .state
        .store
        .stale_clients(u64::MAX, u64::MAX)
        .await
        .unwrap();
    let ClientOrigin::Proxied {
        upstream_client_id,
        registration_client_uri,
        ..
    } = all[0].origin.clone()
    else {
        panic!("not proxied: {:?}", all[0].origin);
    };
    (upstream_client_id, registration_client_uri)
}

#[actix_web::test]
async fn the_typescript_sdk_with_its_scope_logs_in_through_oidc_provider_in_proxy_mode() {
    let rig = start_rig();
    let broker = proxy_broker(Some(&rig)).await;
    let result = run_node("sdk-login.mjs", vec![broker.url.clone()]).await;
    assert_logged_in(&result);
    let (upstream_id, uri) = only_upstream_client(&broker).await;
    assert_ne!(
        upstream_id, "token-broker",
        "the broker's own client was used"
    );
    assert!(uri.unwrap().starts_with(&rig.issuer));
    broker.stop().await;
}

#[actix_web::test]
async fn the_typescript_sdk_with_its_scope_logs_in_through_the_dev_idp_in_proxy_mode() {
    let broker = proxy_broker(None).await;
    let result = run_node("sdk-login.mjs", vec![broker.url.clone()]).await;
    assert_logged_in(&result);
    let (upstream_id, _) = only_upstream_client(&broker).await;
    assert_ne!(
        upstream_id, "token-broker",
        "the broker's own client was used"
    );
    broker.stop().await;
}

/// The SDK's low-level functions, driven step by step, registered and logged in with
/// the resource's whole `scopes_supported`.
fn assert_flow(result: &Value) {
    assert_eq!(result["ok"], true, "{result:#}");
    assert_eq!(result["scope"], "notes:read notes:write", "{result:#}");
    assert_eq!(result["registered_scope"], "notes:read notes:write");
    assert_eq!(result["state_matches"], true);
    assert_eq!(result["token_scope"], "notes:read notes:write");
    assert_eq!(result["refresh_token_issued"], true);
    assert!(
        result["whoami"]
            .as_str()
            .unwrap_or_default()
            .contains("alice"),
        "{result:#}"
    );
    assert_eq!(result["refreshed"], true, "{result:#}");
    assert!(
        result["whoami_after_refresh"]
            .as_str()
            .unwrap_or_default()
            .contains("alice"),
        "{result:#}"
    );
}

#[actix_web::test]
async fn the_sdks_low_level_flow_with_its_scope_logs_in_through_oidc_provider_in_proxy_mode() {
    let rig = start_rig();
    let broker = proxy_broker(Some(&rig)).await;
    assert_flow(&run_node("sdk-flow.mjs", vec![broker.url.clone()]).await);
    broker.stop().await;
}

#[actix_web::test]
async fn the_sdks_low_level_flow_with_its_scope_logs_in_through_the_dev_idp_in_proxy_mode() {
    let broker = proxy_broker(None).await;
    assert_flow(&run_node("sdk-flow.mjs", vec![broker.url.clone()]).await);
    broker.stop().await;
}
