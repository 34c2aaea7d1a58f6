//! The dev IdP's errors on the wire: RFC 6749 §5.2 JSON (`error`, `error_description`)
//! with the status each code has, `Cache-Control: no-store`, and the challenges of
//! RFC 6749 §5.2 / RFC 6750 §3. Its own type, not the broker's `ApiError`: the IdP is
//! a separate product that must build and behave without the broker's HTTP layer.

use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use serde::{Deserialize, Serialize};

/// The `error` codes of RFC 6749 §4.1.2.1 / §5.2, RFC 7591 §3.2.2, RFC 8693 §2.2.2
/// and RFC 6750 §3.1, as they appear on the wire. All of them, because `/_dev/exchange`
/// lets a test choose any one for refused exchanges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Missing, repeated or malformed parameter (RFC 6749 §5.2).
    InvalidRequest,
    /// Client authentication failed (RFC 6749 §5.2).
    InvalidClient,
    /// The code or refresh token is invalid, expired, revoked or another client's.
    InvalidGrant,
    /// The client may not use this grant type (RFC 6749 §5.2).
    UnauthorizedClient,
    /// Only `code` is supported (RFC 6749 §4.1.2.1).
    UnsupportedResponseType,
    /// The grant type is not supported (RFC 6749 §5.2).
    UnsupportedGrantType,
    /// The scope is invalid, unknown or more than was granted (RFC 6749 §5.2).
    InvalidScope,
    /// The resource or audience is not acceptable (RFC 8693 §2.2.2, RFC 8707).
    InvalidTarget,
    /// The user is unknown (RFC 6749 §4.1.2.1).
    AccessDenied,
    /// Registration metadata is invalid (RFC 7591 §3.2.2).
    InvalidClientMetadata,
    /// A redirect URI is invalid (RFC 7591 §3.2.2).
    InvalidRedirectUri,
    /// The access token is missing, expired or invalid (RFC 6750 §3.1).
    InvalidToken,
    /// The token lacks a scope (RFC 6750 §3.1).
    InsufficientScope,
    /// Something failed on the IdP's side (RFC 6749 §4.1.2.1).
    ServerError,
    /// Down, overloaded or rate limited (RFC 6749 §4.1.2.1).
    TemporarilyUnavailable,
}

