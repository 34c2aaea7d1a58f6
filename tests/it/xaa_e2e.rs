//! Enterprise-managed authorization end to end with real parts: a user signs in at an
//! enterprise IdP (the development IdP, or the certified oidc-provider of
//! fixtures/oidc-provider, whose id_jag.mjs mints ID-JAGs), the client trades the ID
//! token there for an ID-JAG whose audience is the broker, presents it at the broker's
//! token endpoint (jwt-bearer) and calls a tool through the broker's gateway. Once by
//! hand over HTTP, and with the MCP TypeScript SDK's cross-app access helpers
//! (fixtures/mcp-client/sdk-xaa.mjs). A missing rig or fixture fails; it never skips.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use url::Url;

use crate::e2e_oidc_login::{Jar, follow};
use crate::e2e_oidc_provider::{Rig, start_es512_rig, start_rig};
use crate::id_jag::{JWT_BEARER, confidential};
use crate::login_sdk::run_node;
use crate::support::{TestBroker, config_text, http};

const ID_JAG: &str = "urn:ietf:params:oauth:token-type:id-jag";
const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ID_TOKEN: &str = "urn:ietf:params:oauth:token-type:id_token";
/// The rig's client for the enterprise user's MCP client (client_secret_post), and the
/// id the rig's policy says it goes by at the broker (draft §5).
const RIG_CLIENT: (&str, &str) = ("mcp-agent", "mcp-agent-secret");
const AT_BROKER: (&str, &str) = ("enterprise-agent", "enterprise-agent-secret");
/// Where the IdP sends the browser back; nothing listens there, the code is read off it.
const REDIRECT: &str = "http://127.0.0.1/callback";
/// RFC 7636 appendix B.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// A broker at its real address fronting the demo's MCP server through its gateway at
/// `/mcp`, trusting `issuer`'s ID-JAGs for `client` (keys found through the issuer's
/// discovery document unless it is the upstream IdP), with `client` registered as a
/// confidential client.
async fn broker_trusting(issuer: &str, client: (&str, &str)) -> TestBroker {
    broker_trusting_algs(issuer, client, "").await
}

/// [`broker_trusting`] with `algorithms` (a TOML line) for the issuer's entry.
async fn broker_trusting_algs(issuer: &str, client: (&str, &str), algorithms: &str) -> TestBroker {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mcp = listener.local_addr().unwrap();
    let server = token_broker::demo::mcp::serve_behind_gateway(listener).unwrap();
    actix_web::rt::spawn(server);
    let text = format!(
        r#"{}
[[gateway]]
path = "/mcp"
upstream = "http://{mcp}/mcp"

[[enterprise.issuers]]
issuer = "{issuer}"
clients = ["{}"]
max_scopes = ["notes:read", "notes:write"]
allow_insecure_http = true
{algorithms}
"#,
        config_text(),
        client.0
    );
    let broker = TestBroker::start_live(&text, Default::default(), |_| {}).await;
    confidential(&broker, client.0, client.1).await;
    broker
}

/// The user signs in to the MCP client through the rig (authorization code + PKCE, the
/// rig logs alice in without a form): the rig's token answer, with the ID token.
async fn sign_in_at_rig(rig: &Rig) -> Value {
    let mut start = Url::parse(&format!("{}/auth", rig.issuer)).unwrap();
    start
        .query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", RIG_CLIENT.0)
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("scope", "openid email")
        .append_pair("state", "xaa")
        .append_pair("nonce", "n-xaa")
        .append_pair("code_challenge", CHALLENGE)
        .append_pair("code_challenge_method", "S256");
    let (landed, hops) = follow(&mut Jar::default(), start, REDIRECT).await;
    let code = landed
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("no code: {landed} {hops:?}"));
    let response = http()
        .post(format!("{}/token", rig.issuer))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
            ("client_id", RIG_CLIENT.0),
            ("client_secret", RIG_CLIENT.1),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// The ID-JAG request at the rig (RFC 8693): its status and answer.
async fn ask_rig_for_id_jag(rig: &Rig, form: &[(&str, &str)]) -> (u16, Value) {
    let mut body = vec![
        ("grant_type", TOKEN_EXCHANGE),
        ("requested_token_type", ID_JAG),
        ("subject_token_type", ID_TOKEN),
        ("client_id", RIG_CLIENT.0),
        ("client_secret", RIG_CLIENT.1),
    ];
    body.extend_from_slice(form);
    let response = http()
        .post(format!("{}/token", rig.issuer))
        .form(&body)
        .send()
        .await
        .unwrap();
    (
        response.status().as_u16(),
        response.json().await.unwrap_or_default(),
    )
}

/// A JWT's header and payload, unverified.
fn jwt_parts(jwt: &str) -> (Value, Value) {
    let part = |i: usize| -> Value {
        let segment = jwt.split('.').nth(i).unwrap();
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(segment).unwrap()).unwrap()
    };
    (part(0), part(1))
}

