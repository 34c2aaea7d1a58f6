use actix_web::http::header::{HeaderMap, HeaderValue};

use super::*;
use crate::domain::scope::Scopes;
use crate::tokens::principal::CredentialKind;

fn principal(subject: &str, client: Option<&str>) -> Principal {
    Principal {
        subject: subject.to_owned(),
        scopes: Scopes::default(),
        client_id: client.map(str::to_owned),
        kind: CredentialKind::BrokerJwt,
        expires_at: None,
        grant_id: None,
        tools: None,
        identity: None,
    }
}

fn binder() -> SessionBinder {
    SessionBinder::new(hmac::Key::new(hmac::HMAC_SHA256, b"test key"))
}

fn presenting(value: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(HEADER, HeaderValue::from_str(value).unwrap());
    headers
}

#[test]
fn a_session_is_its_opener_s_alone() {
    let binder = binder();
    let alice = principal("alice", Some("app"));
    let owner = |p| Owner {
        resource: "https://a.example/mcp",
        path: "/mcp",
        principal: p,
    };
    let bound = binder.bind(&owner(Some(&alice)), "sess.42");
    assert!(bound.ends_with(".sess.42"));
    let headers = presenting(&bound);
    assert_eq!(
        binder.presented(&headers, &owner(Some(&alice)), false),
        Presented::Bound("sess.42".to_owned())
    );
    let others = [
        principal("bob", Some("app")),
        principal("alice", Some("other-app")),
        principal("alice", None),
        principal("alice\0", Some("app")),
    ];
    for other in &others {
        assert_eq!(
            binder.presented(&headers, &owner(Some(other)), false),
            Presented::Refused,
            "{other:?}"
        );
    }
    assert_eq!(
        binder.presented(&headers, &owner(None), false),
        Presented::Refused
    );
    let elsewhere = Owner {
        resource: "https://a.example/mcp",
        path: "/mcp/sse",
        principal: Some(&alice),
    };
    assert_eq!(
        binder.presented(&headers, &elsewhere, false),
        Presented::Refused
    );
    // The same path on another host is another server.
    let other_host = Owner {
        resource: "https://b.example/mcp",
        path: "/mcp",
        principal: Some(&alice),
    };
    assert_eq!(
        binder.presented(&headers, &other_host, false),
        Presented::Refused
    );
    // Another key (another deployment) does not know it either.
    let stranger = SessionBinder::new(hmac::Key::new(hmac::HMAC_SHA256, b"other"));
    assert_eq!(
        stranger.presented(&headers, &owner(Some(&alice)), false),
        Presented::Refused
    );
}

#[test]
fn ids_the_gateway_did_not_hand_out_are_refused_and_stateless_ones_ignored() {
    let binder = binder();
    let alice = principal("alice", None);
    let owner = Owner {
        resource: "https://a.example/mcp",
        path: "/mcp",
        principal: Some(&alice),
    };
    for raw in ["sess-42", "", ".sess-42", "AAAAAAAAAAAAAAAAAAAAAA.sess-42"] {
        assert_eq!(
            binder.presented(&presenting(raw), &owner, false),
            Presented::Refused,
            "{raw:?}"
        );
    }
    let mut two = presenting(&binder.bind(&owner, "a"));
    two.append(HEADER, HeaderValue::from_static("b"));
    assert_eq!(binder.presented(&two, &owner, false), Presented::Refused);
    assert_eq!(
        binder.presented(&HeaderMap::new(), &owner, false),
        Presented::None
    );
    assert_eq!(
        binder.presented(&presenting("anything"), &owner, true),
        Presented::None
    );
}

#[test]
fn answers_carry_the_bound_id_or_none() {
    let binder = binder();
    let alice = principal("alice", None);
    let owner = Owner {
        resource: "https://a.example/mcp",
        path: "/mcp",
        principal: Some(&alice),
    };
    let answer = || {
        HttpResponse::Ok()
            .insert_header((HEADER, "sess-42"))
            .finish()
    };
    let mut legacy = answer();
    binder.answer(&mut legacy, &owner, false);
    let handed = legacy.headers().get(&HEADER).unwrap().to_str().unwrap();
    assert_eq!(handed, binder.bind(&owner, "sess-42"));
    let mut stateless = answer();
    binder.answer(&mut stateless, &owner, true);
    assert!(stateless.headers().get(&HEADER).is_none());
}
