//! Rate limits on replicas: two brokers on one Redis spend one budget (each alone would
//! admit the whole burst, so a per-process count fails this), whichever door — forward-
//! auth or the gateway — a request takes; and with Redis gone a limited resource
//! answers 503 with `Retry-After` — neither every request let through unmetered nor all
//! refused without a word.

use std::net::TcpListener;

use serde_json::{Value, json};
use token_broker::clock::Clock;

use crate::redis_outage::start_broker;
use crate::replicas::{Redis, replica_config};
use crate::support::{TestDevIdp, http};

/// The replicas' shared configuration, the resource limited to 3 provider-token
/// requests a minute per caller.
fn limited(public_url: &str, idp: &str, redis: &str) -> String {
    let resource = "scopes_supported = [\"notes:read\", \"notes:write\"]\n";
    let text = replica_config(public_url, idp, redis);
    assert!(text.contains(resource));
    // The gateway's MCP server is never reached: every request here is refused first.
    text.replacen(
        resource,
        &format!("{resource}\n[resources.rate_limit]\nupstream_token = 3\n"),
        1,
    ) + "\n[[gateway]]\npath = \"/mcp\"\nupstream = \"http://127.0.0.1:9/mcp\"\n"
}

/// A `tools/list` through the gateway.
async fn through_gateway(broker: &str, token: &str) -> reqwest::Response {
    http()
        .post(format!("{broker}/mcp"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .bearer_auth(token)
        .body(json!({ "jsonrpc": "2.0", "id": 9, "method": "tools/list" }).to_string())
        .send()
        .await
        .unwrap()
}

async fn verify(broker: &str, token: &str) -> reqwest::Response {
    http()
        .get(format!("{broker}/auth/verify"))
        .header("x-original-uri", "/mcp")
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

async fn status(broker: &str, token: &str) -> u16 {
    verify(broker, token).await.status().as_u16()
}

#[actix_web::test]
async fn two_brokers_on_one_redis_share_one_budget_and_redis_down_is_503() {
    let redis = Redis::start();
    let clock = Clock::system();
    let idp = TestDevIdp::start_with_clock(Default::default(), clock.clone()).await;
    let (first, second) = (
        TcpListener::bind("127.0.0.1:0").unwrap(),
        TcpListener::bind("127.0.0.1:0").unwrap(),
    );
    // Both answer for one public URL, as replicas behind one proxy do.
    let public_url = format!("http://{}", first.local_addr().unwrap());
    let text = limited(&public_url, &idp.url, &redis.url());
    let a = start_broker(&text, first, &clock);
    let b = start_broker(&text, second, &clock);
    let token = idp
        .service_token(&format!("{public_url}/mcp"), "notes:read")
        .await;

    assert_eq!(
        [
            status(&a, &token).await,
            status(&a, &token).await,
            status(&b, &token).await
        ],
        [200, 200, 200]
    );
    // The burst is spent for both, not per replica.
    let refused = verify(&b, &token).await;
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().contains_key("retry-after"));
    assert_eq!(status(&a, &token).await, 429);
    // The gateway spends the same budget: a JSON-RPC error inside the 429.
    let gateway = through_gateway(&b, &token).await;
    assert_eq!(gateway.status(), 429);
    let body: Value = gateway.json().await.unwrap();
    assert_eq!(
        (body["id"].as_i64(), body["error"]["code"].as_i64()),
        (Some(9), Some(-32029))
    );

    // Redis gone: the limit cannot be checked, so nothing passes, with a word why.
    drop(redis);
    let down = verify(&a, &token).await;
    assert_eq!(down.status(), 503);
    assert_eq!(down.headers()["retry-after"], "5");
    assert_eq!(down.headers()["x-auth-status"], "503");
    let gateway = through_gateway(&b, &token).await;
    assert_eq!(gateway.status(), 503);
    assert_eq!(gateway.headers()["retry-after"], "5");
    let body: Value = gateway.json().await.unwrap();
    assert_eq!(body["id"], 9, "{body}");
    assert!(body["error"]["code"].is_i64(), "{body}");
}
