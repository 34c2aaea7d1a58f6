//! The transport's revisions at the gateway: 2026-07-28 and later are stateless (GET
//! and DELETE 405, session ids neither passed on nor handed out); earlier ones keep
//! their sessions, each usable only by the caller (subject and client) that opened it;
//! a tool list filtered for a caller is `cacheScope: "private"`.

use serde_json::{Value, json};

use super::mcp_upstream::TTL_MS;
use super::{Rig, data_of, list, names, rig, rpc};
use crate::exchange::{alice, claims};
use crate::login_consent::register;
use crate::login_flow::{login, redeem};
use crate::support::{TestBroker, http};

const LEGACY: (&str, &str) = ("mcp-protocol-version", "2025-11-25");

fn initialize() -> Value {
    json!({ "jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {} })
}

/// A token for alice through a client of its own (`name`: identical registrations
/// are one client).
async fn alice_through(broker: &TestBroker, name: &str) -> String {
    let client = register(broker, name).await;
    let code = login(broker, &client, &[]).await;
    let (_, body) = redeem(broker, &client, &code).await;
    body["access_token"].as_str().unwrap().to_owned()
}

/// A GET or DELETE on `/mcp` with `token` and these headers.
async fn send(
    rig: &Rig,
    method: reqwest::Method,
    token: &str,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut request = http()
        .request(method, rig.broker.at("/mcp"))
        .bearer_auth(token);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

#[actix_web::test]
async fn stateless_revisions_get_405_for_get_and_delete_and_no_session_ids() {
    let rig = rig().await;
    let token = alice(&rig.broker).await;
    for version in ["2026-07-28", "2027-03-01"] {
        for method in [reqwest::Method::GET, reqwest::Method::DELETE] {
            let headers = [
                ("mcp-protocol-version", version),
                ("mcp-session-id", "sess-42"),
            ];
            let refused = send(&rig, method.clone(), &token, &headers).await;
            assert_eq!(refused.status(), 405, "{method} {version}");
            assert_eq!(refused.headers()["allow"], "POST");
        }
    }
    assert!(
        rig.upstream.seen().is_empty(),
        "nothing reached the MCP server"
    );

    // A POST goes on without the session or resumption the client still sends, and
    // the server's session id does not come back.
    let meta = json!({ "io.modelcontextprotocol/protocolVersion": "2026-07-28" });
    let body =
        json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": { "_meta": meta } });
    let headers = [
        ("mcp-protocol-version", "2026-07-28"),
        ("mcp-session-id", "sess-42"),
        ("last-event-id", "ev-1"),
    ];
    let answered = rpc(&rig.broker, "/mcp", Some(&token), &body, &headers).await;
    assert_eq!(answered.status(), 200);
    assert!(answered.headers().get("mcp-session-id").is_none());
    let seen = rig.upstream.last();
    assert_eq!(seen.header("mcp-protocol-version"), Some("2026-07-28"));
    assert!(seen.header("mcp-session-id").is_none());
    assert!(seen.header("last-event-id").is_none());
}

#[actix_web::test]
async fn a_protocol_version_that_is_not_a_date_or_not_the_body_s_is_refused() {
    let rig = rig().await;
    let token = alice(&rig.broker).await;
    for version in ["latest", "2026-07-28x"] {
        let header = [("mcp-protocol-version", version)];
        let refused = rpc(&rig.broker, "/mcp", Some(&token), &list(1), &header).await;
        assert_eq!(refused.status(), 400, "{version}");
        let body: Value = refused.json().await.unwrap();
        assert_eq!(body["error"]["code"], -32020);
        let stream = send(&rig, reqwest::Method::GET, &token, &header).await;
        assert_eq!(stream.status(), 400, "{version}");
    }
    let meta = json!({ "io.modelcontextprotocol/protocolVersion": "2025-11-25" });
    let body =
        json!({ "jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": { "_meta": meta } });
    let header = [("mcp-protocol-version", "2026-07-28")];
    let mismatch = rpc(&rig.broker, "/mcp", Some(&token), &body, &header).await;
    assert_eq!(mismatch.status(), 400);
    let answer: Value = mismatch.json().await.unwrap();
    assert_eq!(
        (answer["id"].clone(), answer["error"]["code"].clone()),
        (json!(2), json!(-32020))
    );
    assert!(
        rig.upstream.seen().is_empty(),
        "nothing reached the MCP server"
    );
}

#[actix_web::test]
async fn a_legacy_session_serves_only_the_subject_and_client_that_opened_it() {
    let rig = rig().await;
    let token = alice(&rig.broker).await;
    let started = rpc(&rig.broker, "/mcp", Some(&token), &initialize(), &[]).await;
    assert_eq!(started.status(), 200);
    let session = started.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let before = rig.upstream.seen().len();

    // Another subject (an API key), the same user through another client, and the
    // server's own id as it is: unknown sessions, whatever the method.
    let same_user_other_client = alice_through(&rig.broker, "Another app").await;
    let (mine, theirs) = (claims(&token), claims(&same_user_other_client));
    assert_eq!(mine["sub"], theirs["sub"]);
    assert_ne!(mine["client_id"], theirs["client_id"]);
    let others = [
        (rig.key.as_str(), session.as_str()),
        (same_user_other_client.as_str(), session.as_str()),
        (token.as_str(), "sess-42"),
    ];
    for (caller, presented) in others {
        let headers = [("mcp-session-id", presented), LEGACY];
        let posted = rpc(&rig.broker, "/mcp", Some(caller), &list(3), &headers).await;
        assert_eq!(posted.status(), 404, "POST {presented}");
        let body: Value = posted.json().await.unwrap();
        assert_eq!(body["id"], 3);
        for method in [reqwest::Method::GET, reqwest::Method::DELETE] {
            let refused = send(&rig, method.clone(), caller, &headers).await;
            assert_eq!(refused.status(), 404, "{method} {presented}");
        }
    }
    assert_eq!(
        rig.upstream.seen().len(),
        before,
        "nothing reached the MCP server"
    );

    // The opener's requests go on with the server's own id.
    let headers = [("mcp-session-id", session.as_str()), LEGACY];
    let listed = rpc(&rig.broker, "/mcp", Some(&token), &list(4), &headers).await;
    assert_eq!(listed.status(), 200);
    assert_eq!(listed.headers()["mcp-session-id"], session.as_str());
    for method in [reqwest::Method::GET, reqwest::Method::DELETE] {
        let ok = send(&rig, method.clone(), &token, &headers).await;
        assert!(ok.status().is_success(), "{method}: {}", ok.status());
        let seen = rig.upstream.last();
        assert_eq!(seen.method, method.as_str());
        assert_eq!(seen.header("mcp-session-id"), Some("sess-42"));
    }
    // The other client of the same user opens a session of its own.
    let own = rpc(
        &rig.broker,
        "/mcp",
        Some(&same_user_other_client),
        &initialize(),
        &[],
    )
    .await;
    let own = own.headers()["mcp-session-id"].to_str().unwrap().to_owned();
    assert_ne!(own, session);
    let headers = [("mcp-session-id", own.as_str()), LEGACY];
    let listed = rpc(
        &rig.broker,
        "/mcp",
        Some(&same_user_other_client),
        &list(5),
        &headers,
    )
    .await;
    assert_eq!(listed.status(), 200);
}

#[actix_web::test]
async fn filtered_tool_lists_are_private_and_keep_the_server_s_ttl() {
    let rig = rig().await;
    let token = alice(&rig.broker).await;
    let plain: Value = rpc(&rig.broker, "/mcp", Some(&token), &list(1), &[])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(names(&plain), ["notes_read", "get_note", "health"]);
    assert_eq!(plain["result"]["cacheScope"], "private");
    assert_eq!(plain["result"]["ttlMs"], TTL_MS);

    let streamed = rpc(&rig.broker, "/mcp/sse", Some(&token), &list(2), &[]).await;
    assert_eq!(streamed.headers()["x-accel-buffering"], "no");
    let events = data_of(&streamed.text().await.unwrap());
    assert_eq!(events[1]["result"]["cacheScope"], "private");
    assert_eq!(events[1]["result"]["ttlMs"], TTL_MS);

    // A caller who may see every listed tool still gets a list of its own.
    let key_list: Value = rpc(&rig.broker, "/mcp", Some(&rig.key), &list(3), &[])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(key_list["result"]["cacheScope"], "private");
}

/// Two brokers on one Redis, no `consent.cookie_key` and approvals not remembered:
/// the binding key still comes from the store, so a session opened through one
/// replica serves its opener through the other, and no one else there.
#[actix_web::test]
async fn replicas_on_one_redis_honour_each_others_sessions() {
    use std::net::TcpListener;

    use token_broker::clock::Clock;

    use crate::redis_outage::start_broker;
    use crate::replicas::{Redis, replica_config};
    use crate::support::TestDevIdp;

    let (upstream, url) = super::mcp_upstream::start_upstream();
    let redis = Redis::start();
    let clock = Clock::system();
    let idp = TestDevIdp::start_with_clock(Default::default(), clock.clone()).await;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let public_url = format!("http://{}", listener.local_addr().unwrap());
    let shared = replica_config(&public_url, &idp.url, &redis.url());
    let text = shared.replace(
        "cookie_key = \"a shared cookie key for both replicas\"\n",
        "remember_for = \"0s\"\n",
    );
    assert_ne!(text, shared);
    let text = format!("{text}\n[[gateway]]\npath = \"/mcp\"\nupstream = \"{url}/json\"\n");
    let a = start_broker(&text, listener, &clock);
    let b = start_broker(&text, TcpListener::bind("127.0.0.1:0").unwrap(), &clock);
    let token = |name: &'static str| {
        let a = a.clone();
        async move {
            let client = register(a.as_str(), name).await;
            let code = login(a.as_str(), &client, &[]).await;
            let (_, body) = redeem(a.as_str(), &client, &code).await;
            body["access_token"].as_str().unwrap().to_owned()
        }
    };
    let (opener, other) = (token("Opener").await, token("Other").await);
    let post = |broker: &str, token: &str, body: Value, session: Option<&str>| {
        let mut request = http()
            .post(format!("{broker}/mcp"))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .json(&body);
        if let Some(session) = session {
            request = request
                .header("mcp-session-id", session)
                .header(LEGACY.0, LEGACY.1);
        }
        request.send()
    };
    let started = post(&a, &opener, initialize(), None).await.unwrap();
    assert_eq!(started.status(), 200);
    let session = started.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let on_b = post(&b, &opener, list(1), Some(&session)).await.unwrap();
    assert_eq!(on_b.status(), 200, "the opener, through the other replica");
    assert_eq!(upstream.last().header("mcp-session-id"), Some("sess-42"));
    let before = upstream.seen().len();
    let stolen = post(&b, &other, list(2), Some(&session)).await.unwrap();
    assert_eq!(stolen.status(), 404);
    assert_eq!(upstream.seen().len(), before);
}
