//! The broker's side of the upstream login against the development IdP: a real
//! authorization request (PKCE, state, nonce), the code exchange with client
//! authentication, the ID token validated (signature by jsonwebtoken, claims by
//! openidconnect), refresh with rotation — and each way it must fail, with the typed
//! reason the callback and token handlers map.

use std::time::Duration;

use token_broker::config::{Issuer, Secret};
use token_broker::dev_idp::DevIdpConfig;
use token_broker::dev_idp::config::ClientSpec;
use token_broker::domain::upstream_request::{self, Profile, UpstreamAuthorize};
use token_broker::upstream::UpstreamError;
use token_broker::upstream::id_token::{self, Expected, IdTokenError};
use token_broker::upstream::token::{self, ClientCredentials, Target, TokenResponse};
use url::Url;

use crate::support::{TestBroker, TestDevIdp, config_text, http};

const CALLBACK: &str = "http://127.0.0.1/oauth/callback";
const VERIFIER: &str = "a-verifier-of-enough-length-for-rfc-7636-0123456789abcdef";
const NONCE: &str = "the-nonce-sent-upstream";
const LEEWAY: Duration = Duration::from_secs(30);

fn broker_client() -> ClientCredentials {
    ClientCredentials::with_secret("token-broker", Secret::new("token-broker-secret"))
}

fn other_client() -> ClientCredentials {
    ClientCredentials::with_secret("other-app", Secret::new("other-app-secret"))
}

/// The default dev IdP plus a second confidential client, so a real ID token for
/// another audience exists.
fn idp_with_other_client() -> DevIdpConfig {
    let mut config = DevIdpConfig::default();
    config.clients.push(ClientSpec {
        client_id: "other-app".to_owned(),
        client_secret: Some("other-app-secret".to_owned()),
        redirect_uris: vec![CALLBACK.to_owned()],
        grant_types: ["authorization_code", "refresh_token"]
            .map(String::from)
            .to_vec(),
        scopes: None,
    });
    config
}

async fn start() -> TestBroker {
    TestBroker::start_with_idp(&config_text(), idp_with_other_client(), |_| {}).await
}

async fn endpoints(broker: &TestBroker) -> (String, String) {
    let snapshot = broker.state.discovery.current().await.unwrap();
    (
        snapshot.info.authorization_endpoint.clone().unwrap(),
        snapshot.info.token_endpoint.clone().unwrap(),
    )
}

/// The browser's part: the authorization request as the broker builds it after
/// consent; the dev IdP logs the user in without a form and redirects with a code.
async fn authorize_at(authorization_endpoint: &str, client_id: &str, scopes: &[&str]) -> String {
    let scopes: Vec<String> = scopes.iter().map(|s| (*s).to_owned()).collect();
    let url = upstream_request::build(&UpstreamAuthorize {
        authorization_endpoint,
        client_id,
        callback: CALLBACK,
        state: "the-state",
        nonce: NONCE,
        verifier: VERIFIER,
        scopes: &scopes,
        audience: None,
        also: &[],
        profile: Profile::Generic,
    })
    .unwrap();
    send_authorization(url).await
}

/// Follows the authorization request to the redirect and returns the code.
async fn send_authorization(url: Url) -> String {
    let response = http().get(url.as_str()).send().await.unwrap();
    assert_eq!(response.status(), 302, "{}", response.text().await.unwrap());
    let location = Url::parse(response.headers()["location"].to_str().unwrap()).unwrap();
    assert!(location.as_str().starts_with(CALLBACK));
    let get = |key: &str| {
        location
            .query_pairs()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.into_owned())
    };
    assert_eq!(get("state").as_deref(), Some("the-state"));
    assert_eq!(get("error"), None);
    get("code").unwrap()
}

async fn authorize(broker: &TestBroker, client_id: &str, scopes: &[&str]) -> String {
    let (authorization_endpoint, _) = endpoints(broker).await;
    authorize_at(&authorization_endpoint, client_id, scopes).await
}

