//! The whole login through a real, certified OpenID provider (oidc-provider, the rig
//! of e2e_oidc_provider): register → authorize → consent → the provider's login →
//! callback (real code exchange and ID token validation) → token → refresh → revoke.

use std::collections::HashMap;

use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use serde_json::Value;
use url::Url;

use crate::e2e_oidc_provider::{Rig, alg_of, start_es512_rig, start_rig};
use crate::login_consent::{REDIRECT, answer, authorize_url, open_consent, query, register};
use crate::login_flow::{redeem, token};
use crate::support::{TestBroker, UPSTREAM_PLACEHOLDER, config_text, http};

/// Cookies per host, as a browser keeps them (paths are ignored: one login at a time).
#[derive(Default)]
pub(crate) struct Jar(HashMap<String, HashMap<String, String>>);

impl Jar {
    fn header(&self, url: &Url) -> Option<String> {
        let jar = self.0.get(url.host_str()?)?;
        Some(
            jar.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; "),
        )
    }

    fn keep(&mut self, url: &Url, response: &reqwest::Response) {
        let jar = self
            .0
            .entry(url.host_str().unwrap_or_default().to_owned())
            .or_default();
        for value in response.headers().get_all(SET_COOKIE) {
            let line = value.to_str().unwrap();
            let pair = line.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            if value.is_empty() || line.to_ascii_lowercase().contains("max-age=0") {
                jar.remove(name.trim());
            } else {
                jar.insert(name.trim().to_owned(), value.trim().to_owned());
            }
        }
    }
}

/// Follows redirects from `start` with `jar` until the browser is sent to `stop_at`;
/// returns that URL and the hops taken.
pub(crate) async fn follow(jar: &mut Jar, start: Url, stop_at: &str) -> (Url, Vec<String>) {
    let mut url = start;
    let mut hops = Vec::new();
    for _ in 0..12 {
        if url.as_str().starts_with(stop_at) {
            return (url, hops);
        }
        let mut request = http().get(url.as_str());
        if let Some(cookie) = jar.header(&url) {
            request = request.header(COOKIE, cookie);
        }
        let response = request.send().await.unwrap();
        jar.keep(&url, &response);
        hops.push(format!("{} {}", url.path(), response.status().as_u16()));
        let Some(location) = response.headers().get(LOCATION) else {
            panic!(
                "stuck at {url} ({}): {}",
                response.status(),
                response.text().await.unwrap_or_default()
            );
        };
        url = url.join(location.to_str().unwrap()).unwrap();
    }
    panic!("too many redirects; hops: {hops:?}");
}

/// The browser's part of a login through the broker and the provider: `client`
/// opens the broker's consent page (`extra` added to the authorization request),
/// approves, and follows the provider's login, keeping cookies, until it is sent back
/// to the client's redirect URI; returns that URL and the hops taken.
pub(crate) async fn log_in_at_provider(
    broker: &TestBroker,
    rig: &Rig,
    client: &str,
    extra: &[(&str, &str)],
) -> (Url, Vec<String>) {
    let consent = open_consent(&authorize_url(broker, client, extra)).await;
    let approved = answer(broker, &consent, "approve").await;
    assert_eq!(approved.status(), 303);
    let upstream = Url::parse(approved.headers()[LOCATION].to_str().unwrap()).unwrap();
    assert!(
        upstream
            .as_str()
            .starts_with(&format!("{}/auth", rig.issuer)),
        "{upstream}"
    );
    assert_eq!(query(&upstream, "resource"), Some(broker.at("/mcp")));

    let mut jar = Jar::default();
    let broker_url = Url::parse(&broker.url).unwrap();
    let (name, value) = consent.cookie.split_once('=').unwrap();
    jar.0
        .entry(broker_url.host_str().unwrap().to_owned())
        .or_default()
        .insert(name.to_owned(), value.to_owned());
    follow(&mut jar, upstream, REDIRECT).await
}

