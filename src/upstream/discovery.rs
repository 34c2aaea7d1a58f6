//! Fetching the provider's metadata: OpenID discovery first (parsed with
//! openidconnect's `ProviderMetadata`), the RFC 8414 document as fallback for plain
//! OAuth servers. Either way the document's `issuer` must equal the configured one
//! exactly, or the provider is refused (a mix-up defence: RFC 8414 §3.3).

use openidconnect::core::{
    CoreAuthDisplay, CoreClaimName, CoreClaimType, CoreClientAuthMethod, CoreGrantType,
    CoreJsonWebKey, CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm,
    CoreResponseMode, CoreResponseType, CoreSubjectIdentifierType,
};
use openidconnect::{AdditionalProviderMetadata, ProviderMetadata};
use serde::{Deserialize, Serialize};

use super::UpstreamError;
use super::http::UpstreamHttp;
use crate::config::Issuer;
use crate::telemetry::upstream::Operation;

/// Fields OpenID discovery does not define but RFC 8414 and its extensions do.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct OAuthExtras {
    pub introspection_endpoint: Option<String>,
    pub revocation_endpoint: Option<String>,
    pub code_challenge_methods_supported: Option<Vec<String>>,
}

impl AdditionalProviderMetadata for OAuthExtras {}

type OidcMetadata = ProviderMetadata<
    OAuthExtras,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

/// An RFC 8414 document (the fallback).
#[derive(Deserialize)]
struct OAuthMetadata {
    issuer: String,
    authorization_endpoint: Option<String>,
    token_endpoint: Option<String>,
    jwks_uri: Option<String>,
    registration_endpoint: Option<String>,
    introspection_endpoint: Option<String>,
    revocation_endpoint: Option<String>,
    #[serde(default)]
    grant_types_supported: Vec<String>,
    #[serde(default)]
    code_challenge_methods_supported: Vec<String>,
    #[serde(default)]
    id_token_signing_alg_values_supported: Vec<String>,
}

/// Which document the metadata came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentKind {
    OpenidConfiguration,
    OauthAuthorizationServer,
}

/// What the broker needs to know about the provider.
#[derive(Debug, Clone, Serialize)]
pub struct ProviderInfo {
    pub issuer: String,
    pub kind: DocumentKind,
    pub jwks_uri: String,
    pub authorization_endpoint: Option<String>,
    pub token_endpoint: Option<String>,
    pub userinfo_endpoint: Option<String>,
    pub registration_endpoint: Option<String>,
    pub introspection_endpoint: Option<String>,
    pub revocation_endpoint: Option<String>,
    pub grant_types_supported: Vec<String>,
    pub code_challenge_methods_supported: Vec<String>,
    /// JWS algorithms the provider may sign ID tokens with (OIDC Discovery §3), as
    /// named there (`RS256`, `ES256`, …); empty when the document says nothing.
    pub id_token_signing_alg_values_supported: Vec<String>,
}

/// `{issuer}/.well-known/openid-configuration` (OIDC Discovery §4).
pub fn oidc_url(issuer: &Issuer) -> String {
    format!(
        "{}/.well-known/openid-configuration",
        issuer.as_str().trim_end_matches('/')
    )
}

/// `{origin}/.well-known/oauth-authorization-server{path}` (RFC 8414 §3.1).
pub fn oauth_url(issuer: &Issuer) -> String {
    let url = issuer.url();
    let origin = url.origin().ascii_serialization();
    format!(
        "{origin}/.well-known/oauth-authorization-server{}",
        issuer.path()
    )
}

/// Fetches and checks the provider's metadata.
pub async fn discover(http: &UpstreamHttp, issuer: &Issuer) -> Result<ProviderInfo, UpstreamError> {
    let url = oidc_url(issuer);
    match http
        .get_json::<OidcMetadata>(Operation::Discovery, &url)
        .await
    {
        Ok(doc) => from_oidc(issuer, doc),
        // Not an OpenID provider: try the plain OAuth document.
        Err(UpstreamError::Status { status: 404, .. })
        | Err(UpstreamError::OAuth { status: 404, .. }) => {
            let url = oauth_url(issuer);
            let doc = http
                .get_json::<OAuthMetadata>(Operation::Discovery, &url)
                .await?;
            from_oauth(issuer, &url, doc)
        }
        Err(other) => Err(other),
    }
}

fn check_issuer(expected: &Issuer, found: &str) -> Result<(), UpstreamError> {
    if found == expected.as_str() {
        Ok(())
    } else {
        Err(UpstreamError::IssuerMismatch {
            expected: expected.as_str().to_owned(),
            found: found.to_owned(),
        })
    }
}

fn from_oidc(issuer: &Issuer, doc: OidcMetadata) -> Result<ProviderInfo, UpstreamError> {
    check_issuer(issuer, doc.issuer().as_str())?;
    let extras = doc.additional_metadata().clone();
    let grant_types = doc
        .grant_types_supported()
        .map(|grants| {
            grants
                .iter()
                .filter_map(|g| serde_json::to_value(g).ok()?.as_str().map(String::from))
                .collect()
        })
        // OIDC Discovery §3: the default when omitted.
        .unwrap_or_else(|| vec!["authorization_code".to_owned(), "implicit".to_owned()]);
    Ok(ProviderInfo {
        issuer: doc.issuer().to_string(),
        kind: DocumentKind::OpenidConfiguration,
        jwks_uri: doc.jwks_uri().to_string(),
        authorization_endpoint: Some(doc.authorization_endpoint().to_string()),
        token_endpoint: doc.token_endpoint().map(ToString::to_string),
        userinfo_endpoint: doc.userinfo_endpoint().map(ToString::to_string),
        registration_endpoint: doc.registration_endpoint().map(ToString::to_string),
        introspection_endpoint: extras.introspection_endpoint,
        revocation_endpoint: extras.revocation_endpoint,
        grant_types_supported: grant_types,
        code_challenge_methods_supported: extras
            .code_challenge_methods_supported
            .unwrap_or_default(),
        id_token_signing_alg_values_supported: doc
            .id_token_signing_alg_values_supported()
            .iter()
            .filter_map(|alg| serde_json::to_value(alg).ok()?.as_str().map(String::from))
            .collect(),
    })
}

fn from_oauth(
    issuer: &Issuer,
    url: &str,
    doc: OAuthMetadata,
) -> Result<ProviderInfo, UpstreamError> {
    check_issuer(issuer, &doc.issuer)?;
    let jwks_uri = doc.jwks_uri.ok_or_else(|| UpstreamError::Invalid {
        url: url.to_owned(),
        reason: "no jwks_uri: the broker cannot verify the provider's tokens".to_owned(),
    })?;
    Ok(ProviderInfo {
        issuer: doc.issuer,
        kind: DocumentKind::OauthAuthorizationServer,
        jwks_uri,
        authorization_endpoint: doc.authorization_endpoint,
        token_endpoint: doc.token_endpoint,
        userinfo_endpoint: None,
        registration_endpoint: doc.registration_endpoint,
        introspection_endpoint: doc.introspection_endpoint,
        revocation_endpoint: doc.revocation_endpoint,
        grant_types_supported: if doc.grant_types_supported.is_empty() {
            vec!["authorization_code".to_owned(), "implicit".to_owned()]
        } else {
            doc.grant_types_supported
        },
        code_challenge_methods_supported: doc.code_challenge_methods_supported,
        id_token_signing_alg_values_supported: doc.id_token_signing_alg_values_supported,
    })
}