async fn exchange(
    broker: &TestBroker,
    client: &ClientCredentials,
    code: &str,
    verifier: &str,
) -> Result<TokenResponse, UpstreamError> {
    let (_, token_endpoint) = endpoints(broker).await;
    token::exchange_code(
        &broker.state.upstream_http,
        &token_endpoint,
        client,
        code,
        CALLBACK,
        verifier,
    )
    .await
}

/// A full login for `client` with the openid scope.
async fn login(broker: &TestBroker, client: &ClientCredentials) -> TokenResponse {
    let code = authorize(broker, &client.client_id, &["openid", "profile", "email"]).await;
    exchange(broker, client, &code, VERIFIER).await.unwrap()
}

async fn validate(
    broker: &TestBroker,
    issuer: &Issuer,
    nonce: &str,
    tokens: &TokenResponse,
) -> Result<id_token::IdClaims, IdTokenError> {
    let expected = Expected {
        issuer,
        client_id: "token-broker",
        nonce: Some(nonce),
        access_token: Some(&tokens.access_token),
        leeway: LEEWAY,
    };
    id_token::validate_with(
        &broker.state.discovery,
        &expected,
        tokens.id_token.as_deref().unwrap(),
        &broker.clock,
    )
    .await
}

fn issuer(broker: &TestBroker) -> Issuer {
    broker.state.config.upstream.issuer.clone()
}

#[actix_web::test]
async fn a_code_exchange_with_pkce_yields_a_valid_id_token_naming_the_user() {
    let broker = start().await;
    let tokens = login(&broker, &broker_client()).await;
    assert!(tokens.token_type.eq_ignore_ascii_case("bearer"));
    assert!(tokens.refresh_token.is_some());
    assert_eq!(tokens.expires_in, Some(300));
    assert!(tokens.scope.as_deref().unwrap().contains("openid"));
    let debug = format!("{tokens:?}");
    assert!(!debug.contains(&tokens.access_token), "{debug}");
    assert!(!debug.contains(tokens.id_token.as_deref().unwrap()));

    let claims = validate(&broker, &issuer(&broker), NONCE, &tokens)
        .await
        .unwrap();
    assert_eq!(claims.subject, "alice");
    assert_eq!(claims.email.as_deref(), Some("alice@example.com"));
    assert_eq!(claims.name.as_deref(), Some("Alice Example"));
    let now = broker.clock.unix();
    assert!(claims.auth_time.is_some_and(|t| t.abs_diff(now) < 5));
    assert_eq!(claims.expires_at, claims.issued_at + 300);
}

#[actix_web::test]
async fn a_wrong_nonce_is_refused() {
    let broker = start().await;
    let tokens = login(&broker, &broker_client()).await;
    let result = validate(&broker, &issuer(&broker), "another-nonce", &tokens).await;
    assert!(matches!(result, Err(IdTokenError::Nonce(_))), "{result:?}");
}

#[actix_web::test]
async fn an_id_token_issued_to_another_client_is_refused() {
    let broker = start().await;
    // A genuine token from the same provider, signed with its key, but for other-app.
    let tokens = login(&broker, &other_client()).await;
    let result = validate(&broker, &issuer(&broker), NONCE, &tokens).await;
    assert!(
        matches!(result, Err(IdTokenError::Audience(_))),
        "{result:?}"
    );
}

#[actix_web::test]
async fn an_id_token_expires_by_the_brokers_clock_with_bounded_leeway() {
    let broker = start().await;
    let tokens = login(&broker, &broker_client()).await;
    // exp = iat + 300; within the 30 s leeway it still passes.
    broker.clock.advance(Duration::from_secs(320));
    validate(&broker, &issuer(&broker), NONCE, &tokens)
        .await
        .unwrap();
    broker.clock.advance(Duration::from_secs(11));
    let result = validate(&broker, &issuer(&broker), NONCE, &tokens).await;
    assert!(
        matches!(result, Err(IdTokenError::Expired(_))),
        "{result:?}"
    );
}

