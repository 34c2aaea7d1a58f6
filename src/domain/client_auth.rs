//! Client authentication at the token, introspection and revocation endpoints
//! (RFC 6749 §2.3.1): HTTP Basic (`client_secret_basic`), form fields
//! (`client_secret_post`), a signed JWT (`private_key_jwt`: RFC 7523 §2.2 with
//! RFC 7521 §4.2's parameters), or a public client naming itself (`none`).

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
    /// `private_key_jwt` (RFC 7523 §2.2): `client_assertion`, a JWT the client signed.
    /// `client_id` is the form's, else the assertion's unverified `sub` (RFC 7521
    /// §4.2: the parameter is optional); the assertion is checked by whoever knows
    /// the client's keys.
    Assertion {
        client_id: String,
        assertion: String,
    },
}

/// `client_assertion_type` for a JWT (RFC 7523 §2.2).
pub const JWT_CLIENT_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The request's fields that carry client credentials.
#[derive(Debug, Clone, Copy, Default)]
pub struct Fields<'a> {
    /// The `Authorization` header's value.
    pub authorization: Option<&'a str>,
    pub client_id: Option<&'a str>,
    pub client_secret: Option<&'a str>,
    pub client_assertion_type: Option<&'a str>,
    pub client_assertion: Option<&'a str>,
}

impl Presented {
    pub fn client_id(&self) -> &str {
        match self {
            Self::Basic { client_id, .. }
            | Self::Post { client_id, .. }
            | Self::Public { client_id }
            | Self::Assertion { client_id, .. } => client_id,
        }
    }

    /// The secret, for the secret methods.
    pub fn secret(&self) -> Option<&str> {
        match self {
            Self::Basic { secret, .. } | Self::Post { secret, .. } => Some(secret),
            Self::Public { .. } | Self::Assertion { .. } => None,
        }
    }

    /// Whether the caller used a method that authenticates (not `none`).
    pub fn authenticates(&self) -> bool {
        !matches!(self, Self::Public { .. })
    }

    /// The `token_endpoint_auth_method` this presentation corresponds to.
    pub fn method(&self) -> &'static str {
        match self {
            Self::Basic { .. } => "client_secret_basic",
            Self::Post { .. } => "client_secret_post",
            Self::Public { .. } => "none",
            Self::Assertion { .. } => "private_key_jwt",
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
    /// `client_assertion_type` is not the JWT one, or comes without `client_assertion`
    /// (or the other way round).
    #[error(
        "client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer, with client_assertion"
    )]
    UnsupportedAssertion,
    /// The assertion names no client: no `client_id` and no readable `sub`.
    #[error("the client assertion names no client")]
    MalformedAssertion,
}

/// Reads the client's credentials from the `Authorization` header value (if any) and
/// the form's `client_id` / `client_secret` fields. Other `Authorization` schemes are
/// ignored here (a Bearer header is not client authentication).
pub fn read(
    authorization: Option<&str>,
    form_client_id: Option<&str>,
    form_secret: Option<&str>,
) -> Result<Presented, ClientAuthError> {
    read_fields(Fields {
        authorization,
        client_id: form_client_id,
        client_secret: form_secret,
        ..Fields::default()
    })
}

/// [`read`], with `client_assertion_type` / `client_assertion` too: an assertion
/// beside a secret or a Basic header is more than one method (RFC 6749 §2.3).
pub fn read_fields(fields: Fields<'_>) -> Result<Presented, ClientAuthError> {
    let Fields {
        authorization,
        client_id: form_client_id,
        client_secret: form_secret,
        client_assertion_type,
        client_assertion,
    } = fields;
    match (client_assertion_type, client_assertion) {
        (None, None) => {}
        (Some(JWT_CLIENT_ASSERTION), Some(assertion)) => {
            let basic = authorization.is_some_and(|value| {
                value
                    .split_once(' ')
                    .is_some_and(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
            });
            if basic || form_secret.is_some() {
                return Err(ClientAuthError::Ambiguous);
            }
            let client_id = match form_client_id {
                Some(id) => id.to_owned(),
                None => unverified_subject(assertion).ok_or(ClientAuthError::MalformedAssertion)?,
            };
            if client_id.is_empty() {
                return Err(ClientAuthError::MalformedAssertion);
            }
            return Ok(Presented::Assertion {
                client_id,
                assertion: assertion.to_owned(),
            });
        }
        _ => return Err(ClientAuthError::UnsupportedAssertion),
    }
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

/// The `sub` of a compact JWS's payload, read without trusting it: it only names the
/// client whose keys must then verify the assertion.
fn unverified_subject(assertion: &str) -> Option<String> {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let payload = assertion.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("sub")?.as_str().map(str::to_owned)
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

    #[test]
    fn an_assertion_names_its_client_and_excludes_other_methods() {
        // {"sub":"bot"} as the payload; header and signature are not read here.
        let assertion = "e30.eyJzdWIiOiJib3QifQ.c2ln";
        let fields = Fields {
            client_assertion_type: Some(JWT_CLIENT_ASSERTION),
            client_assertion: Some(assertion),
            ..Fields::default()
        };
        let presented = read_fields(fields).unwrap();
        assert_eq!(presented.client_id(), "bot");
        assert_eq!(presented.method(), "private_key_jwt");
        assert!(presented.authenticates() && presented.secret().is_none());
        let with_secret = Fields {
            client_id: Some("bot"),
            client_secret: Some("s"),
            ..fields
        };
        assert_eq!(read_fields(with_secret), Err(ClientAuthError::Ambiguous));
        let header = basic_header("bot", "s");
        let with_basic = Fields {
            authorization: Some(&header),
            ..fields
        };
        assert_eq!(read_fields(with_basic), Err(ClientAuthError::Ambiguous));
        let other_type = Fields {
            client_assertion_type: Some("urn:ietf:params:oauth:client-assertion-type:saml2-bearer"),
            ..fields
        };
        assert_eq!(
            read_fields(other_type),
            Err(ClientAuthError::UnsupportedAssertion)
        );
        let no_sub = Fields {
            client_assertion: Some("e30.e30.c2ln"),
            ..fields
        };
        assert_eq!(
            read_fields(no_sub),
            Err(ClientAuthError::MalformedAssertion)
        );
    }
}
