//! The development IdP, driven over real HTTP on 127.0.0.1:0: one file per endpoint
//! group. Each test starts its own IdP with its own clock, so expiry is tested by
//! moving that clock, never by sleeping.

mod authorize;
mod client_credentials;
mod code_flow;
mod discovery;
mod exchange;
mod faults;
mod introspect_revoke_userinfo;
mod keys;
mod malformed;
mod refresh;
mod register;

use std::collections::HashMap;
use std::net::TcpListener;
use std::time::Duration;

use actix_web::rt::task::JoinHandle;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation, decode, decode_header};
use reqwest::header::HeaderMap;
use serde_json::Value;
use token_broker::clock::Clock;
use token_broker::dev_idp::DevIdpConfig;
use token_broker::domain::client_auth::basic_header;
use token_broker::domain::pkce::challenge_of;

use crate::support::http;

/// The confidential client configured by default, with every grant.
pub const BROKER: (&str, &str) = ("token-broker", "token-broker-secret");
/// The service client configured by default: client credentials and token exchange.
pub const SERVICE: (&str, &str) = ("demo-service", "demo-service-secret");
/// A loopback redirect URI on a port the registered `http://127.0.0.1/oauth/callback`
/// does not name: loopback redirects match on any port.
pub const REDIRECT: &str = "http://127.0.0.1:8765/oauth/callback";
/// The PKCE verifier of every flow the helpers run.
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// A status, the headers and the JSON body (`Null` when empty) of one answer.
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Answer {
    pub async fn of(response: reqwest::Response) -> Self {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                panic!("not JSON ({status}): {}", String::from_utf8_lossy(&bytes))
            })
        };
        Self {
            status,
            headers,
            body,
        }
    }

    /// Asserts an RFC 6749 §5.2 error body with this status and code.
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(
            (self.status, self.body["error"].as_str()),
            (status, Some(code)),
            "{}",
            self.body
        );
        assert!(self.body["error_description"].is_string(), "{}", self.body);
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn str(&self, key: &str) -> &str {
        self.body[key]
            .as_str()
            .unwrap_or_else(|| panic!("no `{key}` in {}", self.body))
    }
}

/// A dev IdP in this process with a clock the test moves; stop it at the end.
pub struct TestIdp {
    pub url: String,
    pub clock: Clock,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    done: Option<JoinHandle<std::io::Result<()>>>,
}

impl TestIdp {
    pub async fn start() -> Self {
        Self::start_with(DevIdpConfig::default()).await
    }

    pub async fn start_with(config: DevIdpConfig) -> Self {
        let clock = Clock::system();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let running = token_broker::dev_idp::start(config, listener, clock.clone()).unwrap();
        let url = running.url.clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let done = actix_web::rt::spawn(running.serve_until(async {
            let _ = rx.await;
        }));
        Self {
            url,
            clock,
            stop: Some(tx),
            done: Some(done),
        }
    }