#[actix_web::test]
async fn a_tampered_signature_is_refused() {
    let broker = start().await;
    let mut tokens = login(&broker, &broker_client()).await;
    let id_token = tokens.id_token.clone().unwrap();
    let (signed, signature) = id_token.rsplit_once('.').unwrap();
    // Change the first character: it carries whole bits of the signature.
    let first = signature.chars().next().unwrap();
    let swapped = if first == 'A' { 'B' } else { 'A' };
    tokens.id_token = Some(format!("{signed}.{swapped}{}", &signature[1..]));
    let result = validate(&broker, &issuer(&broker), NONCE, &tokens).await;
    assert!(
        matches!(result, Err(IdTokenError::Signature(_))),
        "{result:?}"
    );
}

#[actix_web::test]
async fn an_id_token_from_another_issuer_is_refused() {
    let broker = start().await;
    // Another provider knows the same client and logs alice in: a mix-up.
    let elsewhere =
        TestDevIdp::start_with_clock(idp_with_other_client(), broker.clock.clone()).await;
    let code = authorize_at(
        &format!("{}/authorize", elsewhere.url),
        "token-broker",
        &["openid"],
    )
    .await;
    let tokens = token::exchange_code(
        &broker.state.upstream_http,
        &format!("{}/token", elsewhere.url),
        &broker_client(),
        &code,
        CALLBACK,
        VERIFIER,
    )
    .await
    .unwrap();
    // Its key is not our provider's: refused on the signature, before any claim is
    // read (the JWKS was refetched once for the unknown kid).
    let result = validate(&broker, &issuer(&broker), NONCE, &tokens).await;
    assert!(
        matches!(result, Err(IdTokenError::UnknownKey { .. })),
        "{result:?}"
    );
    // Expecting the other issuer changes nothing: only our provider's keys count.
    let other = Issuer::parse_upstream(&elsewhere.url, true).unwrap();
    let result = validate(&broker, &other, NONCE, &tokens).await;
    assert!(
        matches!(result, Err(IdTokenError::UnknownKey { .. })),
        "{result:?}"
    );
}

#[actix_web::test]
async fn an_id_token_bound_to_another_access_token_is_refused() {
    let broker = start().await;
    let first = login(&broker, &broker_client()).await;
    let second = login(&broker, &broker_client()).await;
    let swapped = TokenResponse {
        access_token: second.access_token.clone(),
        ..first
    };
    let result = validate(&broker, &issuer(&broker), NONCE, &swapped).await;
    assert!(
        matches!(result, Err(IdTokenError::AccessTokenHash(_))),
        "{result:?}"
    );
}

#[actix_web::test]
async fn without_the_openid_scope_there_is_no_id_token_and_nothing_to_validate() {
    let broker = start().await;
    // The broker always asks for openid; a provider may still answer a plain OAuth
    // request, which is what this one is.
    let (authorization_endpoint, _) = endpoints(&broker).await;
    let mut url = upstream_request::build(&UpstreamAuthorize {
        authorization_endpoint: &authorization_endpoint,
        client_id: "token-broker",
        callback: CALLBACK,
        state: "the-state",
        nonce: NONCE,
        verifier: VERIFIER,
        scopes: &[],
        audience: None,
        also: &[],
        profile: Profile::Generic,
    })
    .unwrap();
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| match k.as_ref() {
            "scope" => (k.into_owned(), "notes:read".to_owned()),
            _ => (k.into_owned(), v.into_owned()),
        })
        .collect();
    url.query_pairs_mut().clear().extend_pairs(pairs);
    let code = send_authorization(url).await;
    let tokens = exchange(&broker, &broker_client(), &code, VERIFIER)
        .await
        .unwrap();
    assert!(tokens.id_token.is_none());
    let result = id_token::validate(
        &broker.state.discovery,
        &issuer(&broker),
        "token-broker",
        NONCE,
        "",
        &broker.clock,
        LEEWAY,
    )
    .await;
    assert!(
        matches!(result, Err(IdTokenError::Malformed(_))),
        "{result:?}"
    );
}

