//! Grants the broker itself performs at the provider's token endpoint.

use serde::Deserialize;

use super::UpstreamError;
use super::http::UpstreamHttp;
use crate::config::Secret;
use crate::domain::client_auth::basic_header;

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

/// The broker's own credentials at the provider.
#[derive(Clone, Debug)]
pub struct ClientCredentials {
    pub client_id: String,
    pub secret: Secret,
}

impl ClientCredentials {
    fn basic(&self) -> String {
        basic_header(&self.client_id, self.secret.expose())
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
    http.post_form(token_endpoint, Some(&client.basic()), &form)
        .await
}

/// RFC 6749 §4.1.3 with RFC 7636: redeems the provider's code with the broker's PKCE
/// verifier, authenticating as the broker's client there.
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
    http.post_form(token_endpoint, Some(&client.basic()), &form)
        .await
}

/// RFC 6749 §6: new provider tokens for a grant whose access token expired.
pub async fn refresh(
    http: &UpstreamHttp,
    token_endpoint: &str,
    client: &ClientCredentials,
    refresh_token: &str,
    scope: Option<&str>,
) -> Result<TokenResponse, UpstreamError> {
    let mut form = vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
    ];
    if let Some(scope) = scope {
        form.push(("scope", scope));
    }
    http.post_form(token_endpoint, Some(&client.basic()), &form)
        .await
}
