//! The one error boundary of the HTTP API. Every failure a handler or extractor can
//! produce ends here as RFC 6749 §5.2 JSON (`error`, `error_description`) with the
//! matching status and `Cache-Control: no-store`. Causes are logged, never sent.

use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError, UrlencodedError};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use serde::{Deserialize, Serialize};

/// The `error` codes of RFC 6749 §4.1.2.1 / §5.2, RFC 7591 §3.2.2, RFC 8693 §2.2.2
/// and RFC 6750 §3.1, as they appear on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// A required parameter is missing or malformed, or the request is otherwise
    /// malformed (RFC 6749 §5.2).
    InvalidRequest,
    /// Client authentication failed (RFC 6749 §5.2).
    InvalidClient,
    /// The grant or refresh token is invalid, expired, revoked or was issued to
    /// another client (RFC 6749 §5.2).
    InvalidGrant,
    /// The client may not use this grant type (RFC 6749 §5.2).
    UnauthorizedClient,
    /// The authorization server does not support this `response_type` (RFC 6749 §4.1.2.1).
    UnsupportedResponseType,
    /// The grant type is not supported (RFC 6749 §5.2).
    UnsupportedGrantType,
    /// The requested scope is invalid, unknown or exceeds what was granted (RFC 6749 §5.2).
    InvalidScope,
    /// The requested audience or resource is not acceptable (RFC 8693 §2.2.2, RFC 8707).
    InvalidTarget,
    /// The resource owner or server denied the request (RFC 6749 §4.1.2.1).
    AccessDenied,
    /// Registration metadata is invalid (RFC 7591 §3.2.2).
    InvalidClientMetadata,
    /// A redirect URI is invalid (RFC 7591 §3.2.2).
    InvalidRedirectUri,
    /// The access token is missing, expired or otherwise invalid (RFC 6750 §3.1).
    InvalidToken,
    /// The token lacks a scope the request needs (RFC 6750 §3.1).
    InsufficientScope,
    /// An unexpected condition on our side (RFC 6749 §4.1.2.1).
    ServerError,
    /// Overloaded, rate limited or a dependency is down (RFC 6749 §4.1.2.1).
    TemporarilyUnavailable,
}

