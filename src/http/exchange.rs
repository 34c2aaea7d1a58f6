//! `POST /oauth/token` with `grant_type=urn:ietf:params:oauth:grant-type:token-exchange`
//! (RFC 8693), the HTTP side of `flows::exchange`: the parameters read, the flow
//! called, its answer written as RFC 8693 §2.2.1 JSON and its errors as RFC 8693
//! §2.2.2 / RFC 6749 §5.2.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, mime};

use super::error::{ApiError, ErrorCode};
use super::params::Params;
use crate::actors::exchange::{ExchangeError, Exchanged};
use crate::flows::exchange::{Exchange, GrantError, TokenExchange, TokenExchangeError};

/// The token-exchange grant, for the token endpoint's dispatch.
pub async fn token_exchange(
    flow: &Exchange,
    req: &HttpRequest,
    params: &Params,
) -> Result<HttpResponse, ApiError> {
    let caller = flow.caller(&super::clients::presented(req, params)?)?;
    let request = TokenExchange {
        subject_token: params.required("subject_token")?,
        subject_token_type: params.required("subject_token_type")?,
        requested_token_type: params.one("requested_token_type")?,
        targets: (params.all("audience").into_iter())
            .chain(params.all("resource"))
            .collect(),
        actor_token: params.one("actor_token")?,
        actor_token_type: params.one("actor_token_type")?,
        scope: params.one("scope")?,
    };
    let issued = flow.token_exchange(caller, request).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .content_type(mime::APPLICATION_JSON)
        .body(answer(&issued.token, issued.expires_in)))
}

/// The RFC 8693 §2.2.1 answer. Written here rather than by serde_json, which escapes
/// a string byte by byte: the downstream token is a kilobyte that (being base64url
/// and dots) never needs escaping, so it is checked in one pass and copied whole.
fn answer(exchanged: &Exchanged, expires_in: u64) -> Vec<u8> {
    let scope = exchanged.scope.to_string();
    let mut out = Vec::with_capacity(exchanged.access_token.len() + scope.len() + 160);
    out.extend_from_slice(b"{\"access_token\":");
    json_string(&mut out, &exchanged.access_token);
    out.extend_from_slice(b",\"issued_token_type\":");
    json_string(&mut out, &exchanged.issued_token_type);
    out.extend_from_slice(b",\"token_type\":\"Bearer\",\"expires_in\":");
    out.extend_from_slice(expires_in.to_string().as_bytes());
    out.extend_from_slice(b",\"scope\":");
    json_string(&mut out, &scope);
    out.push(b'}');
    out
}

/// `text` as a JSON string: copied as it is when nothing in it needs escaping (no
/// control character, quote or backslash), else escaped by serde_json.
fn json_string(out: &mut Vec<u8>, text: &str) {
    // A fold, not `all`: no early exit, so the check runs a vector at a time.
    let plain = text.bytes().fold(true, |plain, b| {
        plain & (b >= 0x20 && b != b'"' && b != b'\\')
    });
    if plain {
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
    } else if serde_json::to_writer(&mut *out, text).is_err() {
        // Writing to a Vec cannot fail; an empty string keeps the JSON well-formed.
        out.extend_from_slice(b"\"\"");
    }
}

impl From<TokenExchangeError> for ApiError {
    fn from(error: TokenExchangeError) -> Self {
        match error {
            TokenExchangeError::Unauthenticated => Self::InvalidClient(error.to_string()),
            TokenExchangeError::InvalidRequest(d) => Self::InvalidRequest(d),
            TokenExchangeError::InvalidTarget(d) => Self::oauth(ErrorCode::InvalidTarget, d),
            TokenExchangeError::InvalidScope(d) => Self::oauth(ErrorCode::InvalidScope, d),
            TokenExchangeError::Provider { error, audience } => provider_error(error, &audience),
            TokenExchangeError::Grant(GrantError::Invalid(d)) => {
                Self::oauth(ErrorCode::InvalidGrant, d)
            }
            TokenExchangeError::Grant(GrantError::Unavailable(description)) => Self::Unavailable {
                description,
                retry_after: Some("5".to_owned()),
            },
            TokenExchangeError::Store(e) => Self::Unavailable {
                description: format!("token store unavailable: {e}"),
                retry_after: Some("5".to_owned()),
            },
        }
    }
}

/// RFC 8693 §2.2.2, with what an operator needs to act on.
fn provider_error(error: ExchangeError, target: &str) -> ApiError {
    match error {
        ExchangeError::Refused { error, description } => {
            let detail = description.unwrap_or_default();
            // The provider no longer accepting the subject (revoked, expired there) is
            // an unacceptable subject_token to our caller (RFC 8693 §2.2.2); anything
            // else it refuses is about the audience.
            let code = match error.as_str() {
                "invalid_scope" => ErrorCode::InvalidScope,
                "invalid_grant" | "invalid_request" | "invalid_token" => ErrorCode::InvalidRequest,
                _ => ErrorCode::InvalidTarget,
            };
            ApiError::oauth(
                code,
                format!("the identity provider refused a token for `{target}`: {error} {detail}")
                    .trim_end()
                    .to_owned(),
            )
        }
        ExchangeError::Unavailable(_) => ApiError::Unavailable {
            description: "the identity provider cannot be reached".to_owned(),
            retry_after: Some("5".to_owned()),
        },
        ExchangeError::NotPossible(d) => ApiError::oauth(ErrorCode::InvalidGrant, d),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actors::exchange::Holder;
    use crate::domain::scope::Scopes;
    use crate::upstream::exchange::ACCESS_TOKEN_TYPE;

    #[test]
    fn strings_are_copied_when_plain_and_escaped_otherwise() {
        for text in [
            "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1In0.c2ln-_",
            "",
            "quote \" backslash \\ tab \t nul \u{0} bell \u{7}",
            "unicode é ✓ \u{7f}",
        ] {
            let mut out = Vec::new();
            json_string(&mut out, text);
            let back: String = serde_json::from_slice(&out).unwrap();
            assert_eq!(back, text);
        }
    }

    #[test]
    fn the_answer_is_the_rfc_8693_response() {
        let exchanged = Exchanged {
            access_token: "a.b.c".to_owned(),
            issued_token_type: ACCESS_TOKEN_TYPE.to_owned(),
            expires_at: 1_000,
            scope: Scopes::parse("notes:read notes:write").unwrap(),
            rotated_refresh_token: None,
            holder: Holder::default(),
        };
        let body: serde_json::Value = serde_json::from_slice(&answer(&exchanged, 42)).unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "access_token": "a.b.c",
                "issued_token_type": ACCESS_TOKEN_TYPE,
                "token_type": "Bearer",
                "expires_in": 42,
                "scope": "notes:read notes:write",
            })
        );
    }
}
