//! Every type holding a secret shows that it holds one, never what it is.

use super::*;
use crate::actors::registration::Registered;
use crate::actors::sessions::SessionTicket;
use crate::config::Issuer;
#[cfg(feature = "dev-idp")]
use crate::dev_idp::config::ClientSpec;
#[cfg(feature = "dev-idp")]
use crate::dev_idp::idp::{Client, Code, Issued};
use crate::domain::authorize::Authorization;
use crate::domain::scope::Scopes;
use crate::domain::upstream_request::{Profile, UpstreamAuthorize};
use crate::http::consent_page::ConsentView;
use crate::store::{ClientOrigin, LoginSession, StoredClient, UpstreamLeg};
use crate::upstream::id_token::Expected;
use crate::upstream::registration::UpstreamClient;

const SECRET: &str = "s3cret-value-4f2a";

/// `value`'s `Debug` (plain and pretty) never contains the secret, and says it hid one.
fn hides(value: &impl fmt::Debug) {
    for text in [format!("{value:?}"), format!("{value:#?}")] {
        assert!(!text.contains(SECRET), "{text}");
        assert!(text.contains("<redacted>"), "{text}");
    }
}

fn stored_client(origin: ClientOrigin) -> StoredClient {
    StoredClient {
        client_id: "c1".into(),
        secret_hash: None,
        metadata: serde_json::json!({}),
        fingerprint: [0; 32],
        issued_at: 0,
        last_used_at: None,
        origin,
    }
}

#[test]
fn it_prints_only_that_something_is_there() {
    assert_eq!(format!("{Redacted:?}"), "<redacted>");
    assert_eq!(
        format!("{:?}", Redacted::option(&Some(SECRET))),
        "Some(<redacted>)"
    );
    assert_eq!(format!("{:?}", Redacted::option::<String>(&None)), "None");
}

#[test]
fn the_upstream_login_leg_hides_its_verifier_and_nonce() {
    let leg = UpstreamLeg {
        state: "session-1".into(),
        verifier: SECRET.into(),
        nonce: SECRET.into(),
        remember: Default::default(),
    };
    hides(&leg);
    assert!(format!("{leg:?}").contains("session-1"));
    hides(&LoginSession {
        request: Authorization {
            client_id: "c1".into(),
            redirect_uri: "http://127.0.0.1/cb".into(),
            code_challenge: "challenge".into(),
            state: None,
            scopes: Scopes::of(["notes:read"]),
            resource: None,
        },
        csrf: SECRET.into(),
        expires_at: 1,
        leg: Some(leg),
    });
    hides(&UpstreamAuthorize {
        authorization_endpoint: "https://idp.example/authorize",
        client_id: "broker",
        callback: "https://broker.example/oauth/callback",
        state: "session-1",
        nonce: SECRET,
        verifier: SECRET,
        scopes: &[],
        audience: None,
        also: &[],
        profile: Profile::Generic,
    });
}

#[test]
fn csrf_tokens_are_hidden() {
    hides(&SessionTicket {
        id: "session-1".into(),
        csrf: SECRET.into(),
        expires_at: 1,
    });
    hides(&ConsentView {
        client_name: None,
        client_id: "c1",
        from_document: false,
        redirect_uri: "http://127.0.0.1/cb",
        registered_redirect_uris: &[],
        scopes: vec!["notes:read"],
        resource: None,
        session: "session-1",
        csrf: SECRET,
        action: "/oauth/consent",
        offer_remember: false,
    });
}

#[test]
fn client_secrets_and_registration_tokens_are_hidden() {
    let proxied = ClientOrigin::Proxied {
        upstream_client_id: "upstream-c1".into(),
        upstream_client_secret: Some(SECRET.into()),
        registration_client_uri: None,
        registration_access_token: Some(SECRET.into()),
        upstream_secret_expires_at: None,
    };
    hides(&proxied);
    hides(&stored_client(proxied));
    hides(&Registered {
        client: stored_client(ClientOrigin::Local),
        secret: Some(SECRET.into()),
        reused: false,
    });
    hides(&UpstreamClient {
        client_id: "upstream-c1".into(),
        client_secret: Some(SECRET.into()),
        registration_access_token: Some(SECRET.into()),
        registration_client_uri: None,
        client_secret_expires_at: None,
    });
}

#[test]
fn the_id_token_expectations_hide_the_nonce_and_access_token() {
    let issuer = Issuer::parse("https://idp.example").unwrap();
    hides(&Expected {
        issuer: &issuer,
        client_id: "broker",
        nonce: Some(SECRET),
        access_token: Some(SECRET),
        leeway: std::time::Duration::ZERO,
    });
}

#[cfg(feature = "dev-idp")]
#[test]
fn the_dev_idps_clients_and_codes_hide_their_secrets() {
    let spec = ClientSpec {
        client_id: "c1".into(),
        client_secret: Some(SECRET.into()),
        redirect_uris: Vec::new(),
        grant_types: Vec::new(),
        scopes: None,
    };
    hides(&spec);
    let mut client = Client::from_spec(&spec);
    client.registration_token = Some(SECRET.into());
    hides(&client);
    hides(&Code {
        client_id: "c1".into(),
        redirect_uri: "http://127.0.0.1/cb".into(),
        challenge: "challenge".into(),
        sub: "alice".into(),
        scopes: Scopes::of(["openid"]),
        resources: Vec::new(),
        nonce: Some(SECRET.into()),
        expires_at: 1,
        redeemed: Some(Issued::default()),
    });
}
