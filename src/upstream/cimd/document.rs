//! The document's rules: its `client_id` is exactly its URL, a public client with
//! usable redirect URIs and no secrets.

use super::*;
use crate::domain::client_metadata::{self, SupportedScopes};

/// The members the broker relies on, checked.
#[derive(Debug)]
pub(super) struct Fields {
    pub(super) document: Map<String, Value>,
    pub(super) redirect_uris: Vec<String>,
    /// What the client may use here (see [`validate`]).
    pub(super) grant_types: Vec<String>,
    pub(super) client_name: Option<String>,
}

pub(super) fn invalid(reason: &str) -> CimdError {
    CimdError::Invalid(reason.to_owned())
}

/// Checks a document fetched from `client_id` (draft §4, §4.1).
///
/// Only public clients are accepted: the broker cannot verify client assertions.
/// Shared-secret methods are forbidden by the draft (§4.1). A document declaring
/// `private_key_jwt` asks to be authenticated with its keys (draft §8.2); it is
/// accepted as a public client only when it also offers `none` in
/// `token_endpoint_auth_methods_supported`, as ChatGPT's does: its owner said a public
/// client is acceptable, and PKCE and the exact redirect URIs still bind every code to
/// the login that asked for it. One that does not offer `none` is refused, naming why.
///
/// `grant_types` is narrowed to what the broker offers a document client
/// (authorization_code, refresh_token) rather than refused for listing more (VS Code
/// lists device_code, others jwt-bearer); a document offering no authorization_code
/// cannot log in and is refused.
pub(super) fn validate(
    client_id: &str,
    body: &[u8],
    redirects: &RedirectPolicy,
) -> Result<Fields, CimdError> {
    let Ok(Value::Object(document)) = serde_json::from_slice::<Value>(body) else {
        return Err(invalid("the document is not a JSON object"));
    };
    match document.get("client_id") {
        Some(Value::String(id)) if id == client_id => {}
        Some(Value::String(_)) => {
            return Err(invalid(
                "its client_id differs from the URL it was fetched from",
            ));
        }
        _ => return Err(invalid("client_id is missing or not a string")),
    }
    if document.contains_key("client_secret") || document.contains_key("client_secret_expires_at") {
        return Err(invalid(
            "a metadata document must not carry a client secret",
        ));
    }
    check_auth_method(client_id, &document)?;
    let grant_types = offered_grants(&document)?;
    // The consent page shows the name and URIs: no text that displays as other text.
    if let Err(error) = client_metadata::refuse_hidden_controls(&document) {
        tracing::info!(client_id, %error, "client metadata document refused");
        return Err(invalid(
            "a member contains an invisible control character (bidi override, zero-width, \
             control): names and URIs must display as what they are",
        ));
    }
    if has_secret_keys(document.get("jwks")) {
        return Err(invalid(
            "the document contains private or symmetric key material",
        ));
    }
    let redirect_uris = match document.get("redirect_uris") {
        Some(Value::Array(uris)) if !uris.is_empty() => uris
            .iter()
            .map(|uri| match uri {
                Value::String(uri) => Ok(uri.clone()),
                _ => Err(invalid("every redirect URI must be a string")),
            })
            .collect::<Result<Vec<_>, _>>()?,
        _ => return Err(invalid("redirect_uris must be a non-empty array")),
    };
    check_redirect_uris(client_id, &document, &redirect_uris, redirects)?;
    let client_name = match document.get("client_name") {
        None => None,
        Some(Value::String(name)) => Some(name.clone()),
        Some(_) => return Err(invalid("client_name must be a string")),
    };
    Ok(Fields {
        document,
        redirect_uris,
        grant_types,
        client_name,
    })
}