    /// Stops the server and waits until it has.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(done) = self.done.take() {
            done.await.unwrap().unwrap();
        }
    }

    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    pub fn advance(&self, secs: u64) {
        self.clock.advance(Duration::from_secs(secs));
    }

    pub async fn get(&self, path: &str) -> Answer {
        Answer::of(http().get(self.at(path)).send().await.unwrap()).await
    }

    /// POSTs JSON to a control or registration endpoint.
    pub async fn post_json(&self, path: &str, body: Value) -> Answer {
        Answer::of(http().post(self.at(path)).json(&body).send().await.unwrap()).await
    }

    /// POSTs a form with the client authenticated by HTTP Basic.
    pub async fn post_form(
        &self,
        path: &str,
        client: (&str, &str),
        form: &[(&str, &str)],
    ) -> Answer {
        let request = http()
            .post(self.at(path))
            .header("Authorization", basic_header(client.0, client.1))
            .form(form);
        Answer::of(request.send().await.unwrap()).await
    }

    pub async fn token(&self, client: (&str, &str), form: &[(&str, &str)]) -> Answer {
        self.post_form("/token", client, form).await
    }

    /// `GET /authorize` with a valid PKCE S256 request for `token-broker`, changed by
    /// `overrides` (an empty value drops the parameter).
    pub async fn authorize(&self, overrides: &[(&str, &str)]) -> reqwest::Response {
        let challenge = challenge_of(VERIFIER);
        let mut params: Vec<(&str, &str)> = vec![
            ("response_type", "code"),
            ("client_id", BROKER.0),
            ("redirect_uri", REDIRECT),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
            ("state", "st-123"),
        ];
        for (key, value) in overrides {
            params.retain(|(k, _)| k != key);
            if !value.is_empty() {
                params.push((key, value));
            }
        }
        http()
            .get(self.at("/authorize"))
            .query(&params)
            .send()
            .await
            .unwrap()
    }

    /// Authorizes and returns the code from the 302's `Location`.
    pub async fn code(&self, overrides: &[(&str, &str)]) -> String {
        let response = self.authorize(overrides).await;
        let query = redirect_query(&response);
        query
            .get("code")
            .cloned()
            .unwrap_or_else(|| panic!("no code in the redirect: {query:?}"))
    }

    /// Redeems `code` for `client` with the default redirect URI and verifier.
    pub async fn redeem(&self, client: (&str, &str), code: &str) -> Answer {
        self.token(
            client,
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", VERIFIER),
            ],
        )
        .await
    }

    /// The whole code flow for `token-broker`: authorize → 302 → code → tokens.
    pub async fn code_flow(&self, overrides: &[(&str, &str)]) -> Answer {
        let code = self.code(overrides).await;
        let answer = self.redeem(BROKER, &code).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        answer
    }

    /// A client-credentials token for `demo-service` with `extra` parameters.
    pub async fn service_token(&self, extra: &[(&str, &str)]) -> String {
        let mut form = vec![("grant_type", "client_credentials")];
        form.extend_from_slice(extra);
        let answer = self.token(SERVICE, &form).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        answer.str("access_token").to_owned()
    }

    /// `/introspect` as `token-broker`.
    pub async fn introspect(&self, token: &str) -> Value {
        let answer = self
            .post_form("/introspect", BROKER, &[("token", token)])
            .await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        answer.body
    }

    pub async fn active(&self, token: &str) -> bool {
        self.introspect(token).await["active"] == true
    }

    pub async fn jwks(&self) -> JwkSet {
        serde_json::from_value(self.get("/jwks").await.body).unwrap()
    }

    /// The counter of one endpoint or grant at `/_dev/calls`.
    pub async fn calls(&self, name: &str) -> u64 {
        self.get("/_dev/calls").await.body["calls"][name]["count"]
            .as_u64()
            .unwrap_or(0)
    }
}

/// The query of a 302's `Location` (asserting it is one).
pub fn redirect_query(response: &reqwest::Response) -> HashMap<String, String> {
    assert_eq!(response.status(), 302, "expected a redirect");
    let location = response.headers()["location"].to_str().unwrap();
    let url = url::Url::parse(location).unwrap();
    url.query_pairs().into_owned().collect()
}

/// Verifies a JWT's signature against `jwks` (by its `kid`, with the key's advertised
/// `alg`) and the issuer; returns its header `typ` and its claims.
pub fn verify(token: &str, jwks: &JwkSet, issuer: &str) -> (Option<String>, Value) {
    let header = decode_header(token).unwrap();
    let kid = header.kid.as_deref().expect("a kid");
    let jwk = jwks
        .find(kid)
        .unwrap_or_else(|| panic!("kid {kid} not in JWKS"));
    let advertised = jwk.common.key_algorithm.expect("the JWK names its alg");
    assert_eq!(format!("{advertised:?}"), format!("{:?}", header.alg));
    let mut validation = Validation::new(header.alg);
    validation.validate_aud = false;
    validation.set_issuer(&[issuer]);
    let key = DecodingKey::from_jwk(jwk).unwrap();
    let claims = decode::<Value>(token, &key, &validation).unwrap().claims;
    (header.typ, claims)
}
