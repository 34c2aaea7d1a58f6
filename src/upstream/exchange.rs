//! The grants the broker performs at the provider to get a downstream token: RFC 8693
//! token exchange, Entra's on-behalf-of, and a refresh asking for another resource.

use super::UpstreamError;
use super::http::UpstreamHttp;
use super::token::{ClientCredentials, TokenResponse};
use crate::telemetry::upstream::Operation;

/// RFC 8693 token type of access tokens.
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// RFC 8693 §2.1: a token for `audience` in exchange for `subject_token`.
pub async fn token_exchange(
    http: &UpstreamHttp,
    token_endpoint: &str,
    client: &ClientCredentials,
    subject_token: &str,
    actor_token: Option<&str>,
    audience: &str,
    scope: &str,
) -> Result<TokenResponse, UpstreamError> {
    let mut form = vec![
        (
            "grant_type",
            "urn:ietf:params:oauth:grant-type:token-exchange",
        ),
        ("subject_token", subject_token),
        ("subject_token_type", ACCESS_TOKEN_TYPE),
        ("requested_token_type", ACCESS_TOKEN_TYPE),
        ("audience", audience),
    ];
    if let Some(actor) = actor_token {
        form.push(("actor_token", actor));
        form.push(("actor_token_type", ACCESS_TOKEN_TYPE));
    }
    if !scope.is_empty() {
        form.push(("scope", scope));
    }
    client
        .post(http, Operation::Exchange, token_endpoint, &form)
        .await
}

/// Entra ID's on-behalf-of grant: the user's token as a JWT-bearer assertion, the
/// downstream API named in the scope (`<api>/<scope>` or `<api>/.default`).
pub async fn on_behalf_of(
    http: &UpstreamHttp,
    token_endpoint: &str,
    client: &ClientCredentials,
    assertion: &str,
    scope: &str,
) -> Result<TokenResponse, UpstreamError> {
    let form = [
        ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
        ("requested_token_use", "on_behalf_of"),
        ("assertion", assertion),
        ("scope", scope),
    ];
    client
        .post(http, Operation::Exchange, token_endpoint, &form)
        .await
}

/// A refresh-token grant asking for another resource (RFC 8707 §2.2), for providers
/// without token exchange.
pub async fn refresh_for_resource(
    http: &UpstreamHttp,
    token_endpoint: &str,
    client: &ClientCredentials,
    refresh_token: &str,
    resource: &str,
    scope: &str,
) -> Result<TokenResponse, UpstreamError> {
    let mut form = vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
        ("resource", resource),
    ];
    if !scope.is_empty() {
        form.push(("scope", scope));
    }
    client
        .post(http, Operation::Exchange, token_endpoint, &form)
        .await
}
