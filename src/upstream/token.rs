//! Grants the broker itself performs at the provider's token endpoint.

use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::UpstreamError;
use super::http::UpstreamHttp;
use crate::config::{Secret, UpstreamClientKey, UpstreamConfig};
use crate::domain::client_auth::{JWT_CLIENT_ASSERTION, basic_header};
use crate::domain::upstream_request::Profile;
use crate::telemetry::upstream::Operation;

/// A token endpoint's success response (RFC 6749 §5.1, RFC 8693 §2.2.1). Its
/// `Display` (and `Debug`) never show the tokens.
#[derive(Clone, Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: Option<u64>,
    pub refresh_token: Option<String>,
    pub id_token: Option<String>,
    pub scope: Option<String>,
    pub issued_token_type: Option<String>,
}

impl std::fmt::Display for TokenResponse {
    /// Never shows the tokens themselves.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} token, expires in {}, scope `{}`",
            self.token_type,
            self.expires_in.map_or("?".to_owned(), |s| format!("{s}s")),
            self.scope.as_deref().unwrap_or("")
        )
    }
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TokenResponse({self})")
    }
}

/// What authenticates one request: the `Authorization` header, or form fields.
struct Authentication {
    basic: Option<String>,
    fields: Vec<(&'static str, String)>,
}

impl Authentication {
    /// `form` with the authentication's fields after it.
    fn form<'a>(&'a self, form: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        let mut all = form.to_vec();
        all.extend(self.fields.iter().map(|(k, v)| (*k, v.as_str())));
        all
    }
}

/// How long the broker's client assertions are valid: long enough for one request.
const ASSERTION_LIFETIME: u64 = 60;

/// The broker's own credentials at the provider (or a proxied client's): a secret,
/// sent as `client_secret_basic`, or a private key signing a client assertion per
/// request (`private_key_jwt`, RFC 7523 §2.2).
#[derive(Clone, Debug)]
pub struct ClientCredentials {
    pub client_id: String,
    pub secret: Secret,
    /// `upstream.client_key` with `client_auth = "private_key_jwt"`.
    pub key: Option<UpstreamClientKey>,
}

impl ClientCredentials {
    /// A client that authenticates with a secret.
    pub fn with_secret(client_id: impl Into<String>, secret: Secret) -> Self {
        Self {
            client_id: client_id.into(),
            secret,
            key: None,
        }
    }

    /// The broker's own client, as `[upstream]` configures it.
    pub fn of(upstream: &UpstreamConfig) -> Self {
        Self {
            client_id: upstream.client_id.clone(),
            secret: upstream.client_secret.clone(),
            key: upstream.client_key.clone(),
        }
    }

    /// The `Authorization` header and the form fields that authenticate a request to
    /// `endpoint`: Basic, or a fresh assertion for that endpoint (`aud`; the endpoint
    /// is what Entra and Okta expect, and oidc-provider accepts) with `client_id`.
    fn authentication(&self, endpoint: &str) -> Result<Authentication, UpstreamError> {
        let Some(key) = &self.key else {
            return Ok(Authentication {
                basic: Some(basic_header(&self.client_id, self.secret.expose())),
                fields: Vec::new(),
            });
        };
        // The provider judges the assertion by its own clock: system time, not the
        // broker's test offset.
        let now = crate::clock::Clock::system().unix();
        let mut jti = [0u8; 16];
        rand::Rng::fill_bytes(&mut rand::rng(), &mut jti);
        let claims = serde_json::json!({
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": endpoint,
            "iat": now,
            "exp": now + ASSERTION_LIFETIME,
            "jti": base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, jti),
        });
        let assertion = key.sign(&claims).map_err(|e| UpstreamError::Invalid {
            url: endpoint.to_owned(),
            reason: format!("cannot sign the client assertion: {e}"),
        })?;
        Ok(Authentication {
            basic: None,
            fields: vec![
                ("client_id", self.client_id.clone()),
                ("client_assertion_type", JWT_CLIENT_ASSERTION.to_owned()),
                ("client_assertion", assertion),
            ],
        })
    }

    /// POSTs `form` to `endpoint`, authenticated as this client.
    pub async fn post<T: DeserializeOwned>(
        &self,
        http: &UpstreamHttp,
        operation: Operation,
        endpoint: &str,
        form: &[(&str, &str)],
    ) -> Result<T, UpstreamError> {
        let auth = self.authentication(endpoint)?;
        http.post_form(operation, endpoint, auth.basic.as_deref(), &auth.form(form))
            .await
    }

    /// [`ClientCredentials::post`] for an answer without a body to read.
    pub async fn post_unread(
        &self,
        http: &UpstreamHttp,
        operation: Operation,
        endpoint: &str,
        form: &[(&str, &str)],
    ) -> Result<(), UpstreamError> {
        let auth = self.authentication(endpoint)?;
        http.post_form_unread(operation, endpoint, auth.basic.as_deref(), &auth.form(form))
            .await
    }
}

