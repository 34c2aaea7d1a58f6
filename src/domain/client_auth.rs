//! Client authentication at the token, introspection and revocation endpoints
//! (RFC 6749 §2.3.1): HTTP Basic (`client_secret_basic`), form fields
//! (`client_secret_post`), or a public client naming itself (`none`).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// How the client presented itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presented {
    /// `client_secret_basic`
    Basic { client_id: String, secret: String },
    /// `client_secret_post`
    Post { client_id: String, secret: String },
    /// `none`: a public client, identified but not authenticated.
    Public { client_id: String },
}

impl Presented {
    pub fn client_id(&self) -> &str {
        match self {
            Self::Basic { client_id, .. }
            | Self::Post { client_id, .. }
            | Self::Public { client_id } => client_id,
        }
    }

    /// The secret, for confidential methods.
    pub fn secret(&self) -> Option<&str> {
        match self {
            Self::Basic { secret, .. } | Self::Post { secret, .. } => Some(secret),
            Self::Public { .. } => None,
        }
    }

    /// The `token_endpoint_auth_method` this presentation corresponds to.
    pub fn method(&self) -> &'static str {
        match self {
            Self::Basic { .. } => "client_secret_basic",
            Self::Post { .. } => "client_secret_post",
            Self::Public { .. } => "none",
        }
    }
}

/// Why the presented credentials could not even be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientAuthError {
    /// No `Authorization` header and no `client_id` field.
    #[error("client authentication is required")]
    Missing,
    /// More than one method used at once (RFC 6749 §2.3: MUST NOT).
    #[error("use exactly one client authentication method")]
    Ambiguous,
    /// The Basic header is not `base64(urlencode(id):urlencode(secret))`.
    #[error("malformed Basic authorization header")]
    MalformedBasic,
}

/// Reads the client's credentials from the `Authorization` header value (if any) and
/// the form's `client_id` / `client_secret` fields. Other `Authorization` schemes are
/// ignored here (a Bearer header is not client authentication).
pub fn read(
    authorization: Option<&str>,
    form_client_id: Option<&str>,
    form_secret: Option<&str>,
) -> Result<Presented, ClientAuthError> {
    let basic = authorization
        .and_then(|value| {
            let (scheme, rest) = value.split_once(' ')?;
            scheme.eq_ignore_ascii_case("basic").then_some(rest.trim())
        })
        .map(decode_basic)
        .transpose()?;
    match (basic, form_client_id, form_secret) {
        (Some(_), _, Some(_)) => Err(ClientAuthError::Ambiguous),
        (Some((client_id, _)), Some(form_id), None) if form_id != client_id => {
            Err(ClientAuthError::Ambiguous)
        }
        (Some((client_id, secret)), _, None) => Ok(Presented::Basic { client_id, secret }),
        (None, Some(client_id), Some(secret)) => Ok(Presented::Post {
            client_id: client_id.to_owned(),
            secret: secret.to_owned(),
        }),
        (None, Some(client_id), None) => Ok(Presented::Public {
            client_id: client_id.to_owned(),
        }),
        (None, None, _) => Err(ClientAuthError::Missing),
    }
}

fn decode_basic(encoded: &str) -> Result<(String, String), ClientAuthError> {
    let bytes = STANDARD
        .decode(encoded)
        .map_err(|_| ClientAuthError::MalformedBasic)?;
    let text = String::from_utf8(bytes).map_err(|_| ClientAuthError::MalformedBasic)?;
    let (id, secret) = text
        .split_once(':')
        .ok_or(ClientAuthError::MalformedBasic)?;
    // RFC 6749 §2.3.1: both parts are form-urlencoded before being joined.
    let decode = |s: &str| {
        super::urlencoded::decode(s)
            .map(|text| text.into_owned())
            .map_err(|_| ClientAuthError::MalformedBasic)
    };
    let (id, secret) = (decode(id)?, decode(secret)?);
    if id.is_empty() {
        return Err(ClientAuthError::MalformedBasic);
    }
    Ok((id, secret))
}

/// The Basic header value for a client (what an HTTP client of ours sends upstream).
pub fn basic_header(client_id: &str, secret: &str) -> String {
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", enc(client_id), enc(secret)))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_method_is_recognised() {
        let header = basic_header("my client", "p@ss:word");
        assert_eq!(
            read(Some(&header), None, None),
            Ok(Presented::Basic {
                client_id: "my client".into(),
                secret: "p@ss:word".into()
            })
        );
        assert_eq!(
            read(None, Some("c"), Some("s")).unwrap().method(),
            "client_secret_post"
        );
        assert_eq!(read(None, Some("c"), None).unwrap().method(), "none");
        assert_eq!(
            read(Some("Bearer abc"), Some("c"), None).unwrap().method(),
            "none"
        );
    }

    #[test]
    fn ambiguous_missing_and_malformed_are_errors() {
        let header = basic_header("c", "s");
        assert_eq!(
            read(Some(&header), None, Some("s")),
            Err(ClientAuthError::Ambiguous)
        );
        assert_eq!(
            read(Some(&header), Some("other"), None),
            Err(ClientAuthError::Ambiguous)
        );
        assert_eq!(read(None, None, None), Err(ClientAuthError::Missing));
        assert_eq!(
            read(Some("Basic !!!"), None, None),
            Err(ClientAuthError::MalformedBasic)
        );
        assert_eq!(
            read(Some("Basic bm9jb2xvbg=="), None, None),
            Err(ClientAuthError::MalformedBasic)
        );
    }
}
