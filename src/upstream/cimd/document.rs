//! The document's rules: its `client_id` is exactly its URL, a public client with
//! usable redirect URIs and no secrets.

use super::*;
use crate::domain::client_metadata::{self, SupportedScopes};

/// The members the broker relies on, checked.
#[derive(Debug)]
pub(super) struct Fields {
    pub(super) document: Map<String, Value>,
    pub(super) redirect_uris: Vec<String>,
    pub(super) client_name: Option<String>,
}

pub(super) fn invalid(reason: &str) -> CimdError {
    CimdError::Invalid(reason.to_owned())
}

/// Checks a document fetched from `client_id` (draft §4, §4.1).
///
/// Only public clients are accepted: `token_endpoint_auth_method` absent or `none`.
/// Shared-secret methods are forbidden by the draft (§4.1). `private_key_jwt` is
/// refused too, although ChatGPT's document declares it (listing `none` only in a
/// non-standard `token_endpoint_auth_methods_supported`): the draft (§8.2) says that
/// the authorization server MUST then authenticate the client with a key from its
/// document, which the broker cannot do yet. Quietly treating such a client as public
/// would drop the authentication its owner asked for; the refusal names the method so
/// the operator can see why, and ChatGPT can register through DCR instead.
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
    match document.get("token_endpoint_auth_method") {
        None => {}
        Some(Value::String(method)) if method == "none" => {}
        Some(Value::String(method)) if method == "private_key_jwt" => {
            return Err(invalid(
                "token_endpoint_auth_method `private_key_jwt` is not supported: only public \
                 clients (`none`) are accepted",
            ));
        }
        Some(Value::String(method)) if method.starts_with("client_secret") => {
            return Err(invalid(
                "shared-secret client authentication is not allowed in a metadata document",
            ));
        }
        Some(_) => {
            return Err(invalid(
                "unsupported token_endpoint_auth_method: only `none` is accepted",
            ));
        }
    }
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
        client_name,
    })
}

/// The redirect URIs pass the rules dynamic registration applies (RFC 6749 §3.1.2;
/// MCP: https or loopback http): absolute, no fragment, no `javascript:`, `data:`,
/// `file:` or plain http to another host, private-use schemes and the allow list as
/// the operator's [`RedirectPolicy`] says, and `application_type` `web` https-only.
/// The refused URI is logged, not repeated in the error.
pub(super) fn check_redirect_uris(
    client_id: &str,
    document: &Map<String, Value>,
    uris: &[String],
    redirects: &RedirectPolicy,
) -> Result<(), CimdError> {
    let mut registration = Map::new();
    registration.insert("redirect_uris".to_owned(), Value::from(uris.to_vec()));
    // Only `web` narrows the rules; other values are not the broker's concern here.
    if document.get("application_type").and_then(Value::as_str) == Some("web") {
        registration.insert("application_type".to_owned(), Value::from("web"));
    }
    let registration = Value::Object(registration);
    client_metadata::validate(&registration, redirects, &SupportedScopes(None))
        .map(drop)
        .map_err(|error| {
            tracing::info!(client_id, %error, "client metadata document redirect URIs refused");
            invalid(
                "a redirect URI is not allowed: https, loopback http or a permitted \
                 private-use scheme, without a fragment, as for registered clients",
            )
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