impl ErrorCode {
    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope => "invalid_scope",
            Self::InvalidTarget => "invalid_target",
            Self::AccessDenied => "access_denied",
            Self::InvalidClientMetadata => "invalid_client_metadata",
            Self::InvalidRedirectUri => "invalid_redirect_uri",
            Self::InvalidToken => "invalid_token",
            Self::InsufficientScope => "insufficient_scope",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
        }
    }

    /// The status RFC 6749 / RFC 6750 give this code.
    fn status(self) -> StatusCode {
        match self {
            Self::InvalidClient | Self::InvalidToken => StatusCode::UNAUTHORIZED,
            Self::InsufficientScope | Self::AccessDenied => StatusCode::FORBIDDEN,
            Self::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            Self::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// Every error the dev IdP answers with.
#[derive(Debug, thiserror::Error)]
pub enum IdpError {
    /// A protocol error; the status follows from the code.
    #[error("{code:?}: {description}")]
    OAuth {
        code: ErrorCode,
        description: String,
    },
    /// Refused before any endpoint ran (404, 405, 413, 415): `invalid_request`.
    #[error("{description}")]
    Refused {
        status: StatusCode,
        description: String,
    },
    /// Client authentication failed (RFC 6749 §5.2): 401 with a Basic challenge.
    #[error("{0}")]
    InvalidClient(String),
    /// A bearer token is invalid (RFC 6750 §3.1): 401 naming `invalid_token`.
    #[error("{0}")]
    InvalidToken(String),
    /// No bearer token at all: 401 with a bare Bearer challenge (RFC 6750 §3.1).
    #[error("{0}")]
    MissingToken(String),
    /// An injected 429 (RFC 6585 §4), with `Retry-After` when the fault names one.
    #[error("too many requests; retry later")]
    RateLimited { retry_after: Option<String> },
    /// An injected outage: 503 `temporarily_unavailable`.
    #[error("{description}")]
    Unavailable {
        description: String,
        retry_after: Option<String>,
    },
    /// A failure on the IdP's side; logged, answered with a generic `server_error`.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Shorthand for the OAuth errors the IdP answers with.
pub fn err(code: ErrorCode, description: impl Into<String>) -> IdpError {
    IdpError::OAuth {
        code,
        description: description.into(),
    }
}

impl IdpError {
    /// `invalid_request` with this description.
    pub fn invalid_request(description: impl Into<String>) -> Self {
        err(ErrorCode::InvalidRequest, description)
    }

    /// A request refused before its endpoint: the status with `invalid_request`.
    pub fn refused(status: StatusCode, description: impl Into<String>) -> Self {
        Self::Refused {
            status,
            description: description.into(),
        }
    }

    fn code(&self) -> ErrorCode {
        match self {
            Self::OAuth { code, .. } => *code,
            Self::Refused { .. } => ErrorCode::InvalidRequest,
            Self::InvalidClient(_) => ErrorCode::InvalidClient,
            Self::InvalidToken(_) | Self::MissingToken(_) => ErrorCode::InvalidToken,
            Self::RateLimited { .. } | Self::Unavailable { .. } => {
                ErrorCode::TemporarilyUnavailable
            }
            Self::Internal(_) => ErrorCode::ServerError,
        }
    }

    fn description(&self) -> String {
        match self {
            Self::Internal(_) => "the server could not complete the request".to_owned(),
            Self::OAuth { description, .. } => description.clone(),
            other => other.to_string(),
        }
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorCode,
    error_description: &'a str,
}

impl ResponseError for IdpError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Refused { status, .. } => *status,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            other => other.code().status(),
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let Self::Internal(cause) = self {
            tracing::error!(%cause, "dev IdP request failed");
        }
        let description = self.description();
        let mut response = HttpResponse::build(self.status_code());
        response
            .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
            .insert_header((header::PRAGMA, HeaderValue::from_static("no-cache")));
        let challenge = match self {
            Self::InvalidClient(_) => Some("Basic realm=\"token\", charset=\"UTF-8\""),
            Self::InvalidToken(_) => Some("Bearer error=\"invalid_token\""),
            Self::MissingToken(_) => Some("Bearer"),
            _ => None,
        };
        if let Some(challenge) = challenge {
            response.insert_header((
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            ));
        }
        if let Self::RateLimited {
            retry_after: Some(retry_after),
        }
        | Self::Unavailable {
            retry_after: Some(retry_after),
            ..
        } = self
            && let Ok(value) = HeaderValue::from_str(retry_after)
        {
            response.insert_header((header::RETRY_AFTER, value));
        }
        response.json(ErrorBody {
            error: self.code(),
            error_description: &description,
        })
    }
}

/// `JsonConfig` error handler: JSON bodies that fail become `invalid_request`.
pub fn json_error(error: JsonPayloadError, _req: &HttpRequest) -> actix_web::Error {
    let idp = match error {
        JsonPayloadError::OverflowKnownLength { limit, .. }
        | JsonPayloadError::Overflow { limit } => too_large(limit),
        JsonPayloadError::ContentType => unsupported_media_type("application/json"),
        JsonPayloadError::Deserialize(e) if e.is_data() => IdpError::invalid_request(format!(
            "the JSON body does not have the expected fields: {e}"
        )),
        JsonPayloadError::Deserialize(_) => IdpError::invalid_request("the body is not valid JSON"),
        other => IdpError::invalid_request(format!("the body could not be read: {other}")),
    };
    idp.into()
}

/// `QueryConfig` error handler.
pub fn query_error(error: QueryPayloadError, _req: &HttpRequest) -> actix_web::Error {
    IdpError::invalid_request(format!("the query string is malformed: {error}")).into()
}

/// `PathConfig` error handler.
pub fn path_error(error: PathError, _req: &HttpRequest) -> actix_web::Error {
    IdpError::invalid_request(format!("the path is malformed: {error}")).into()
}

/// 413 for a body over the IdP's limit.
pub fn too_large(limit: usize) -> IdpError {
    IdpError::refused(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("request body is larger than {limit} bytes"),
    )
}

/// 415 for a body in another media type than the endpoint reads.
pub fn unsupported_media_type(expected: &str) -> IdpError {
    IdpError::refused(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        format!("content type must be {expected}"),
    )
}