/// RFC 6749 §4.4: a token for the broker itself (used to check its credentials).
pub async fn client_credentials(
    http: &UpstreamHttp,
    token_endpoint: &str,
    client: &ClientCredentials,
    scope: Option<&str>,
) -> Result<TokenResponse, UpstreamError> {
    let mut form = vec![("grant_type", "client_credentials")];
    if let Some(scope) = scope {
        form.push(("scope", scope));
    }
    client
        .post(http, Operation::Token, token_endpoint, &form)
        .await
}

/// RFC 6749 §4.1.3 with RFC 7636: redeems the provider's code with the broker's PKCE
/// verifier, authenticating as the broker's client there (`client_secret_basic`). A
/// refusal (`invalid_grant` for a spent code or a wrong verifier) is
/// [`UpstreamError::OAuth`]; a success that is not a bearer token is
/// [`UpstreamError::Invalid`].
pub async fn exchange_code(
    http: &UpstreamHttp,
    token_endpoint: &str,
    client: &ClientCredentials,
    code: &str,
    redirect_uri: &str,
    verifier: &str,
) -> Result<TokenResponse, UpstreamError> {
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", redirect_uri),
        ("code_verifier", verifier),
    ];
    let tokens = client
        .post(http, Operation::Token, token_endpoint, &form)
        .await?;
    usable(token_endpoint, tokens)
}

/// RFC 6749 §6: new provider tokens for a grant whose access token expired, with no
/// audience named (the provider keeps the grant's).
pub async fn refresh(
    http: &UpstreamHttp,
    token_endpoint: &str,
    client: &ClientCredentials,
    refresh_token: &str,
    scope: Option<&str>,
) -> Result<TokenResponse, UpstreamError> {
    refresh_for(http, token_endpoint, client, refresh_token, scope, None).await
}

/// RFC 7009 §2.1: asks the provider to revoke one of its tokens (`hint`:
/// `access_token` or `refresh_token`), authenticating as the client it was issued to.
pub async fn revoke(
    http: &UpstreamHttp,
    revocation_endpoint: &str,
    client: &ClientCredentials,
    token: &str,
    hint: &str,
) -> Result<(), UpstreamError> {
    let form = [("token", token), ("token_type_hint", hint)];
    client
        .post_unread(http, Operation::Revocation, revocation_endpoint, &form)
        .await
}

/// The API a refreshed token is for, said the way the provider understands it.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// The upstream name of the API (the resource's audience at the provider).
    pub audience: &'a str,
    pub profile: Profile,
}

/// RFC 6749 §6 naming the API the new access token is for (RFC 8707 `resource`,
/// Keycloak's `audience`, Entra's `<api>/.default` scope — as at login). The answer
/// may carry a rotated refresh token; when it has none, the old one stays valid.
pub async fn refresh_for(
    http: &UpstreamHttp,
    token_endpoint: &str,
    client: &ClientCredentials,
    refresh_token: &str,
    scope: Option<&str>,
    target: Option<Target<'_>>,
) -> Result<TokenResponse, UpstreamError> {
    let form = refresh_form(refresh_token, scope, target);
    let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let tokens = client
        .post(http, Operation::Token, token_endpoint, &pairs)
        .await?;
    usable(token_endpoint, tokens)
}

/// The refresh request's form (pure, so each provider's dialect is testable).
pub fn refresh_form(
    refresh_token: &str,
    scope: Option<&str>,
    target: Option<Target<'_>>,
) -> Vec<(&'static str, String)> {
    let mut form = vec![
        ("grant_type", "refresh_token".to_owned()),
        ("refresh_token", refresh_token.to_owned()),
    ];
    let mut scope = scope.map(str::to_owned);
    match target {
        Some(Target {
            audience,
            profile: Profile::Generic,
        }) => form.push(("resource", audience.to_owned())),
        Some(Target {
            audience,
            profile: Profile::Keycloak,
        }) => form.push(("audience", audience.to_owned())),
        Some(Target {
            audience,
            profile: Profile::Entra,
        }) => {
            let default = format!("{}/.default", audience.trim_end_matches('/'));
            scope = Some(match scope {
                Some(s) if s.split(' ').any(|x| x == default) => s,
                Some(s) if !s.trim().is_empty() => format!("{s} {default}"),
                _ => default,
            });
        }
        Some(Target {
            profile: Profile::None,
            ..
        })
        | None => {}
    }
    if let Some(scope) = scope {
        form.push(("scope", scope));
    }
    form
}

