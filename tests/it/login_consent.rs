//! `GET /oauth/authorize` and `POST /oauth/consent`: what is shown, what is
//! redirected, and that nothing reaches the provider before consent.

use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use serde_json::json;
use url::Url;

use crate::login_remember::remembered_approval;
use crate::support::{BaseUrl, TestBroker, config_text, http};

pub const REDIRECT: &str = "http://127.0.0.1:4711/callback";
/// RFC 7636 appendix B (its verifier is dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk).
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

pub async fn live_broker() -> TestBroker {
    TestBroker::start_live(&config_text(), Default::default(), |_| {}).await
}

/// Registers a public loopback client (as Claude Code and VS Code do).
pub async fn register(broker: &(impl BaseUrl + ?Sized), name: &str) -> String {
    let body: serde_json::Value = http()
        .post(broker.at("/oauth/register"))
        .json(&json!({
            "client_name": name,
            "redirect_uris": [REDIRECT],
            "grant_types": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_method": "none",
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["client_id"].as_str().unwrap().to_owned()
}

pub fn authorize_url(
    broker: &(impl BaseUrl + ?Sized),
    client_id: &str,
    extra: &[(&str, &str)],
) -> String {
    let mut url = Url::parse(&broker.at("/oauth/authorize")).unwrap();
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in [
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", REDIRECT),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
            ("state", "client-state"),
            ("scope", "notes:read"),
        ] {
            if !extra.iter().any(|(name, _)| *name == k) {
                q.append_pair(k, v);
            }
        }
        for (k, v) in extra {
            if !v.is_empty() {
                q.append_pair(k, v);
            }
        }
    }
    url.to_string()
}

/// The consent page's hidden fields and the binding cookie (`name=value`).
pub struct Consent {
    pub session: String,
    pub csrf: String,
    pub cookie: String,
    pub page: String,
    pub headers: HeaderMap,
}

pub fn hidden(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page.find(&marker).unwrap() + marker.len();
    page[start..start + page[start..].find('"').unwrap()].to_owned()
}

pub fn cookies(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

pub async fn open_consent(url: &str) -> Consent {
    let response = http().get(url).send().await.unwrap();
    assert_eq!(response.status(), 200, "consent page expected");
    let headers = response.headers().clone();
    let page = response.text().await.unwrap();
    let set = cookies(&headers);
    let binding = set
        .iter()
        .find(|c| c.starts_with("tb_login_"))
        .expect("binding cookie");
    Consent {
        session: hidden(&page, "session"),
        csrf: hidden(&page, "csrf"),
        cookie: binding.split(';').next().unwrap().to_owned(),
        page,
        headers,
    }
}

/// The consent form as the browser that opened it sends it: its cookie, session and
/// CSRF token, with `decision`.
pub async fn answer(
    broker: &(impl BaseUrl + ?Sized),
    consent: &Consent,
    decision: &str,
) -> reqwest::Response {
    post_consent(
        broker,
        Some(&consent.cookie),
        &[
            ("session", &consent.session),
            ("csrf", &consent.csrf),
            ("decision", decision),
        ],
    )
    .await
}

pub async fn post_consent(
    broker: &(impl BaseUrl + ?Sized),
    cookie: Option<&str>,
    form: &[(&str, &str)],
) -> reqwest::Response {
    let mut request = http().post(broker.at("/oauth/consent")).form(form);
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    request.send().await.unwrap()
}

pub fn location(response: &reqwest::Response) -> Url {
    Url::parse(response.headers()[LOCATION].to_str().unwrap()).unwrap()
}

pub fn query(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

#[actix_web::test]
async fn the_consent_page_names_client_scopes_and_resource_and_cannot_be_framed() {
    let broker = live_broker().await;
    let client = register(&broker, "Claude <Code>").await;
    let consent = open_consent(&authorize_url(&broker, &client, &[])).await;
    assert!(consent.page.contains("Claude &lt;Code&gt;"));
    assert!(consent.page.contains("<code>notes:read</code>"));
    assert!(consent.page.contains(&broker.at("/mcp")));
    assert!(consent.page.contains("class=\"warn\""), "loopback warning");
    assert!(!consent.page.contains("<script"));
    let csp = consent.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(consent.headers["x-frame-options"], "DENY");
    let cookie = cookies(&consent.headers).join("\n");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"));
    assert!(cookie.contains("Path=/oauth"));
    assert_eq!(
        broker.idp.calls("authorize").await,
        0,
        "nothing goes upstream before consent"
    );
}

#[actix_web::test]
async fn unknown_clients_and_unregistered_redirect_uris_are_shown_never_redirected() {
    let broker = live_broker().await;
    let client = register(&broker, "App").await;
    for url in [
        authorize_url(&broker, "no-such-client", &[]),
        authorize_url(
            &broker,
            &client,
            &[("redirect_uri", "https://attacker.example/cb")],
        ),
        authorize_url(&broker, &client, &[("client_id", "")]),
    ] {
        let response = http().get(&url).send().await.unwrap();
        assert_eq!(response.status(), 400, "{url}");
        assert!(response.headers().get(LOCATION).is_none(), "{url}");
        let page = response.text().await.unwrap();
        assert!(page.contains("<h1>"), "an HTML page: {page}");
    }
}

#[actix_web::test]
async fn protocol_errors_are_redirected_with_state_and_iss() {
    let broker = live_broker().await;
    let client = register(&broker, "App").await;
    let cases: [(&[(&str, &str)], &str); 6] = [
        (&[("code_challenge_method", "plain")], "invalid_request"),
        (&[("code_challenge", "")], "invalid_request"),
        (&[("response_type", "token")], "unsupported_response_type"),
        (
            &[("resource", "https://elsewhere.example/mcp")],
            "invalid_target",
        ),
        (&[("scope", "notes:read admin")], "invalid_scope"),
        (&[("state", "a"), ("state", "b")], "invalid_request"),
    ];
    for (extra, error) in cases {
        let response = http()
            .get(authorize_url(&broker, &client, extra))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 303, "{extra:?}");
        let to = location(&response);
        assert!(to.as_str().starts_with(REDIRECT), "{to}");
        assert_eq!(query(&to, "error").as_deref(), Some(error), "{extra:?}");
        assert_eq!(query(&to, "iss").as_deref(), Some(broker.url.as_str()));
        if !extra.iter().any(|(k, _)| *k == "state") {
            assert_eq!(query(&to, "state").as_deref(), Some("client-state"));
        }
    }
}

#[actix_web::test]
async fn a_resource_with_a_trailing_slash_is_the_configured_one() {
    let broker = live_broker().await;
    let client = register(&broker, "App").await;
    let resource = broker.at("/mcp/");
    let consent = open_consent(&authorize_url(&broker, &client, &[("resource", &resource)])).await;
    assert!(
        consent
            .page
            .contains(&format!("<code>{}</code>", broker.at("/mcp")))
    );
}

#[actix_web::test]
async fn deny_sends_access_denied_to_the_client() {
    let broker = live_broker().await;
    let client = register(&broker, "App").await;
    let consent = open_consent(&authorize_url(&broker, &client, &[])).await;
    let response = answer(&broker, &consent, "deny").await;
    assert_eq!(response.status(), 303);
    let to = location(&response);
    assert_eq!(query(&to, "error").as_deref(), Some("access_denied"));
    assert_eq!(query(&to, "state").as_deref(), Some("client-state"));
    assert_eq!(query(&to, "iss").as_deref(), Some(broker.url.as_str()));
    // The session is over: approving it now fails.
    let again = answer(&broker, &consent, "approve").await;
    assert_eq!(again.status(), 400);
    assert_eq!(broker.idp.calls("authorize").await, 0);
}

#[actix_web::test]
async fn forged_consent_posts_are_refused_and_change_nothing() {
    let broker = live_broker().await;
    let client = register(&broker, "App").await;
    let consent = open_consent(&authorize_url(&broker, &client, &[])).await;
    let forged: [(Option<&str>, &str); 3] = [
        (Some(consent.cookie.as_str()), ""),
        (Some(consent.cookie.as_str()), "guessed-token"),
        (None, consent.csrf.as_str()),
    ];
    for (cookie, csrf) in forged {
        let response = post_consent(
            &broker,
            cookie,
            &[
                ("session", &consent.session),
                ("csrf", csrf),
                ("decision", "approve"),
            ],
        )
        .await;
        assert_eq!(response.status(), 403, "cookie {cookie:?} csrf {csrf:?}");
        assert!(response.headers().get(LOCATION).is_none());
    }
    // The genuine form still works afterwards.
    let response = answer(&broker, &consent, "approve").await;
    assert_eq!(response.status(), 303);
    assert!(location(&response).as_str().starts_with(&broker.idp.url));
}

#[actix_web::test]
async fn approve_starts_the_upstream_login_with_the_brokers_own_pkce_state_and_nonce() {
    let broker = live_broker().await;
    let client = register(&broker, "App").await;
    let consent = open_consent(&authorize_url(&broker, &client, &[])).await;
    let response = answer(&broker, &consent, "approve").await;
    assert_eq!(response.status(), 303);
    let to = location(&response);
    assert!(
        to.as_str()
            .starts_with(&format!("{}/authorize", broker.idp.url))
    );
    assert_eq!(query(&to, "client_id").as_deref(), Some("token-broker"));
    assert_eq!(
        query(&to, "redirect_uri"),
        Some(broker.at("/oauth/callback"))
    );
    assert_eq!(query(&to, "code_challenge_method").as_deref(), Some("S256"));
    assert_ne!(query(&to, "code_challenge").as_deref(), Some(CHALLENGE));
    assert_ne!(query(&to, "state").as_deref(), Some("client-state"));
    assert!(query(&to, "nonce").is_some());
    assert_eq!(query(&to, "resource"), Some(broker.at("/mcp")));
    let scope = query(&to, "scope").unwrap();
    assert!(scope.contains("openid") && scope.contains("notes:read"));
}

/// Where `broker` sends a browser holding `cookie` that starts a login of `client`:
/// `Some(the provider's URL)` when it skips the consent page, `None` when it shows it.
pub async fn skipped_consent(
    broker: &(impl BaseUrl + ?Sized),
    client: &str,
    cookie: &str,
) -> Option<Url> {
    let again = http()
        .get(authorize_url(broker, client, &[]))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    match again.status().as_u16() {
        303 => Some(location(&again)),
        200 => None,
        other => panic!("authorize answered {other}"),
    }
}

#[actix_web::test]
async fn a_remembered_approval_skips_the_page_for_the_same_client_and_scopes_only() {
    let broker = live_broker().await;
    let client = register(&broker, "App").await;
    let remembered = remembered_approval(&broker, &client).await;
    let to = skipped_consent(&broker, &client, &remembered).await;
    let to = to.expect("straight to the provider");
    assert!(to.as_str().starts_with(&broker.idp.url));
    // More scopes, or a tampered cookie, show the page again.
    let wider = http()
        .get(authorize_url(
            &broker,
            &client,
            &[("scope", "notes:read notes:write")],
        ))
        .header("cookie", &remembered)
        .send()
        .await
        .unwrap();
    assert_eq!(wider.status(), 200);
    let (browser, approval) = remembered.split_once("; ").unwrap();
    let (browser, approval) = if browser.starts_with("tb_ok_") {
        (approval, browser)
    } else {
        (browser, approval)
    };
    let (name, value) = approval.split_once('=').unwrap();
    let (until, rest) = value.split_once('.').unwrap();
    let forged = format!(
        "{browser}; {name}={}.{rest}",
        until.parse::<u64>().unwrap() + 1
    );
    let tampered = http()
        .get(authorize_url(&broker, &client, &[]))
        .header("cookie", forged)
        .send()
        .await
        .unwrap();
    assert_eq!(tampered.status(), 200);
}