/// The ID-JAG at the broker's token endpoint, as `client`.
async fn present(broker: &TestBroker, client: (&str, &str), assertion: &str) -> (u16, Value) {
    let response = http()
        .post(broker.at("/oauth/token"))
        .basic_auth(client.0, Some(client.1))
        .form(&[("grant_type", JWT_BEARER), ("assertion", assertion)])
        .send()
        .await
        .unwrap();
    (
        response.status().as_u16(),
        response.json().await.unwrap_or_default(),
    )
}

/// `tools/call` of `tool` through the gateway at `/mcp`: the JSON-RPC answer (plain
/// JSON or one SSE event).
async fn call_tool(broker: &TestBroker, token: &str, tool: &str) -> Value {
    let response = http()
        .post(broker.at("/mcp"))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                   "params": {"name": tool, "arguments": {}}})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    let json = text
        .lines()
        .find_map(|l| l.strip_prefix("data:"))
        .unwrap_or(&text);
    serde_json::from_str(json.trim()).unwrap_or_else(|_| panic!("not JSON-RPC: {text}"))
}

#[actix_web::test]
async fn an_oidc_provider_id_jag_buys_a_tool_call_through_the_gateway() {
    let rig = start_rig();
    let broker = broker_trusting(&rig.issuer, AT_BROKER).await;
    id_jag_buys_a_tool_call(&rig, &broker, "RS256").await;
}

#[actix_web::test]
async fn an_es512_id_jag_buys_a_tool_call_where_the_issuer_is_trusted_for_es512() {
    let rig = start_es512_rig();
    let broker = broker_trusting_algs(&rig.issuer, AT_BROKER, r#"algorithms = ["ES512"]"#).await;
    id_jag_buys_a_tool_call(&rig, &broker, "ES512").await;
    // Trusted for the default algorithms only, the issuer's ES512 ID-JAG is refused.
    let strict = broker_trusting(&rig.issuer, AT_BROKER).await;
    let signed_in = sign_in_at_rig(&rig).await;
    let (_, answer) = ask_rig_for_id_jag(
        &rig,
        &[
            ("subject_token", signed_in["id_token"].as_str().unwrap()),
            ("audience", &strict.url),
            ("scope", "notes:read"),
        ],
    )
    .await;
    let (status, refused) =
        present(&strict, AT_BROKER, answer["access_token"].as_str().unwrap()).await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused["error"], "invalid_grant", "{refused}");
    assert_eq!(
        refused["error_description"],
        "the assertion's signature algorithm is not allowed"
    );
}

