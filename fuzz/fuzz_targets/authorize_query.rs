//! The authorization request's query (RFC 6749 §4.1.1, PKCE, RFC 8707), read as
//! `GET /oauth/authorize` reads it: whatever it says, an error is only ever sent to a
//! redirect URI registered for the client (else shown), and an accepted request names
//! a registered redirect URI, an S256 challenge, a protected resource (or none) and
//! scopes within what is offered.
#![no_main]

use libfuzzer_sys::fuzz_target;
use token_broker::domain::authorize::{
    AuthorizeError, AuthorizeParams, BASE_SCOPES, ClientView, ResourceView, validate,
};
use token_broker::domain::scope::Scopes;
use token_broker::http::params::Params;
use url::Url;

const CLIENT: &str = "mcp-client";
const RESOURCE: &str = "https://mcp.example.com/mcp";

fn registered() -> Vec<String> {
    [
        "https://claude.ai/api/mcp/auth_callback",
        "http://127.0.0.1/callback",
        "http://localhost:3000/?state=x",
        "cursor://anysphere.cursor-mcp/oauth/callback",
    ]
    .map(String::from)
    .to_vec()
}

/// RFC 6749 §3.1.2.3 with RFC 8252 §7.3: the registered string, or a loopback http
/// URI differing only in its port.
fn is_registered(uri: &str) -> bool {
    registered().iter().any(|r| {
        r == uri
            || match (Url::parse(r), Url::parse(uri)) {
                (Ok(mut r), Ok(mut u)) => {
                    let loopback = |u: &Url| {
                        u.scheme() == "http"
                            && matches!(u.host_str(), Some("127.0.0.1" | "[::1]" | "localhost"))
                    };
                    let plain = |u: &mut Url| {
                        let _ = u.set_port(None);
                        let _ = u.set_username("");
                        let _ = u.set_password(None);
                    };
                    let (lr, lu) = (loopback(&r), loopback(&u));
                    plain(&mut r);
                    plain(&mut u);
                    lr && lu && r == u
                }
                _ => false,
            }
    })
}

fuzz_target!(|query: &[u8]| {
    // What actix-web's `web::Query<Vec<(String, String)>>` hands the handler.
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let params = Params::new(pairs);
    let one = |name: &str| params.one(name).ok().flatten();
    let redirect_uris = registered();
    let client = (one("client_id") == Some(CLIENT)).then(|| ClientView {
        client_id: CLIENT,
        redirect_uris: &redirect_uris,
    });
    let scopes = ["notes:read".to_owned(), "notes:write".to_owned()];
    let resources = [ResourceView {
        uri: RESOURCE,
        scopes_supported: &scopes,
    }];
    let request = AuthorizeParams {
        client_id: one("client_id"),
        redirect_uri: one("redirect_uri"),
        response_type: one("response_type"),
        code_challenge: one("code_challenge"),
        code_challenge_method: one("code_challenge_method"),
        state: one("state"),
        scope: one("scope"),
        resources: params.all("resource"),
    };
    match validate(&request, client.as_ref(), &resources) {
        Err(AuthorizeError::Show(_)) => {}
        Err(AuthorizeError::Redirect {
            redirect_uri,
            state,
            ..
        }) => {
            assert!(client.is_some(), "an unknown client is never redirected to");
            assert!(is_registered(&redirect_uri), "error sent to {redirect_uri}");
            assert_eq!(state.as_deref(), request.state);
        }
        Ok(granted) => {
            assert_eq!(granted.client_id, CLIENT);
            assert!(
                is_registered(&granted.redirect_uri),
                "{}",
                granted.redirect_uri
            );
            assert_eq!(request.response_type, Some("code"));
            assert_eq!(request.code_challenge_method, Some("S256"));
            assert!(
                granted.code_challenge.len() == 43
                    && granted
                        .code_challenge
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            );
            match request.resources.as_slice() {
                [] => assert_eq!(granted.resource, None),
                [one] => {
                    assert_eq!(granted.resource.as_deref(), Some(RESOURCE));
                    assert_eq!(one.trim_end_matches('/'), RESOURCE);
                }
                _ => panic!("two resources accepted"),
            }
            let offered = Scopes::of(
                BASE_SCOPES
                    .iter()
                    .copied()
                    .chain(["notes:read", "notes:write"]),
            );
            assert!(granted.scopes.is_subset(&offered), "{}", granted.scopes);
        }
    }
});
