//! Client registration metadata (RFC 7591 §2), validated for MCP clients: the rules
//! every real client's registration passes (CLIENTS.md) and no open redirector does.

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use url::Url;

mod keys;
mod redirect;

pub use keys::{CLIENT_ASSERTION_ALGS, check_public_jwks};
pub use redirect::RedirectPolicy;

use super::display_text::{find_hidden_control, strip_hidden_controls};
use super::scope::Scopes;

/// Scopes a client may register; `None` = any.
#[derive(Debug, Clone, Default)]
pub struct SupportedScopes(pub Option<Scopes>);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenEndpointAuthMethod {
    None,
    ClientSecretBasic,
    ClientSecretPost,
    /// A client assertion signed with one of the client's keys (RFC 7523 §2.2),
    /// which it registers as `jwks` or `jwks_uri`; no secret is issued.
    PrivateKeyJwt,
}

impl TokenEndpointAuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::PrivateKeyJwt => "private_key_jwt",
        }
    }

    /// Whether the broker issues this client a secret.
    pub fn uses_secret(self) -> bool {
        matches!(self, Self::ClientSecretBasic | Self::ClientSecretPost)
    }
}

/// `application_type` (OpenID Connect Dynamic Client Registration 1.0 §2; MCP
/// 2026-07-28, "Application Type and Redirect URI Constraints"): which redirect URIs
/// the client may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplicationType {
    /// A remote browser-based application: https redirect URIs only. OIDC lets the
    /// server refuse every http URI but a native client's loopback ones, and a
    /// loopback or private-use URI is one any program on the user's device can
    /// answer, which a web client never needs.
    Web,
    /// Desktop, mobile and command-line apps, and web apps served from localhost:
    /// loopback http (RFC 8252 §7.3), private-use schemes (§7.1, as the policy
    /// allows) and claimed https URIs (§7.2, VS Code's `https://vscode.dev/redirect`).
    Native,
}

impl ApplicationType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Web => "web",
            Self::Native => "native",
        }
    }

    /// The type of a client that did not say. OIDC's default is `web`, but most MCP
    /// clients omit the member while registering loopback or private-use URIs
    /// (CLIENTS.md): defaulting to `web` would refuse them all, so the URIs decide —
    /// `web` when every one is https, else `native`.
    pub fn inferred(redirect_uris: &[String]) -> Self {
        let all_https = redirect_uris
            .iter()
            .all(|uri| Url::parse(uri).is_ok_and(|url| url.scheme() == "https"));
        if all_https { Self::Web } else { Self::Native }
    }
}

/// Validated metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientMetadata {
    pub redirect_uris: Vec<String>,
    /// Omitted means `client_secret_basic` (RFC 7591 §2). The MCP Python SDK omits it
    /// yet sends the secret it is given in the token request, so it still works: the
    /// token endpoint accepts either secret method from a confidential client.
    pub token_endpoint_auth_method: TokenEndpointAuthMethod,
    pub grant_types: Vec<String>,
    pub response_types: Vec<String>,
    /// As declared, or inferred from the redirect URIs when omitted.
    pub application_type: ApplicationType,
    pub client_name: Option<String>,
    pub client_uri: Option<String>,
    pub logo_uri: Option<String>,
    pub scope: Option<Scopes>,
    /// `jwks` (RFC 7591 §2): the public keys of a `private_key_jwt` client, inline.
    pub jwks: Option<Value>,
    /// `jwks_uri`: where a `private_key_jwt` client publishes them.
    pub jwks_uri: Option<String>,
    pub software_id: Option<String>,
    pub software_version: Option<String>,
    pub contacts: Vec<String>,
    /// Other members, kept and echoed back (RFC 7591 §3.2.1), bounded in number.
    pub extra: Map<String, Value>,
}

/// Why metadata was refused (RFC 7591 §3.2.2 codes).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    #[error("{0}")]
    InvalidRedirectUri(String),
    #[error("{0}")]
    InvalidClientMetadata(String),
}

use MetadataError::{InvalidClientMetadata as Meta, InvalidRedirectUri as Redirect};