/// The user signs in at `rig`, its MCP client trades the ID token for an ID-JAG (signed
/// with `alg`) for `broker`, the ID-JAG for an access token, and that for a tool call.
async fn id_jag_buys_a_tool_call(rig: &Rig, broker: &TestBroker, alg: &str) {
    let signed_in = sign_in_at_rig(rig).await;
    let id_token = signed_in["id_token"].as_str().unwrap();
    let mcp = broker.at("/mcp");

    let (status, answer) = ask_rig_for_id_jag(
        rig,
        &[
            ("subject_token", id_token),
            ("audience", &broker.url),
            ("resource", &mcp),
            ("scope", "notes:read"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["issued_token_type"], ID_JAG);
    assert_eq!(answer["token_type"], "N_A");
    assert_eq!(answer["scope"], "notes:read");
    assert!(answer.get("refresh_token").is_none(), "{answer}");
    let id_jag = answer["access_token"].as_str().unwrap();
    let (header, claims) = jwt_parts(id_jag);
    assert_eq!(header["typ"], "oauth-id-jag+jwt");
    assert_eq!(header["alg"], alg);
    assert_eq!(claims["iss"], rig.issuer.as_str());
    assert_eq!(claims["aud"], broker.url.as_str());
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["client_id"], AT_BROKER.0);
    assert_eq!(claims["resource"], mcp.as_str());
    assert_eq!(claims["email"], "alice@example.com");

    // The broker found the rig's keys through its discovery document.
    let (status, token) = present(broker, AT_BROKER, id_jag).await;
    assert_eq!(status, 200, "{token}");
    assert_eq!(token["scope"], "notes:read");
    let access = token["access_token"].as_str().unwrap();
    let answer = call_tool(broker, access, "whoami").await;
    let who = &answer["result"]["structuredContent"];
    assert_eq!(who["subject"], "alice", "{answer}");
    assert_eq!(who["client_id"], AT_BROKER.0, "{answer}");
    assert_eq!(who["scope"], "notes:read", "{answer}");

    // Spent: the same ID-JAG buys nothing more.
    let (status, again) = present(broker, AT_BROKER, id_jag).await;
    assert_eq!(
        (status, again["error"].as_str()),
        (400, Some("invalid_grant"))
    );
}

#[actix_web::test]
async fn oidc_provider_refuses_id_jags_outside_its_policy() {
    let rig = start_rig();
    let signed_in = sign_in_at_rig(&rig).await;
    let id_token = signed_in["id_token"].as_str().unwrap();
    let broker = "http://127.0.0.1:9";
    let refused =
        |status: u16, answer: &Value| (status, answer["error"].as_str().map(str::to_owned));
    // Its own issuer is never an audience (draft §8.3), nor a host that is not the
    // broker under test.
    for audience in [rig.issuer.as_str(), "https://elsewhere.example"] {
        let (status, answer) =
            ask_rig_for_id_jag(&rig, &[("subject_token", id_token), ("audience", audience)]).await;
        assert_eq!(
            refused(status, &answer),
            (400, Some("invalid_target".into())),
            "{answer}"
        );
    }
    // Only an ID token issued to the asking client: not its access token, not garbage.
    let access = signed_in["access_token"].as_str().unwrap();
    for subject in [access, "not-a-token"] {
        let (status, answer) =
            ask_rig_for_id_jag(&rig, &[("subject_token", subject), ("audience", broker)]).await;
        assert_eq!(
            refused(status, &answer),
            (400, Some("invalid_grant".into())),
            "{answer}"
        );
    }
    // A scope outside the client's policy.
    let (status, answer) = ask_rig_for_id_jag(
        &rig,
        &[
            ("subject_token", id_token),
            ("audience", broker),
            ("scope", "admin"),
        ],
    )
    .await;
    assert_eq!(
        refused(status, &answer),
        (400, Some("invalid_scope".into())),
        "{answer}"
    );
    // A client the policy does not name, with an ID token of its own kind.
    let response = http()
        .post(format!("{}/token", rig.issuer))
        .basic_auth("token-broker", Some("token-broker-secret"))
        .form(&[
            ("grant_type", TOKEN_EXCHANGE),
            ("requested_token_type", ID_JAG),
            ("subject_token_type", ID_TOKEN),
            ("subject_token", id_token),
            ("audience", broker),
        ])
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let answer: Value = response.json().await.unwrap();
    assert_eq!(
        refused(status, &answer),
        (400, Some("unauthorized_client".into())),
        "{answer}"
    );
}

/// sdk-xaa.mjs against `broker`'s `/mcp` with the IdP at `idp`: what the user saw, with
/// exactly one ID-JAG request and one broker token request behind it.
async fn sdk_cross_app_access(
    broker: &TestBroker,
    idp: &str,
    idp_client: (&str, &str),
    client: (&str, &str),
) -> Value {
    let args = [
        ("--mcp", broker.at("/mcp")),
        ("--idp", idp.to_owned()),
        ("--idp-client", idp_client.0.to_owned()),
        ("--idp-secret", idp_client.1.to_owned()),
        ("--client", client.0.to_owned()),
        ("--secret", client.1.to_owned()),
        ("--tool", "whoami".to_owned()),
    ]
    .into_iter()
    .flat_map(|(k, v)| [k.to_owned(), v])
    .collect();
    assert!(
        crate::login_sdk::fixture_dir()
            .join("node_modules/@modelcontextprotocol/client")
            .exists(),
        "@modelcontextprotocol/client is not installed: run `bash scripts/mcp-client-setup.sh`"
    );
    let result = run_node("sdk-xaa.mjs", args).await;
    assert_eq!(result["ok"], true, "{result:#}");
    assert_eq!(result["signed_in"], true, "{result:#}");
    assert_eq!(result["id_jag_requests"], 1, "{result:#}");
    assert_eq!(result["broker_token_requests"], 1, "{result:#}");
    // The SDK named the broker by its issuer and the MCP server by its resource.
    assert_eq!(result["id_jag_audience"], broker.url.as_str(), "{result:#}");
    assert_eq!(result["id_jag_resource"], broker.at("/mcp"), "{result:#}");
    assert_eq!(result["tool_structured"]["subject"], "alice", "{result:#}");
    assert_eq!(
        result["tool_structured"]["client_id"], client.0,
        "{result:#}"
    );
    assert_eq!(result["refresh_token_issued"], false, "{result:#}");
    let tools: Vec<&str> = result["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(tools.contains(&"whoami"), "{tools:?}");
    result
}

/// The demo's enterprise set-up: the development IdP is the upstream provider and the
/// ID-JAG issuer, and demo-agent goes by the same id at both. (The demo's resources
/// also have an `exchange_audience`, which an ID-JAG grant cannot serve: not here.)
#[actix_web::test]
async fn the_typescript_sdk_trades_a_dev_idp_id_jag_for_a_tool_call() {
    let demo_agent = ("demo-agent", "demo-agent-secret");
    let broker = broker_trusting(crate::support::UPSTREAM_PLACEHOLDER, demo_agent).await;
    sdk_cross_app_access(&broker, &broker.idp.url, demo_agent, demo_agent).await;
}

/// With the certified provider as the enterprise IdP (not the broker's upstream): the
/// client has one id there and another at the broker.
#[actix_web::test]
async fn the_typescript_sdk_trades_an_oidc_provider_id_jag_for_a_tool_call() {
    let rig = start_rig();
    let broker = broker_trusting(&rig.issuer, AT_BROKER).await;
    let result = sdk_cross_app_access(&broker, &rig.issuer, RIG_CLIENT, AT_BROKER).await;
    assert_eq!(
        result["tool_structured"]["scope"], "notes:read",
        "{result:#}"
    );
}
