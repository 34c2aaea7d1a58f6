//! Remembered approvals belong to one browser and one user: copied into another
//! browser they do not skip the consent page, and a login that skipped it completes
//! only for the user who approved. On an https public URL the login cookies carry the
//! `__Host-` prefix.

use std::collections::BTreeMap;

use reqwest::header::HeaderMap;
use url::Url;

use crate::login_consent::{
    authorize_url, cookies, hidden, live_broker, location, query, register, skipped_consent,
};
use crate::support::{BaseUrl, TestBroker, config_text, http};

/// One browser's cookies, kept by hand: the harness serves plain http, and a real jar
/// would not send `Secure` cookies back.
#[derive(Debug, Default, Clone)]
pub struct Jar(BTreeMap<String, String>);

impl Jar {
    /// The `Cookie` header this browser sends.
    pub fn header(&self) -> String {
        self.0
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// The cookie named `prefix…`, as `name=value`.
    pub fn named(&self, prefix: &str) -> Option<String> {
        self.0
            .iter()
            .find(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| format!("{k}={v}"))
    }

    fn keep(&mut self, headers: &HeaderMap) {
        for cookie in cookies(headers) {
            let pair = cookie.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            if cookie.contains("Max-Age=0") {
                self.0.remove(name);
            } else {
                self.0.insert(name.to_owned(), value.to_owned());
            }
        }
    }

    pub async fn get(&mut self, url: &str) -> reqwest::Response {
        let response = http()
            .get(url)
            .header("cookie", self.header())
            .send()
            .await
            .unwrap();
        self.keep(response.headers());
        response
    }

    pub async fn post(&mut self, url: &str, form: &[(&str, &str)]) -> reqwest::Response {
        let response = http()
            .post(url)
            .header("cookie", self.header())
            .form(form)
            .send()
            .await
            .unwrap();
        self.keep(response.headers());
        response
    }
}

/// Approves the consent page `page` in `jar`'s browser (remembering the approval when
/// `remember`): where the broker sends the browser (the provider).
pub async fn approve(
    broker: &(impl BaseUrl + ?Sized),
    jar: &mut Jar,
    page: &str,
    remember: bool,
) -> Url {
    let (session, csrf) = (hidden(page, "session"), hidden(page, "csrf"));
    let mut form = vec![
        ("session", session.as_str()),
        ("csrf", csrf.as_str()),
        ("decision", "approve"),
    ];
    if remember {
        form.push(("remember", "on"));
    }
    let approved = jar.post(&broker.at("/oauth/consent"), &form).await;
    assert_eq!(approved.status(), 303);
    location(&approved)
}

/// Logs in at the dev IdP (as `user`, else its default user) from `upstream`, and
/// brings the provider's answer back to the broker's callback in `jar`'s browser
/// (at `callback_base`, when the broker's public URL is not where it listens).
pub async fn through_idp(
    jar: &mut Jar,
    upstream: &Url,
    user: Option<&str>,
    callback_base: Option<(&str, &str)>,
) -> reqwest::Response {
    let mut upstream = upstream.clone();
    if let Some(user) = user {
        upstream.query_pairs_mut().append_pair("login_hint", user);
    }
    let at_idp = http().get(upstream.as_str()).send().await.unwrap();
    assert!(at_idp.status().is_redirection(), "{}", at_idp.status());
    let mut callback = location(&at_idp).to_string();
    if let Some((public, real)) = callback_base {
        callback = callback.replacen(public, real, 1);
    }
    jar.get(&callback).await
}

/// Logs in to `client` in a new browser, asking to remember the approval: that
/// browser's cookies (its id and the remembered approval) as a `Cookie` header.
pub async fn remembered_approval(broker: &(impl BaseUrl + ?Sized), client: &str) -> String {
    let mut jar = Jar::default();
    let page = jar.get(&authorize_url(broker, client, &[])).await;
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    let upstream = approve(broker, &mut jar, &page, true).await;
    let back = through_idp(&mut jar, &upstream, None, None).await;
    assert_eq!(back.status(), 303);
    assert!(
        jar.named("tb_ok_").is_some(),
        "approval remembered: {jar:?}"
    );
    jar.header()
}

#[actix_web::test]
async fn an_approval_copied_into_another_browser_shows_the_consent_page() {
    let broker = live_broker().await;
    let client = register(&broker, "App").await;
    let mine = remembered_approval(&broker, &client).await;
    let to = skipped_consent(&broker, &client, &mine).await;
    assert!(
        to.expect("its own browser skips the page")
            .as_str()
            .starts_with(&broker.idp.url)
    );

    let approval = mine
        .split("; ")
        .find(|c| c.starts_with("tb_ok_"))
        .unwrap()
        .to_owned();
    // Alone, or beside another browser's own id, it shows the consent page.
    assert_eq!(
        skipped_consent(&broker, &client, &approval).await,
        None,
        "an approval without its browser skipped consent"
    );
    let mut other = Jar::default();
    let shown = other.get(&authorize_url(&broker, &client, &[])).await;
    assert_eq!(shown.status(), 200);
    let other_id = other.named("tb_browser").expect("a browser id");
    let copied = format!("{other_id}; {approval}");
    assert_eq!(
        skipped_consent(&broker, &client, &copied).await,
        None,
        "an approval copied into another browser skipped consent"
    );
}

#[actix_web::test]
async fn a_remembered_approval_completes_a_login_only_for_the_user_who_gave_it() {
    let broker = live_broker().await;
    let client = register(&broker, "App").await;
    let mut jar = Jar::default();
    let page = jar
        .get(&authorize_url(&broker, &client, &[]))
        .await
        .text()
        .await
        .unwrap();
    let upstream = approve(&broker, &mut jar, &page, true).await;
    let back = through_idp(&mut jar, &upstream, Some("alice"), None).await;
    assert_eq!(back.status(), 303);

    // Alice again: no page, a code.
    let skipped = jar.get(&authorize_url(&broker, &client, &[])).await;
    assert_eq!(skipped.status(), 303);
    let back = through_idp(&mut jar, &location(&skipped), Some("alice"), None).await;
    assert!(query(&location(&back), "code").is_some());

    // Bob in the same browser: the page is skipped, but the callback asks him.
    let skipped = jar.get(&authorize_url(&broker, &client, &[])).await;
    assert_eq!(skipped.status(), 303);
    let asked = through_idp(&mut jar, &location(&skipped), Some("bob"), None).await;
    assert_eq!(asked.status(), 200, "the consent page, not a code for bob");
    let page = asked.text().await.unwrap();
    assert!(page.contains("Allow <strong>App</strong>?"), "{page}");
    // Once he approves, his login completes.
    let upstream = approve(&broker, &mut jar, &page, false).await;
    let back = through_idp(&mut jar, &upstream, Some("bob"), None).await;
    let to = location(&back);
    assert!(query(&to, "code").is_some(), "{to}");
    assert_eq!(query(&to, "state").as_deref(), Some("client-state"));
}

/// The dev IdP also accepts the broker's callback at `public`.
fn idp_accepting(public: &str) -> token_broker::dev_idp::DevIdpConfig {
    let mut config = token_broker::dev_idp::DevIdpConfig::default();
    for client in &mut config.clients {
        if client.client_id == "token-broker" {
            client
                .redirect_uris
                .push(format!("{public}/oauth/callback"));
        }
    }
    config
}

fn assert_host_cookie(set_cookie: &str) {
    assert!(set_cookie.starts_with("__Host-"), "{set_cookie}");
    assert!(set_cookie.contains("; Secure"), "{set_cookie}");
    assert!(
        set_cookie.contains("; Path=/;") || set_cookie.ends_with("; Path=/"),
        "{set_cookie}"
    );
    assert!(!set_cookie.contains("Domain="), "{set_cookie}");
    assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Lax"));
}

#[actix_web::test]
async fn on_an_https_public_url_the_login_cookies_are_host_prefixed_and_secure() {
    // The broker believes it is https://127.0.0.1:9 (as behind a TLS proxy) and
    // listens on plain http; the test plays the proxy.
    let public = "https://127.0.0.1:9";
    let text = config_text().replace(
        "public_url = \"http://127.0.0.1:9\"",
        &format!("public_url = \"{public}\""),
    );
    let broker = TestBroker::start_with_idp(&text, idp_accepting(public), |_| {}).await;
    let client = register(&broker, "App").await;
    let mut jar = Jar::default();
    let shown = jar.get(&authorize_url(&broker, &client, &[])).await;
    assert_eq!(shown.status(), 200);
    let set = cookies(shown.headers());
    assert_eq!(set.len(), 2, "binding and browser id: {set:?}");
    set.iter().for_each(|c| assert_host_cookie(c));
    assert!(set.iter().any(|c| c.starts_with("__Host-tb_login_")));
    assert!(set.iter().any(|c| c.starts_with("__Host-tb_browser=")));

    let page = shown.text().await.unwrap();
    let upstream = approve(&broker, &mut jar, &page, true).await;
    let back = through_idp(&mut jar, &upstream, None, Some((public, &broker.url))).await;
    assert_eq!(
        back.status(),
        303,
        "{}",
        back.text().await.unwrap_or_default()
    );
    let set = cookies(back.headers());
    let approval = set
        .iter()
        .find(|c| c.contains("tb_ok_"))
        .expect("remembered");
    assert_host_cookie(approval);
    set.iter().for_each(|c| assert_host_cookie(c));
    // The prefixed cookies are the ones read back: the page is skipped.
    assert!(
        skipped_consent(&broker, &client, &jar.header())
            .await
            .is_some()
    );
}