const MAX_REDIRECT_URIS: usize = 20;
const MAX_EXTRA: usize = 50;
const KNOWN: &[&str] = &[
    "redirect_uris",
    "token_endpoint_auth_method",
    "grant_types",
    "response_types",
    "application_type",
    "client_name",
    "client_uri",
    "logo_uri",
    "scope",
    "software_id",
    "software_version",
    "contacts",
    "jwks",
    "jwks_uri",
];

/// Validates a registration request body.
pub fn validate(
    body: &Value,
    policy: &RedirectPolicy,
    supported: &SupportedScopes,
) -> Result<ClientMetadata, MetadataError> {
    let Value::Object(map) = body else {
        return Err(Meta("the registration must be a JSON object".into()));
    };
    refuse_hidden_controls(map)?;
    let application_type = match text(map, "application_type")?.as_deref() {
        None => None,
        Some("web") => Some(ApplicationType::Web),
        Some("native") => Some(ApplicationType::Native),
        Some(other) => {
            return Err(Meta(format!(
                "application_type `{other}` is not web or native"
            )));
        }
    };
    let grant_types =
        list(map, "grant_types")?.unwrap_or_else(|| vec!["authorization_code".into()]);
    for grant in &grant_types {
        if !matches!(
            grant.as_str(),
            "authorization_code" | "refresh_token" | "client_credentials"
        ) {
            return Err(Meta(format!(
                "grant type `{grant}` cannot be registered here: MCP clients use authorization_code (and refresh_token), machines client_credentials"
            )));
        }
    }
    let code = grant_types.iter().any(|g| g == "authorization_code");
    let machine = grant_types.iter().any(|g| g == "client_credentials");
    if !code && !machine {
        return Err(Meta(
            "grant_types must include authorization_code or client_credentials".into(),
        ));
    }
    let response_types = list(map, "response_types")?.unwrap_or_else(|| {
        if code {
            vec!["code".into()]
        } else {
            Vec::new()
        }
    });
    if code && response_types != ["code"] {
        return Err(Meta(
            "response_types must be [\"code\"] for the authorization_code grant".into(),
        ));
    }
    if !code && !response_types.is_empty() {
        return Err(Meta(
            "response_types must be empty without the authorization_code grant".into(),
        ));
    }
    let token_endpoint_auth_method = match text(map, "token_endpoint_auth_method")?.as_deref() {
        None | Some("client_secret_basic") => TokenEndpointAuthMethod::ClientSecretBasic,
        Some("client_secret_post") => TokenEndpointAuthMethod::ClientSecretPost,
        Some("private_key_jwt") => TokenEndpointAuthMethod::PrivateKeyJwt,
        Some("none") => TokenEndpointAuthMethod::None,
        Some(other) => {
            return Err(Meta(format!(
                "token_endpoint_auth_method `{other}` is not supported (none, client_secret_basic, client_secret_post, private_key_jwt)"
            )));
        }
    };
    if machine && token_endpoint_auth_method == TokenEndpointAuthMethod::None {
        return Err(Meta(
            "client_credentials is for confidential clients: choose client_secret_basic, client_secret_post or private_key_jwt".into(),
        ));
    }
    let (jwks, jwks_uri) = keys(map, token_endpoint_auth_method)?;
    if !code {
        if list(map, "redirect_uris")?.is_some_and(|uris| !uris.is_empty()) {
            return Err(Redirect(
                "redirect_uris are only for the authorization_code grant".into(),
            ));
        }
        return finish(
            map,
            Fields {
                redirect_uris: Vec::new(),
                token_endpoint_auth_method,
                grant_types,
                response_types,
                // No redirect URIs to infer from: a machine is not a browser app.
                application_type: application_type.unwrap_or(ApplicationType::Native),
                jwks,
                jwks_uri,
            },
            supported,
        );
    }
    let redirect_uris = list(map, "redirect_uris")
        .map_err(|_| Meta("redirect_uris must be an array of strings".into()))?
        .unwrap_or_default();
    if redirect_uris.is_empty() {
        return Err(Redirect(
            "redirect_uris is required for the authorization_code grant".into(),
        ));
    }
    if redirect_uris.len() > MAX_REDIRECT_URIS {
        return Err(Redirect(format!(
            "at most {MAX_REDIRECT_URIS} redirect_uris"
        )));
    }
    for uri in &redirect_uris {
        redirect::check(uri, application_type, policy)?;
    }
    let application_type =
        application_type.unwrap_or_else(|| ApplicationType::inferred(&redirect_uris));
    finish(
        map,
        Fields {
            redirect_uris,
            token_endpoint_auth_method,
            grant_types,
            response_types,
            application_type,
            jwks,
            jwks_uri,
        },
        supported,
    )
}