/// A client registered at the broker logs in through the provider with `scope` and
/// redeems its code: the broker's token answer (access and refresh token).
pub(crate) async fn broker_token_from_provider_login(
    broker: &TestBroker,
    rig: &Rig,
    scope: &str,
) -> Value {
    let client = register(broker, "E2E client").await;
    let (landed, hops) = log_in_at_provider(broker, rig, &client, &[("scope", scope)]).await;
    let code = query(&landed, "code").unwrap_or_else(|| panic!("no code: {landed} {hops:?}"));
    let (status, body) = redeem(broker, &client, &code).await;
    assert_eq!(status, 200, "{body}");
    body
}

#[actix_web::test]
async fn a_client_logs_in_through_oidc_provider_refreshes_and_revokes() {
    let rig = start_rig();
    let text = config_text().replace(UPSTREAM_PLACEHOLDER, &rig.issuer);
    let broker = TestBroker::start_live(&text, Default::default(), |_| {}).await;
    let client = register(&broker, "E2E client").await;

    let (landed, hops) = log_in_at_provider(&broker, &rig, &client, &[]).await;
    assert!(
        hops.iter().any(|h| h.starts_with("/interaction/")),
        "the provider's login ran: {hops:?}"
    );
    assert_eq!(
        hops.last().map(String::as_str),
        Some("/oauth/callback 303"),
        "{hops:?}"
    );
    assert_eq!(query(&landed, "state").as_deref(), Some("client-state"));
    assert_eq!(query(&landed, "iss").as_deref(), Some(broker.url.as_str()));
    let code = query(&landed, "code").unwrap();

    let (status, body) = redeem(&broker, &client, &code).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "notes:read");
    let access = body["access_token"].as_str().unwrap().to_owned();
    let refresh_token = body["refresh_token"].as_str().unwrap().to_owned();
    let verify = |token: String| {
        http()
            .get(broker.at("/auth/verify"))
            .header("x-original-uri", "/mcp")
            .bearer_auth(token)
            .send()
    };
    let ok = verify(access.clone()).await.unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(
        ok.headers()["x-auth-subject"],
        "alice",
        "the provider's user"
    );
    assert_eq!(ok.headers()["x-auth-client-id"], client.as_str());

    // The grant holds the provider's real tokens.
    let grant = broker.grant_behind(&access).await;
    assert_eq!(grant.subject, "alice");
    assert!(grant.upstream.refresh_token.is_some());

    let (status, refreshed) = token(
        &broker,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", &client),
            ("refresh_token", &refresh_token),
        ],
    )
    .await;
    assert_eq!(status, 200, "{refreshed}");
    let second = refreshed["refresh_token"].as_str().unwrap().to_owned();
    let revoked = http()
        .post(broker.at("/oauth/revoke"))
        .form(&[("client_id", client.as_str()), ("token", second.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    assert_eq!(verify(access).await.unwrap().status(), 401);
    let (status, body): (u16, Value) = token(
        &broker,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", &client),
            ("refresh_token", &second),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
}

#[actix_web::test]
async fn a_login_through_an_es512_provider_gets_tokens() {
    let rig = start_es512_rig();
    let text = config_text().replace(UPSTREAM_PLACEHOLDER, &rig.issuer);
    let broker = TestBroker::start_live(&text, Default::default(), |_| {}).await;
    // The callback verified the provider's ES512 ID token, else there is no code.
    let tokens = broker_token_from_provider_login(&broker, &rig, "openid notes:read").await;
    let access = tokens["access_token"].as_str().unwrap();
    let grant = broker.grant_behind(access).await;
    assert_eq!(grant.subject, "alice");
    assert_eq!(alg_of(&grant.upstream.access_token), "ES512");
    let ok = http()
        .get(broker.at("/auth/verify"))
        .header("x-original-uri", "/mcp")
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.headers()["x-auth-subject"], "alice");
}