/// A success the broker can use: a non-empty bearer access token (a `DPoP`- or
/// MAC-bound token could not be presented by the broker on the user's behalf).
fn usable(url: &str, tokens: TokenResponse) -> Result<TokenResponse, UpstreamError> {
    let invalid = |reason: String| UpstreamError::Invalid {
        url: url.to_owned(),
        reason,
    };
    if tokens.access_token.is_empty() {
        return Err(invalid("the access_token is empty".to_owned()));
    }
    if !tokens.token_type.eq_ignore_ascii_case("bearer") {
        return Err(invalid(format!(
            "token_type `{}` is not Bearer",
            tokens.token_type
        )));
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(profile: Profile) -> Option<Target<'static>> {
        Some(Target {
            audience: "https://mcp.example/mcp/",
            profile,
        })
    }

    fn get<'a>(form: &'a [(&str, String)], key: &str) -> Option<&'a str> {
        form.iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn a_plain_refresh_sends_the_token_and_the_scope_only() {
        let form = refresh_form("rt", Some("openid notes:read"), None);
        assert_eq!(get(&form, "grant_type"), Some("refresh_token"));
        assert_eq!(get(&form, "refresh_token"), Some("rt"));
        assert_eq!(get(&form, "scope"), Some("openid notes:read"));
        assert_eq!(form.len(), 3);
        assert_eq!(refresh_form("rt", None, None).len(), 2);
    }

    #[test]
    fn the_audience_is_said_the_way_each_provider_understands() {
        let generic = refresh_form("rt", None, target(Profile::Generic));
        assert_eq!(get(&generic, "resource"), Some("https://mcp.example/mcp/"));
        assert_eq!(get(&generic, "audience"), None);
        let keycloak = refresh_form("rt", None, target(Profile::Keycloak));
        assert_eq!(get(&keycloak, "audience"), Some("https://mcp.example/mcp/"));
        assert_eq!(get(&keycloak, "resource"), None);
        let entra = refresh_form("rt", Some("openid offline_access"), target(Profile::Entra));
        assert_eq!(get(&entra, "resource"), None);
        assert_eq!(
            get(&entra, "scope"),
            Some("openid offline_access https://mcp.example/mcp/.default")
        );
        let entra_alone = refresh_form("rt", None, target(Profile::Entra));
        assert_eq!(
            get(&entra_alone, "scope"),
            Some("https://mcp.example/mcp/.default")
        );
        let already = refresh_form(
            "rt",
            Some("https://mcp.example/mcp/.default"),
            target(Profile::Entra),
        );
        assert_eq!(
            get(&already, "scope"),
            Some("https://mcp.example/mcp/.default")
        );
        let none = refresh_form("rt", None, target(Profile::None));
        assert_eq!(none.len(), 2);
    }

    fn response(token_type: &str, access_token: &str) -> TokenResponse {
        TokenResponse {
            access_token: access_token.to_owned(),
            token_type: token_type.to_owned(),
            expires_in: Some(300),
            refresh_token: Some("the-refresh-token".to_owned()),
            id_token: Some("the-id-token".to_owned()),
            scope: None,
            issued_token_type: None,
        }
    }

    #[test]
    fn only_non_empty_bearer_tokens_are_usable() {
        assert!(usable("u", response("Bearer", "at")).is_ok());
        assert!(usable("u", response("bearer", "at")).is_ok());
        assert!(usable("u", response("DPoP", "at")).is_err());
        assert!(usable("u", response("Bearer", "")).is_err());
    }

    #[test]
    fn debug_and_display_never_show_tokens() {
        let shown = format!(
            "{:?} {}",
            response("Bearer", "secret-at"),
            response("Bearer", "x")
        );
        assert!(!shown.contains("secret-at"));
        assert!(!shown.contains("the-refresh-token"));
        assert!(!shown.contains("the-id-token"));
        assert!(shown.contains("expires in 300s"));
    }
}