/// What [`validate`] settled before the descriptive members.
struct Fields {
    redirect_uris: Vec<String>,
    token_endpoint_auth_method: TokenEndpointAuthMethod,
    grant_types: Vec<String>,
    response_types: Vec<String>,
    application_type: ApplicationType,
    jwks: Option<Value>,
    jwks_uri: Option<String>,
}

/// `jwks` / `jwks_uri`: exactly one for `private_key_jwt`, neither otherwise.
fn keys(
    map: &Map<String, Value>,
    method: TokenEndpointAuthMethod,
) -> Result<(Option<Value>, Option<String>), MetadataError> {
    let jwks = map.get("jwks").filter(|v| !v.is_null()).cloned();
    let jwks_uri = text(map, "jwks_uri")?;
    if method != TokenEndpointAuthMethod::PrivateKeyJwt {
        if jwks.is_some() || jwks_uri.is_some() {
            return Err(Meta(
                "jwks and jwks_uri are for token_endpoint_auth_method private_key_jwt".into(),
            ));
        }
        return Ok((None, None));
    }
    match (&jwks, &jwks_uri) {
        (Some(jwks), None) => check_public_jwks(jwks).map_err(Meta)?,
        (None, Some(uri)) => {
            let url = Url::parse(uri).map_err(|_| Meta("jwks_uri must be an https URL".into()))?;
            // Plain http only to a loopback IP literal, for tests: the fetch is guarded
            // by the same rules as metadata documents anyway.
            let loopback = matches!(url.host_str(), Some("127.0.0.1" | "[::1]"));
            if !(url.scheme() == "https" || (url.scheme() == "http" && loopback))
                || !url.username().is_empty()
                || url.fragment().is_some()
            {
                return Err(Meta("jwks_uri must be an https URL".into()));
            }
        }
        _ => {
            return Err(Meta(
                "private_key_jwt needs exactly one of jwks and jwks_uri".into(),
            ));
        }
    }
    Ok((jwks, jwks_uri))
}

