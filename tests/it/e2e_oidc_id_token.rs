//! ID tokens of a real, certified OpenID provider (oidc-provider, the rig of
//! e2e_oidc_provider) through the broker's validation: signature by jsonwebtoken
//! against the JWKS the broker discovered, then each claim check — a token the
//! provider really issued passes, and fails as soon as one expectation differs.

use std::time::Duration;

use token_broker::clock::Clock;
use token_broker::config::{Issuer, Secret};
use token_broker::domain::upstream_request::{self, Profile, UpstreamAuthorize};
use token_broker::upstream::id_token::{self, Expected, IdClaims, IdTokenError};
use token_broker::upstream::token::{self, ClientCredentials, TokenResponse};
use url::Url;

use crate::e2e_oidc_login::{Jar, follow};
use crate::e2e_oidc_provider::{Rig, start_rig};
use crate::support::{TestBroker, UPSTREAM_PLACEHOLDER, config_text};

/// A redirect URI the rig's `token-broker` client has; the login stops before it.
const CALLBACK: &str = "http://127.0.0.1/oauth/callback";
const VERIFIER: &str = "a-verifier-of-enough-length-for-rfc-7636-0123456789abcdef";
const NONCE: &str = "the-nonce-sent-to-oidc-provider";
const LEEWAY: Duration = Duration::from_secs(30);
/// The rig's ID token lifetime (`ttl.IdToken` in fixtures/oidc-provider/provider.mjs).
const ID_TOKEN_TTL: u64 = 300;

/// The broker's own upstream login, without the broker's pages: authorize at the
/// provider as the broker does (PKCE, state, nonce), log in, exchange the code.
async fn provider_login(broker: &TestBroker, rig: &Rig) -> TokenResponse {
    let snapshot = broker.state.discovery.current().await.unwrap();
    let url = upstream_request::build(&UpstreamAuthorize {
        authorization_endpoint: snapshot.info.authorization_endpoint.as_deref().unwrap(),
        client_id: "token-broker",
        callback: CALLBACK,
        state: "the-state",
        nonce: NONCE,
        verifier: VERIFIER,
        scopes: &["openid".to_owned(), "email".to_owned()],
        audience: None,
        also: &[],
        profile: Profile::Generic,
    })
    .unwrap();
    let (landed, hops) = follow(&mut Jar::default(), url, CALLBACK).await;
    assert!(
        hops.iter().any(|h| h.starts_with("/interaction/")),
        "the provider's login ran: {hops:?}"
    );
    let code = landed
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("no code: {landed}"));
    let tokens = token::exchange_code(
        &broker.state.upstream_http,
        snapshot.info.token_endpoint.as_deref().unwrap(),
        &ClientCredentials::with_secret("token-broker", Secret::new("token-broker-secret")),
        &code,
        CALLBACK,
        VERIFIER,
    )
    .await
    .unwrap();
    assert!(Url::parse(&rig.issuer).is_ok());
    tokens
}

struct Case<'a> {
    issuer: &'a Issuer,
    client_id: &'a str,
    nonce: &'a str,
    access_token: &'a str,
    id_token: &'a str,
    clock: &'a Clock,
}

async fn validate(broker: &TestBroker, case: &Case<'_>) -> Result<IdClaims, IdTokenError> {
    let expected = Expected {
        issuer: case.issuer,
        client_id: case.client_id,
        nonce: Some(case.nonce),
        access_token: Some(case.access_token),
        leeway: LEEWAY,
    };
    id_token::validate_with(
        &broker.state.discovery,
        &expected,
        case.id_token,
        case.clock,
    )
    .await
}

#[actix_web::test]
async fn oidc_provider_id_tokens_pass_and_each_claim_check_bites() {
    let rig = start_rig();
    let text = config_text().replace(UPSTREAM_PLACEHOLDER, &rig.issuer);
    let broker = TestBroker::start_live(&text, Default::default(), |_| {}).await;
    let tokens = provider_login(&broker, &rig).await;
    let id_token = tokens.id_token.clone().unwrap();
    // oidc-provider puts no at_hash in the token endpoint's ID token (optional in the
    // code flow), so the access token handed in is not compared here; the dev IdP's
    // tokens carry one (upstream_login), as do the unit tests' (every algorithm).
    let issuer = broker.state.config.upstream.issuer.clone();
    let clock = Clock::system();
    let good = Case {
        issuer: &issuer,
        client_id: "token-broker",
        nonce: NONCE,
        access_token: &tokens.access_token,
        id_token: &id_token,
        clock: &clock,
    };
    let claims = validate(&broker, &good).await.unwrap();
    assert_eq!(claims.subject, "alice");
    assert_eq!(claims.expires_at, claims.issued_at + ID_TOKEN_TTL);

    let other_issuer = Issuer::parse_upstream("https://elsewhere.example", false).unwrap();
    let (signed, signature) = id_token.rsplit_once('.').unwrap();
    let flipped = if signature.starts_with('A') { 'B' } else { 'A' };
    let tampered = format!("{signed}.{flipped}{}", &signature[1..]);
    let refusals: [(Case, &str); 4] = [
        (
            Case {
                nonce: "another-nonce",
                ..good
            },
            "nonce",
        ),
        (
            Case {
                client_id: "token-broker-post",
                ..good
            },
            "audience",
        ),
        (
            Case {
                issuer: &other_issuer,
                ..good
            },
            "issuer",
        ),
        (
            Case {
                id_token: &tampered,
                ..good
            },
            "signature",
        ),
    ];
    for (case, reason) in refusals {
        let result = validate(&broker, &case).await;
        assert_eq!(result.map_err(|e| e.reason()), Err(reason));
    }

    // Expiry by the clock handed in, with the 30 s leeway: 20 s past exp still passes,
    // 40 s past does not (10 s either side for a loaded machine).
    let later = Clock::system();
    later.advance(Duration::from_secs(claims.expires_at - later.unix() + 20));
    validate(
        &broker,
        &Case {
            clock: &later,
            ..good
        },
    )
    .await
    .unwrap();
    later.advance(Duration::from_secs(20));
    let result = validate(
        &broker,
        &Case {
            clock: &later,
            ..good
        },
    )
    .await;
    assert_eq!(result.map_err(|e| e.reason()), Err("expired"));
}