#[actix_web::test]
async fn the_provider_refusing_the_code_is_a_typed_invalid_grant() {
    let broker = start().await;
    let code = authorize(&broker, "token-broker", &["openid"]).await;
    let wrong = "another-verifier-of-enough-length-for-rfc-7636-0123456789";
    let error = exchange(&broker, &broker_client(), &code, wrong)
        .await
        .unwrap_err();
    assert!(error.is_invalid_grant(), "{error:?}");
    assert!(
        matches!(&error, UpstreamError::OAuth { status: 400, error, .. } if error == "invalid_grant"),
        "{error:?}"
    );
    // The code is still good for the right verifier, then spent.
    exchange(&broker, &broker_client(), &code, VERIFIER)
        .await
        .unwrap();
    let replay = exchange(&broker, &broker_client(), &code, VERIFIER)
        .await
        .unwrap_err();
    assert!(replay.is_invalid_grant(), "{replay:?}");
}

#[actix_web::test]
async fn a_wrong_client_secret_is_invalid_client_not_invalid_grant() {
    let broker = start().await;
    let code = authorize(&broker, "token-broker", &["openid"]).await;
    let bad = ClientCredentials::with_secret("token-broker", Secret::new("not-the-secret"));
    let error = exchange(&broker, &bad, &code, VERIFIER).await.unwrap_err();
    assert_eq!(error.oauth_error(), Some("invalid_client"), "{error:?}");
    assert!(!error.is_invalid_grant());
}

#[actix_web::test]
async fn refresh_rotates_the_upstream_refresh_token_and_the_old_one_dies() {
    let broker = start().await;
    let tokens = login(&broker, &broker_client()).await;
    let first_refresh = tokens.refresh_token.clone().unwrap();
    let (_, token_endpoint) = endpoints(&broker).await;
    broker.clock.advance(Duration::from_secs(301));
    let refreshed = token::refresh(
        &broker.state.upstream_http,
        &token_endpoint,
        &broker_client(),
        &first_refresh,
        None,
    )
    .await
    .unwrap();
    assert_ne!(refreshed.access_token, tokens.access_token);
    let second_refresh = refreshed.refresh_token.clone().unwrap();
    assert_ne!(second_refresh, first_refresh, "the provider rotates");
    assert_eq!(refreshed.expires_in, Some(300));
    // Narrowing the scope and naming the API (RFC 8707) on the next refresh.
    let narrowed = token::refresh_for(
        &broker.state.upstream_http,
        &token_endpoint,
        &broker_client(),
        &second_refresh,
        Some("openid"),
        Some(Target {
            audience: "https://mcp.example/mcp",
            profile: Profile::Generic,
        }),
    )
    .await
    .unwrap();
    assert_eq!(narrowed.scope.as_deref(), Some("openid"));
    // The rotated-out token is refused, as a typed invalid_grant the token handler maps.
    let reuse = token::refresh(
        &broker.state.upstream_http,
        &token_endpoint,
        &broker_client(),
        &first_refresh,
        None,
    )
    .await
    .unwrap_err();
    assert!(reuse.is_invalid_grant(), "{reuse:?}");
}

#[actix_web::test]
async fn a_new_signing_key_is_fetched_once_and_the_token_passes() {
    let broker = start().await;
    // The broker holds the provider's keys from before the rotation.
    broker.state.discovery.current().await.unwrap();
    let jwks_before = broker.idp.calls("jwks").await;
    broker
        .idp
        .idp
        .keys
        .rotate(None, broker.clock.unix())
        .unwrap();
    let tokens = login(&broker, &broker_client()).await;
    let claims = validate(&broker, &issuer(&broker), NONCE, &tokens)
        .await
        .unwrap();
    assert_eq!(claims.subject, "alice");
    assert_eq!(broker.idp.calls("jwks").await, jwks_before + 1);
}