/// The client authenticates with `none` (absent means `none` here: a document has
/// no secret to default to), or declares `private_key_jwt` but also offers `none`.
fn check_auth_method(client_id: &str, document: &Map<String, Value>) -> Result<(), CimdError> {
    match document.get("token_endpoint_auth_method") {
        None => Ok(()),
        Some(Value::String(method)) if method == "none" => Ok(()),
        Some(Value::String(method)) if method.starts_with("client_secret") => Err(invalid(
            "shared-secret client authentication is not allowed in a metadata document",
        )),
        Some(Value::String(method)) if method == "private_key_jwt" => {
            let offers_none = document
                .get("token_endpoint_auth_methods_supported")
                .and_then(Value::as_array)
                .is_some_and(|methods| methods.iter().any(|m| m.as_str() == Some("none")));
            if offers_none {
                tracing::info!(
                    client_id,
                    "metadata document prefers private_key_jwt and offers none: used as a public client"
                );
                Ok(())
            } else {
                Err(invalid(
                    "token_endpoint_auth_method `private_key_jwt` is not supported, and the \
                     document does not offer `none` in token_endpoint_auth_methods_supported: \
                     only public clients are accepted",
                ))
            }
        }
        Some(_) => Err(invalid(
            "unsupported token_endpoint_auth_method: only `none` is accepted",
        )),
    }
}

/// The grants the client may use here: its `grant_types` (RFC 7591 default
/// `authorization_code`) that the broker offers a document client. `response_types`,
/// when present, must include `code`.
fn offered_grants(document: &Map<String, Value>) -> Result<Vec<String>, CimdError> {
    const OFFERED: [&str; 2] = ["authorization_code", "refresh_token"];
    let listed = |key: &str| -> Result<Option<Vec<&str>>, CimdError> {
        match document.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(Value::as_str)
                .collect::<Option<Vec<_>>>()
                .map(Some)
                .ok_or_else(|| CimdError::Invalid(format!("{key} must be an array of strings"))),
            Some(_) => Err(CimdError::Invalid(format!(
                "{key} must be an array of strings"
            ))),
        }
    };
    if listed("response_types")?.is_some_and(|types| !types.contains(&"code")) {
        return Err(invalid(
            "response_types does not include `code`, the only response type offered",
        ));
    }
    let grants = listed("grant_types")?.unwrap_or_else(|| vec!["authorization_code"]);
    let usable: Vec<String> = OFFERED
        .iter()
        .filter(|offered| grants.contains(offered))
        .map(|g| (*g).to_owned())
        .collect();
    if !usable.iter().any(|g| g == "authorization_code") {
        return Err(invalid(
            "grant_types does not include authorization_code: a client described by a \
             metadata document logs in with authorization_code (and refresh_token) only",
        ));
    }
    Ok(usable)
}

/// The redirect URIs pass the rules dynamic registration applies (RFC 6749 §3.1.2;
/// MCP: https or loopback http): absolute, no fragment, no `javascript:`, `data:`,
/// `file:` or plain http to another host, private-use schemes and the allow list as
/// the operator's [`RedirectPolicy`] says, and `application_type` `web` https-only.
/// The refused URI is logged, not repeated in the error; the rule is named.
pub(super) fn check_redirect_uris(
    client_id: &str,
    document: &Map<String, Value>,
    uris: &[String],
    redirects: &RedirectPolicy,
) -> Result<(), CimdError> {
    let mut registration = Map::new();
    registration.insert("redirect_uris".to_owned(), Value::from(uris.to_vec()));
    // The same `application_type` rules as registration: declared, it is honoured;
    // omitted, it is inferred from the URIs, so nothing is refused for lacking it.
    if let Some(kind) = document.get("application_type") {
        registration.insert("application_type".to_owned(), kind.clone());
    }
    let registration = Value::Object(registration);
    client_metadata::validate(&registration, redirects, &SupportedScopes(None))
        .map(drop)
        .map_err(|error| {
            tracing::info!(client_id, %error, "client metadata document redirect URIs refused");
            let web = document.get("application_type").and_then(Value::as_str) == Some("web");
            invalid(if web {
                "a redirect URI is not allowed: the document's application_type is `web`, \
                 which allows https redirect URIs only (an app on the user's device is \
                 `native`)"
            } else {
                "a redirect URI is not allowed: https, loopback http or a permitted \
                 private-use scheme, without a fragment, as for registered clients"
            })
        })
}

/// Whether a `jwks` member holds private (RFC 7518 §6.2.2, §6.3.2) or symmetric
/// (§6.4.1) key parameters, which a public document must not (draft §4.1).
pub(super) fn has_secret_keys(jwks: Option<&Value>) -> bool {
    const SECRET: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];
    let keys = jwks.and_then(|j| j.get("keys")).and_then(Value::as_array);
    keys.is_some_and(|keys| {
        keys.iter()
            .filter_map(Value::as_object)
            .any(|key| SECRET.iter().any(|member| key.contains_key(*member)))
    })
}