/// Every error the HTTP API answers with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A malformed request: bad JSON, form, query or parameters.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The body is larger than `server.max_body_bytes`.
    #[error("request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// The body's content type is not the one the endpoint reads.
    #[error("content type must be {expected}")]
    UnsupportedMediaType { expected: &'static str },
    /// No endpoint at this path.
    #[error("no such endpoint")]
    NotFound,
    /// The thing the path names does not exist (an admin API lookup): 404 with what
    /// was not found.
    #[error("{0}")]
    Missing(String),
    /// The request conflicts with what the thing is (deleting a client the broker
    /// does not store): 409.
    #[error("{0}")]
    Conflict(String),
    /// The endpoint exists but not for this method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// A protocol error whose code and description a module chose (RFC 6749 §5.2,
    /// RFC 7591 §3.2.2, RFC 8693 §2.2.2); the status follows from the code.
    #[error("{code:?}: {description}")]
    OAuth {
        code: ErrorCode,
        description: String,
    },
    /// Client authentication failed (RFC 6749 §5.2): 401 with a Basic challenge.
    #[error("{0}")]
    InvalidClient(String),
    /// A bearer token is expired or invalid (RFC 6750 §3.1): 401 with a Bearer
    /// challenge naming `invalid_token`.
    #[error("{0}")]
    InvalidToken(String),
    /// No bearer token at all: 401 with a bare Bearer challenge (RFC 6750 §3.1: no
    /// error code when the request carried no authentication).
    #[error("{0}")]
    MissingToken(String),
    /// Too many requests (RFC 6585 §4): 429 with `Retry-After` (seconds or an HTTP date).
    #[error("too many requests; retry later")]
    RateLimited { retry_after: Option<String> },
    /// Overloaded or a dependency is down: 503 `temporarily_unavailable`.
    #[error("{description}")]
    Unavailable {
        description: String,
        retry_after: Option<String>,
    },
    /// Something failed on our side; the cause is logged, the client sees `server_error`.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// Shorthand for a protocol error.
    pub fn oauth(code: ErrorCode, description: impl Into<String>) -> Self {
        Self::OAuth {
            code,
            description: description.into(),
        }
    }
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
    pub fn status(self) -> StatusCode {
        match self {
            Self::InvalidClient | Self::InvalidToken => StatusCode::UNAUTHORIZED,
            Self::InsufficientScope | Self::AccessDenied => StatusCode::FORBIDDEN,
            Self::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            Self::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorCode,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_description: Option<&'a str>,
}

impl ApiError {
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::InvalidRequest(_)
            | Self::PayloadTooLarge { .. }
            | Self::UnsupportedMediaType { .. }
            | Self::NotFound
            | Self::Missing(_)
            | Self::Conflict(_)
            | Self::MethodNotAllowed => ErrorCode::InvalidRequest,
            Self::OAuth { code, .. } => *code,
            Self::InvalidClient(_) => ErrorCode::InvalidClient,
            Self::InvalidToken(_) | Self::MissingToken(_) => ErrorCode::InvalidToken,
            Self::RateLimited { .. } | Self::Unavailable { .. } => {
                ErrorCode::TemporarilyUnavailable
            }
            Self::Internal(_) => ErrorCode::ServerError,
        }
    }

    /// What the client is told: specific for its own mistakes, generic for ours.
    fn description(&self) -> String {
        match self {
            Self::Internal(_) => "the server could not complete the request".to_owned(),
            Self::InvalidRequest(message) => message.clone(),
            Self::OAuth { description, .. } => description.clone(),
            other => other.to_string(),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::NotFound | Self::Missing(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::OAuth { code, .. } => code.status(),
            Self::InvalidClient(_) | Self::InvalidToken(_) | Self::MissingToken(_) => {
                StatusCode::UNAUTHORIZED
            }
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let Self::Internal(cause) = self {
            tracing::error!(%cause, "request failed");
        }
        let description = self.description();
        let body = ErrorBody {
            error: self.code(),
            error_description: Some(&description),
        };
        let mut response = HttpResponse::build(self.status_code());
        response
            .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
            .insert_header((header::PRAGMA, HeaderValue::from_static("no-cache")));
        match self {
            Self::InvalidClient(_) => {
                response.insert_header((
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"token\", charset=\"UTF-8\""),
                ));
            }
            Self::InvalidToken(_) => {
                response.insert_header((
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer error=\"invalid_token\""),
                ));
            }
            Self::MissingToken(_) => {
                response
                    .insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
            }
            Self::RateLimited {
                retry_after: Some(retry_after),
            }
            | Self::Unavailable {
                retry_after: Some(retry_after),
                ..
            } => {
                if let Ok(value) = HeaderValue::from_str(retry_after) {
                    response.insert_header((header::RETRY_AFTER, value));
                }
            }
            _ => {}
        }
        response.json(body)
    }
}

/// `JsonConfig` error handler: JSON bodies that fail become `invalid_request`.
pub fn json_error(err: JsonPayloadError, _req: &HttpRequest) -> actix_web::Error {
    let api = match err {
        JsonPayloadError::OverflowKnownLength { limit, .. }
        | JsonPayloadError::Overflow { limit } => ApiError::PayloadTooLarge { limit },
        JsonPayloadError::ContentType => ApiError::UnsupportedMediaType {
            expected: "application/json",
        },
        JsonPayloadError::Deserialize(e) if e.is_data() => ApiError::InvalidRequest(format!(
            "the JSON body does not have the expected fields: {e}"
        )),
        JsonPayloadError::Deserialize(_) => {
            ApiError::InvalidRequest("the body is not valid JSON".to_owned())
        }
        other => ApiError::InvalidRequest(format!("the body could not be read: {other}")),
    };
    api.into()
}

/// `FormConfig` error handler: `application/x-www-form-urlencoded` bodies.
pub fn form_error(err: UrlencodedError, _req: &HttpRequest) -> actix_web::Error {
    let api = match err {
        UrlencodedError::Overflow { limit, .. } => ApiError::PayloadTooLarge { limit },
        UrlencodedError::ContentType => ApiError::UnsupportedMediaType {
            expected: "application/x-www-form-urlencoded",
        },
        UrlencodedError::Parse(e) => {
            ApiError::InvalidRequest(format!("the form body is malformed: {e}"))
        }
        UrlencodedError::Encoding => {
            ApiError::InvalidRequest("the form body must be UTF-8".to_owned())
        }
        other => ApiError::InvalidRequest(format!("the form body could not be read: {other}")),
    };
    api.into()
}

/// `QueryConfig` error handler.
pub fn query_error(err: QueryPayloadError, _req: &HttpRequest) -> actix_web::Error {
    ApiError::InvalidRequest(format!("the query string is malformed: {err}")).into()
}

/// `PathConfig` error handler.
pub fn path_error(err: PathError, _req: &HttpRequest) -> actix_web::Error {
    ApiError::InvalidRequest(format!("the path is malformed: {err}")).into()
}
