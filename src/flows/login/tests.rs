use std::time::Duration;

use aws_lc_rs::hmac;

use super::approval::{Approvals, Approved, same_token};
use crate::domain::scope::Scopes;

const BROWSER: &str = "browser-one";
const DAY: u64 = 86_400;

fn approvals(remember_for: Duration) -> Approvals {
    Approvals::new(
        hmac::Key::new(hmac::HMAC_SHA256, b"a key of thirty-two bytes or so!"),
        remember_for,
        false,
    )
}

fn scopes() -> Scopes {
    Scopes::parse("notes:read").unwrap()
}

fn what(scopes: &Scopes) -> Approved<'_> {
    Approved {
        client_id: "c1",
        scopes,
        resource: Some("https://mcp.example/mcp"),
    }
}

#[test]
fn an_approval_is_remembered_for_its_browser_and_names_its_user() {
    let approvals = approvals(Duration::from_secs(30 * DAY));
    let scopes = scopes();
    let (name, value) = approvals.sign(BROWSER, "alice", &what(&scopes), 1_000);
    let sent = vec![("other".to_owned(), "x".to_owned()), (name, value)];
    let digest = approvals
        .remembered(BROWSER, &sent, &what(&scopes), 2_000)
        .unwrap();
    assert!(approvals.is_subject(&digest, "alice"));
    assert!(!approvals.is_subject(&digest, "bob"));
    assert_eq!(
        approvals.remembered("browser-two", &sent, &what(&scopes), 2_000),
        None
    );
}

#[test]
fn an_approval_holds_for_what_it_approved_until_it_expires() {
    let approvals = approvals(Duration::from_secs(DAY));
    let scopes = scopes();
    let (name, value) = approvals.sign(BROWSER, "alice", &what(&scopes), 1_000);
    let sent = vec![(name.clone(), value.clone())];
    let wider = Scopes::parse("notes:read notes:write").unwrap();
    assert_eq!(
        approvals.remembered(BROWSER, &sent, &what(&wider), 2_000),
        None
    );
    assert_eq!(
        approvals.remembered(BROWSER, &sent, &what(&scopes), 1_000 + DAY),
        None
    );
    let extended = value.replacen(&(1_000 + DAY).to_string(), &(2_000 + DAY).to_string(), 1);
    assert_eq!(
        approvals.remembered(BROWSER, &[(name, extended)], &what(&scopes), 2_000),
        None
    );
}

#[test]
fn nothing_is_remembered_when_approvals_are_not() {
    let signer = approvals(Duration::from_secs(DAY));
    let scopes = scopes();
    let (name, value) = signer.sign(BROWSER, "alice", &what(&scopes), 1_000);
    let off = approvals(Duration::ZERO);
    assert!(!off.remembers());
    assert_eq!(
        off.remembered(BROWSER, &[(name, value)], &what(&scopes), 2_000),
        None
    );
}

#[test]
fn on_https_the_approval_cookie_is_host_prefixed() {
    let secure = Approvals::new(
        hmac::Key::new(hmac::HMAC_SHA256, b"k"),
        Duration::from_secs(DAY),
        true,
    );
    let scopes = scopes();
    let (name, _) = secure.sign(BROWSER, "alice", &what(&scopes), 1_000);
    assert!(name.starts_with("__Host-tb_ok_"), "{name}");
}

#[test]
fn the_form_token_must_equal_the_cookies() {
    assert!(same_token(Some("t"), "t"));
    assert!(!same_token(Some("t"), "u"));
    assert!(!same_token(None, ""));
}
