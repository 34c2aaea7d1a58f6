//! Identity-aware rules and headers (`[resources.allow]`, `[upstream.claims]`): a user
//! outside a resource's rule ends the login with `access_denied` at the client's
//! redirect URI and gets no grant; one inside reaches it, and forward-auth and the
//! gateway name their email, username and groups; a group removed at the dev IdP
//! refuses the next request once the provider has been asked again (a refresh); a
//! provider token is judged on its own claims; the refusals are audited.

use std::time::Duration;

use serde_json::{Value, json};
use token_broker::dev_idp::DevIdpConfig;
use token_broker::store::{GrantFilter, Page};

use crate::audit_trail::recorded;
use crate::gateway::mcp_upstream::start_upstream;
use crate::login_consent::register;
use crate::login_flow::{login, login_redirect, redeem, refresh};
use crate::support::{TestBroker, config_text, http};

/// The test configuration with `rule` as the resource's `[resources.allow]` and
/// `extra` after it.
fn text(rule: &str, extra: &str) -> String {
    format!("{}\n[resources.allow]\n{rule}\n{extra}", config_text())
}

/// The dev IdP logging everyone in as `user` (alice: mcp-users and staff; bob: staff).
fn as_user(user: &str) -> DevIdpConfig {
    DevIdpConfig {
        default_user: user.to_owned(),
        ..DevIdpConfig::default()
    }
}

async fn broker(rule: &str, user: &str) -> TestBroker {
    // The audit recorder is in place before anything happens.
    recorded();
    TestBroker::start_live(&text(rule, ""), as_user(user), |_| {}).await
}

fn resource(broker: &TestBroker) -> String {
    broker.at("/mcp")
}

