//! The form body of an OAuth endpoint (`application/x-www-form-urlencoded`, RFC 6749
//! §3.2) as [`Params`], read with the body limit (`server.max_body_bytes`) whether or
//! not a length was declared. Bad input is an [`ApiError`]: another media type or
//! charset 415, too large 413, bytes that are not UTF-8 400.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpMessage, HttpRequest, mime};
use futures_util::StreamExt;

use super::error::ApiError;
use super::params::Params;

/// The body limit the extractor enforces: registered by `routes::extractor_configs`.
#[derive(Debug, Clone, Copy)]
pub struct FormLimit(pub usize);

/// Without a registered [`FormLimit`]: actix's own default for forms.
const DEFAULT_LIMIT: usize = 16 * 1024;

const MEDIA_TYPE: &str = "application/x-www-form-urlencoded";

/// A form body's parameters.
pub struct Form(pub Params);

impl FromRequest for Form {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let limit = req
            .app_data::<FormLimit>()
            .map_or(DEFAULT_LIMIT, |limit| limit.0);
        let checked = media_type(req).and_then(|()| declared_length(req, limit));
        let mut payload = payload.take();
        Box::pin(async move {
            let declared = checked?;
            let mut body = Vec::with_capacity(declared.unwrap_or(0));
            while let Some(chunk) = payload.next().await {
                let chunk = chunk.map_err(|e| {
                    ApiError::InvalidRequest(format!("the form body could not be read: {e}"))
                })?;
                if body.len() + chunk.len() > limit {
                    return Err(ApiError::PayloadTooLarge { limit }.into());
                }
                body.extend_from_slice(&chunk);
            }
            Params::from_form(body)
                .map(Form)
                .map_err(|e| ApiError::InvalidRequest(e.to_string()).into())
        })
    }
}

/// `application/x-www-form-urlencoded`, in UTF-8 when a charset is named.
fn media_type(req: &HttpRequest) -> Result<(), actix_web::Error> {
    if !req.content_type().eq_ignore_ascii_case(MEDIA_TYPE) {
        return Err(ApiError::UnsupportedMediaType {
            expected: MEDIA_TYPE,
        }
        .into());
    }
    let charset = req.mime_type().ok().flatten().and_then(|mime| {
        mime.get_param(mime::CHARSET)
            .map(|charset| charset.as_str().to_owned())
    });
    // WHATWG URL §5: form bodies are UTF-8; another charset is another media type.
    match charset {
        Some(charset) if !charset.eq_ignore_ascii_case("utf-8") => {
            Err(ApiError::UnsupportedMediaType {
                expected: "application/x-www-form-urlencoded in UTF-8",
            }
            .into())
        }
        _ => Ok(()),
    }
}

/// The declared length, refused up front when over the limit.
fn declared_length(req: &HttpRequest, limit: usize) -> Result<Option<usize>, actix_web::Error> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    match declared {
        Some(length) if length > limit => Err(ApiError::PayloadTooLarge { limit }.into()),
        _ => Ok(declared),
    }
}