fn finish(
    map: &Map<String, Value>,
    fields: Fields,
    supported: &SupportedScopes,
) -> Result<ClientMetadata, MetadataError> {
    let scope = match text(map, "scope")? {
        None => None,
        Some(text) => {
            let scopes = Scopes::parse(&text).map_err(Meta)?;
            if let SupportedScopes(Some(allowed)) = supported {
                let unknown = scopes.missing_from(allowed);
                if !unknown.is_empty() {
                    return Err(Meta(format!("unsupported scope: {unknown}")));
                }
            }
            Some(scopes)
        }
    };
    let client_name = text(map, "client_name")?;
    if client_name
        .as_ref()
        .is_some_and(|n| n.chars().count() > 200)
    {
        return Err(Meta("client_name is longer than 200 characters".into()));
    }
    let https_url = |key: &str| -> Result<Option<String>, MetadataError> {
        let value = text(map, key)?;
        if let Some(v) = &value
            && !Url::parse(v).is_ok_and(|u| u.scheme() == "https")
        {
            return Err(Meta(format!("{key} must be an https URL")));
        }
        Ok(value)
    };
    let extra: Map<String, Value> = map
        .iter()
        .filter(|(k, _)| !KNOWN.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if extra.len() > MAX_EXTRA {
        return Err(Meta(format!(
            "more than {MAX_EXTRA} unknown metadata fields"
        )));
    }
    Ok(ClientMetadata {
        client_uri: https_url("client_uri")?,
        logo_uri: https_url("logo_uri")?,
        software_id: text(map, "software_id")?,
        software_version: text(map, "software_version")?,
        contacts: list(map, "contacts")?.unwrap_or_default(),
        redirect_uris: fields.redirect_uris,
        token_endpoint_auth_method: fields.token_endpoint_auth_method,
        grant_types: fields.grant_types,
        response_types: fields.response_types,
        application_type: fields.application_type,
        client_name,
        scope,
        jwks: fields.jwks,
        jwks_uri: fields.jwks_uri,
        extra,
    })
}

/// Refuses control and format characters (bidi overrides, zero-width) in any string
/// member, or string in an array member: the consent page shows the client's name
/// (also as `client_name#lang`, RFC 7591 §2.2) and URIs, and such a character makes
/// them read as something else. No real client needs one.
pub fn refuse_hidden_controls(map: &Map<String, Value>) -> Result<(), MetadataError> {
    for (key, value) in map {
        let strings: Vec<&str> = match value {
            Value::String(s) => vec![s.as_str()],
            Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if let Some(c) = strings.into_iter().find_map(find_hidden_control) {
            let key: String = strip_hidden_controls(key).chars().take(64).collect();
            return Err(Meta(format!(
                "{key} contains the invisible control character U+{:04X}",
                u32::from(c)
            )));
        }
    }
    Ok(())
}

fn text(map: &Map<String, Value>, key: &str) -> Result<Option<String>, MetadataError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(Meta(format!("{key} must be a string"))),
    }
}

fn list(map: &Map<String, Value>, key: &str) -> Result<Option<Vec<String>>, MetadataError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(String::from))
            .collect::<Option<Vec<_>>>()
            .map(Some)
            .ok_or_else(|| Meta(format!("{key} must be an array of strings"))),
        Some(_) => Err(Meta(format!("{key} must be an array of strings"))),
    }
}

impl ClientMetadata {
    /// The metadata as the registration response echoes it (RFC 7591 §3.2.1).
    pub fn to_response_json(&self) -> Map<String, Value> {
        let mut out = self.extra.clone();
        out.insert("redirect_uris".into(), json!(self.redirect_uris));
        out.insert(
            "token_endpoint_auth_method".into(),
            json!(self.token_endpoint_auth_method.as_str()),
        );
        out.insert("grant_types".into(), json!(self.grant_types));
        out.insert("response_types".into(), json!(self.response_types));
        let optional = [
            ("client_name", self.client_name.clone()),
            ("client_uri", self.client_uri.clone()),
            ("logo_uri", self.logo_uri.clone()),
            ("scope", self.scope.as_ref().map(ToString::to_string)),
            ("software_id", self.software_id.clone()),
            ("software_version", self.software_version.clone()),
            (
                "application_type",
                Some(self.application_type.as_str().to_owned()),
            ),
        ];
        for (key, value) in optional {
            if let Some(value) = value {
                out.insert(key.into(), json!(value));
            }
        }
        if !self.contacts.is_empty() {
            out.insert("contacts".into(), json!(self.contacts));
        }
        if let Some(jwks) = &self.jwks {
            out.insert("jwks".into(), jwks.clone());
        }
        if let Some(uri) = &self.jwks_uri {
            out.insert("jwks_uri".into(), json!(uri));
        }
        out
    }

    /// SHA-256 over a canonical form: equal for the same registration whatever the
    /// member or grant order, different for any difference that matters.
    pub fn fingerprint(&self) -> [u8; 32] {
        let mut canonical = self.to_response_json();
        let mut grants = self.grant_types.clone();
        grants.sort();
        canonical.insert("grant_types".into(), json!(grants));
        let sorted: std::collections::BTreeMap<_, _> = canonical.into_iter().collect();
        Sha256::digest(json!(sorted).to_string().as_bytes()).into()
    }
}

#[cfg(test)]
mod tests;