fn query(url: &url::Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// `/auth/verify` for the resource: the status and the identity headers.
async fn verify(broker: &TestBroker, token: &str) -> (u16, [String; 3], String) {
    let response = http()
        .get(broker.at("/auth/verify"))
        .header("x-original-uri", "/mcp")
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    let identity = [
        header("x-auth-email"),
        header("x-auth-user"),
        header("x-auth-groups"),
    ];
    let challenge = header("www-authenticate");
    (response.status().as_u16(), identity, challenge)
}

/// A login for the resource that must be refused with `error`, with the client's
/// `state` and the broker's `iss` and no grant stored: the client.
async fn refused_login(broker: &TestBroker, error: &str) -> String {
    let client = register(broker, "Ruled out").await;
    let to = login_redirect(broker, &client, &[("resource", &resource(broker))]).await;
    assert_eq!(query(&to, "error").as_deref(), Some(error), "{to}");
    assert_eq!(query(&to, "state").as_deref(), Some("client-state"));
    assert_eq!(query(&to, "iss").as_deref(), Some(broker.url.as_str()));
    assert!(query(&to, "code").is_none());
    let filter = GrantFilter {
        client_id: Some(client.clone()),
        ..GrantFilter::default()
    };
    let grants = broker
        .state
        .store
        .list_grants(&filter, &Page::first(10))
        .await
        .unwrap();
    assert!(grants.items.is_empty(), "no grant for a refused login");
    client
}

/// A login for the resource that must be refused by its rule: `access_denied`, no
/// grant stored, the refusal audited.
async fn assert_refused_at_login(broker: &TestBroker, condition: &str) {
    let client = refused_login(broker, "access_denied").await;
    let audited = recorded().lock().unwrap().iter().any(|e| {
        e.get("event").map(String::as_str) == Some("access_denied")
            && e.get("client_id") == Some(&client)
            && e.get("condition").map(String::as_str) == Some(condition)
            && e.get("stage").map(String::as_str) == Some("login")
    });
    assert!(audited, "the refusal is in the audit trail");
}

/// Logs in for the resource and redeems the code: the token response.
async fn logged_in(broker: &TestBroker) -> (String, Value) {
    let client = register(broker, "Ruled in").await;
    let code = login(broker, &client, &[("resource", &resource(broker))]).await;
    let (status, body) = redeem(broker, &client, &code).await;
    assert_eq!(status, 200, "{body}");
    (client, body)
}

#[actix_web::test]
async fn a_user_outside_the_group_rule_is_refused_at_login_with_no_grant() {
    let broker = broker("groups_any = [\"admins\", \"mcp-admins\"]", "alice").await;
    assert_refused_at_login(&broker, "groups_any").await;
    broker.stop().await;
}

#[actix_web::test]
async fn all_of_needs_every_group_and_any_of_one() {
    let all = broker("groups_all = [\"mcp-users\", \"staff\"]", "bob").await;
    assert_refused_at_login(&all, "groups_all").await;
    all.stop().await;

    let any = broker("groups_any = [\"mcp-users\", \"admins\"]", "alice").await;
    let (_, body) = logged_in(&any).await;
    let token = body["access_token"].as_str().unwrap();
    let (status, identity, _) = verify(&any, token).await;
    assert_eq!(status, 200);
    assert_eq!(
        identity,
        ["alice@example.com", "alice", "mcp-users,staff"].map(String::from)
    );
    any.stop().await;
}

#[actix_web::test]
async fn an_email_domain_rule_admits_only_its_domain() {
    let other = broker("email_domains = [\"example.org\"]", "alice").await;
    assert_refused_at_login(&other, "email_domains").await;
    other.stop().await;

    let same = broker("email_domains = [\"EXAMPLE.com\"]", "bob").await;
    let (_, body) = logged_in(&same).await;
    let (status, identity, _) = verify(&same, body["access_token"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(identity[0], "bob@example.com");
    same.stop().await;
}

#[actix_web::test]
async fn a_group_removed_at_the_provider_refuses_requests_after_the_next_refresh() {
    let broker = broker("groups_any = [\"mcp-users\"]", "alice").await;
    let (client, body) = logged_in(&broker).await;
    let access = body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(verify(&broker, &access).await.0, 200);
    // A refresh that asks the provider again while the user is still in the group.
    broker.clock.advance(Duration::from_secs(301));
    let (status, rotated) =
        refresh(&broker, &client, body["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, 200, "{rotated}");
    let refresh_token = rotated["refresh_token"].as_str().unwrap().to_owned();

    dev_knob(
        &broker,
        "groups",
        json!({"sub": "alice", "groups": ["staff"]}),
    )
    .await;
    // The provider has not been asked since: the grant still says what it said.
    assert_eq!(verify(&broker, &access).await.0, 200);

    // Past the provider token's life, the client's refresh makes the broker refresh
    // at the provider, whose new ID token no longer lists the group: no new tokens,
    // and the access token still held is refused from its next request.
    broker.clock.advance(Duration::from_secs(301));
    let (status, refused) = refresh(&broker, &client, &refresh_token).await;
    assert_eq!(
        (status, refused["error"].as_str()),
        (400, Some("invalid_grant")),
        "{refused}"
    );
    let (status, _, challenge) = verify(&broker, &access).await;
    assert_eq!(status, 403);
    assert!(
        challenge.contains("error=\"access_denied\"") && !challenge.contains("scope="),
        "{challenge}"
    );
    let audited = recorded().lock().unwrap().iter().any(|e| {
        e.get("event").map(String::as_str) == Some("access_denied")
            && e.get("client_id") == Some(&client)
            && e.get("stage").map(String::as_str) == Some("request")
    });
    assert!(audited, "the refused request is in the audit trail");
    broker.stop().await;
}

#[actix_web::test]
async fn a_provider_token_is_judged_on_its_own_groups_claim_and_without_one_refused() {
    let broker = broker("groups_any = [\"mcp-users\"]", "alice").await;
    let now = broker.clock.unix();
    let forge = |extra: Value| {
        let mut claims = json!({
            "iss": broker.idp.url, "sub": "svc", "aud": resource(&broker),
            "exp": now + 300, "iat": now, "scope": "notes:read",
        });
        if let (Some(map), Value::Object(more)) = (claims.as_object_mut(), extra) {
            map.extend(more);
        }
        broker.idp.idp.sign("at+jwt", &claims).unwrap()
    };
    let with = forge(json!({"groups": "mcp-users robots", "preferred_username": "svc-bot"}));
    let (status, identity, _) = verify(&broker, &with).await;
    assert_eq!(status, 200);
    assert_eq!(
        identity,
        ["", "svc-bot", "mcp-users,robots"].map(String::from)
    );
    let without = forge(json!({}));
    assert_eq!(verify(&broker, &without).await.0, 403);
    broker.stop().await;
}

#[actix_web::test]
async fn the_gateway_passes_the_identity_and_drops_what_the_client_claims() {
    let (upstream, url) = start_upstream();
    let gateway = format!(
        "[[gateway]]\npath = \"/mcp\"\nupstream = \"{url}/json\"\n\n[forward_auth]\ngroups_header = \"X-Forwarded-Groups\"\n"
    );
    let text = text("groups_any = [\"mcp-users\"]", &gateway);
    let broker = TestBroker::start_live(&text, as_user("alice"), |_| {}).await;
    let (_, body) = logged_in(&broker).await;
    let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}});
    let answer = http()
        .post(broker.at("/mcp"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("x-auth-groups", "admins")
        .header("x-forwarded-groups", "admins")
        .header("x-auth-email", "mallory@example.com")
        .bearer_auth(body["access_token"].as_str().unwrap())
        .body(list.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let seen = upstream.last();
    assert_eq!(seen.header("x-forwarded-groups"), Some("mcp-users,staff"));
    assert_eq!(seen.header("x-auth-email"), Some("alice@example.com"));
    assert_eq!(seen.header("x-auth-user"), Some("alice"));
    assert!(
        seen.header("x-auth-groups").is_none(),
        "the client's own never passes"
    );
    broker.stop().await;
}

#[actix_web::test]
async fn identity_claims_go_into_broker_tokens_when_configured() {
    let text = text(
        "groups_any = [\"mcp-users\"]",
        "[tokens]\nidentity_claims = true\n",
    );
    let broker = TestBroker::start_live(&text, as_user("alice"), |_| {}).await;
    let (_, body) = logged_in(&broker).await;
    let claims = crate::exchange::claims(body["access_token"].as_str().unwrap());
    assert_eq!(claims["email"], "alice@example.com");
    assert_eq!(claims["preferred_username"], "alice");
    assert_eq!(claims["groups"], json!(["mcp-users", "staff"]));
    broker.stop().await;

    let plain = broker_plain().await;
    let (_, body) = logged_in(&plain).await;
    let claims = crate::exchange::claims(body["access_token"].as_str().unwrap());
    assert!(claims.get("groups").is_none() && claims.get("email").is_none());
    plain.stop().await;
}

async fn broker_plain() -> TestBroker {
    TestBroker::start_live(&config_text(), as_user("alice"), |_| {}).await
}

#[test]
fn the_configuration_refuses_rules_that_make_no_sense() {
    for (rule, key) in [
        ("", "resources[0].allow"),
        ("groups_any = []", "resources[0].allow.groups_any"),
        (
            "email_domains = [\"@example.com\"]",
            "resources[0].allow.email_domains",
        ),
        ("groups = [\"x\"]", "resources[0].allow"),
    ] {
        let error = token_broker::config::load_str(&text(rule, ""), &Default::default())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains(key), "{rule}: {error}");
    }
}

/// A broker for `rule` logging everyone in as `user`, asking userinfo when `userinfo`.
async fn broker_with_userinfo(rule: &str, user: &str, userinfo: bool) -> TestBroker {
    recorded();
    let extra = format!("[upstream.claims]\nuserinfo = {userinfo}\n");
    TestBroker::start_live(&text(rule, &extra), as_user(user), |_| {}).await
}

/// What the dev IdP's userinfo answers for `sub` from now on.
async fn userinfo_says(broker: &TestBroker, answer: Value) {
    dev_knob(broker, "userinfo", answer).await;
}

/// Sets one of the dev IdP's `/_dev` knobs.
async fn dev_knob(broker: &TestBroker, knob: &str, body: Value) {
    let set = http()
        .post(format!("{}/_dev/{knob}", broker.idp.url))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(set.status(), 204);
}

#[actix_web::test]
async fn groups_only_userinfo_states_admit_when_userinfo_is_asked_and_only_then() {
    // bob's ID tokens say `staff`; userinfo says `mcp-users`, and wins.
    let asked = broker_with_userinfo("groups_any = [\"mcp-users\"]", "bob", true).await;
    userinfo_says(&asked, json!({"sub": "bob", "groups": ["mcp-users"]})).await;
    let (_, body) = logged_in(&asked).await;
    let (status, identity, _) = verify(&asked, body["access_token"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(
        identity,
        ["bob@example.com", "bob", "mcp-users"].map(String::from)
    );
    asked.stop().await;

    let not_asked = broker_with_userinfo("groups_any = [\"mcp-users\"]", "bob", false).await;
    userinfo_says(&not_asked, json!({"sub": "bob", "groups": ["mcp-users"]})).await;
    assert_refused_at_login(&not_asked, "groups_any").await;
    assert_eq!(not_asked.idp.calls("userinfo").await, 0);
    not_asked.stop().await;
}

#[actix_web::test]
async fn userinfo_about_another_subject_fails_the_login() {
    let broker = broker_with_userinfo("groups_any = [\"mcp-users\"]", "alice", true).await;
    userinfo_says(&broker, json!({"sub": "alice", "answer_sub": "mallory"})).await;
    refused_login(&broker, "server_error").await;
    assert_eq!(broker.idp.calls("userinfo").await, 1);
    broker.stop().await;
}

#[actix_web::test]
async fn userinfo_that_cannot_answer_fails_the_login_for_now() {
    let broker = broker_with_userinfo("groups_any = [\"mcp-users\"]", "alice", true).await;
    let fault = json!({"endpoint": "userinfo", "status": 503, "count": 1});
    dev_knob(&broker, "faults", fault).await;
    refused_login(&broker, "temporarily_unavailable").await;
    // Once it answers again, the same login works.
    let (_, body) = logged_in(&broker).await;
    assert_eq!(
        verify(&broker, body["access_token"].as_str().unwrap())
            .await
            .0,
        200
    );
    broker.stop().await;
}

#[actix_web::test]
async fn a_provider_refresh_asks_userinfo_again_and_keeps_the_identity_when_it_is_down() {
    let broker = broker_with_userinfo("groups_any = [\"mcp-users\"]", "bob", true).await;
    userinfo_says(&broker, json!({"sub": "bob", "groups": ["mcp-users"]})).await;
    let (client, body) = logged_in(&broker).await;
    let access = body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(verify(&broker, &access).await.0, 200);

    // Userinfo down at a provider refresh: new tokens, the identity held stays.
    let fault = json!({"endpoint": "userinfo", "status": 503, "count": 1});
    dev_knob(&broker, "faults", fault).await;
    broker.clock.advance(Duration::from_secs(301));
    let (status, rotated) =
        refresh(&broker, &client, body["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, 200, "{rotated}");
    assert_eq!(broker.idp.calls("userinfo").await, 2);
    assert_eq!(verify(&broker, &access).await.0, 200);

    // Userinfo no longer lists the group: refused after the next provider refresh.
    userinfo_says(&broker, json!({"sub": "bob", "groups": ["staff"]})).await;
    broker.clock.advance(Duration::from_secs(301));
    let refresh_token = rotated["refresh_token"].as_str().unwrap();
    let (status, refused) = refresh(&broker, &client, refresh_token).await;
    assert_eq!(
        (status, refused["error"].as_str()),
        (400, Some("invalid_grant")),
        "{refused}"
    );
    assert_eq!(broker.idp.calls("userinfo").await, 3);
    assert_eq!(verify(&broker, &access).await.0, 403);
    broker.stop().await;
}
