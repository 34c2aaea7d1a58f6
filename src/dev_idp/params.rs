//! OAuth parameters of a query string or a form body, as a list because some may
//! repeat (`resource`, RFC 8707 §2) while the rest must not (RFC 6749 §3.1), and the
//! form-body extractor: `application/x-www-form-urlencoded` in UTF-8 (WHATWG URL §5),
//! within the IdP's body limit. Simpler than the broker's: the IdP has no hot path.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpMessage, HttpRequest, mime};
use futures_util::StreamExt;

use super::error::{IdpError, too_large, unsupported_media_type};
use crate::domain::urlencoded;

/// Why a parameter could not be read: both are `invalid_request`.
#[derive(Debug, thiserror::Error)]
pub enum ParamError {
    #[error("parameter `{0}` is repeated")]
    Repeated(String),
    #[error("parameter `{0}` is required")]
    Missing(String),
}

impl From<ParamError> for IdpError {
    fn from(error: ParamError) -> Self {
        IdpError::invalid_request(error.to_string())
    }
}

/// Parameters in the order they came.
#[derive(Debug, Clone, Default)]
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn new(pairs: Vec<(String, String)>) -> Self {
        Self(pairs)
    }

    /// Parses a form body: `&`-separated `name=value` fields, each decoded; an empty
    /// field is skipped. The body and every decoded field must be UTF-8.
    pub fn from_form(body: &[u8]) -> Result<Self, urlencoded::NotUtf8> {
        let text = std::str::from_utf8(body).map_err(|_| urlencoded::NotUtf8)?;
        let mut pairs = Vec::new();
        for field in text.split('&').filter(|f| !f.is_empty()) {
            let (name, value) = field.split_once('=').unwrap_or((field, ""));
            pairs.push((
                urlencoded::decode(name)?.into_owned(),
                urlencoded::decode(value)?.into_owned(),
            ));
        }
        Ok(Self(pairs))
    }

    fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> {
        self.0
            .iter()
            .filter(move |(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// A single-valued parameter; empty counts as absent (RFC 6749 §3.1).
    pub fn one<'a>(&'a self, name: &'a str) -> Result<Option<&'a str>, ParamError> {
        let mut values = self.values(name);
        let first = values.next();
        if values.next().is_some() {
            return Err(ParamError::Repeated(name.to_owned()));
        }
        Ok(first)
    }

    /// A required single-valued parameter.
    pub fn required<'a>(&'a self, name: &'a str) -> Result<&'a str, ParamError> {
        self.one(name)?
            .ok_or_else(|| ParamError::Missing(name.to_owned()))
    }

    /// Every value of a parameter that may repeat.
    pub fn all<'a>(&'a self, name: &'a str) -> Vec<&'a str> {
        self.values(name).collect()
    }
}

/// The body limit of every IdP endpoint.
pub const BODY_LIMIT: usize = 64 * 1024;

const MEDIA_TYPE: &str = "application/x-www-form-urlencoded";

/// A form body's parameters: another media type or charset 415, over the limit 413,
/// not UTF-8 400.
pub struct Form(pub Params);

impl FromRequest for Form {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let checked = media_type(req).and_then(|()| declared_length(req));
        let mut payload = payload.take();
        Box::pin(async move {
            checked?;
            let mut body = Vec::new();
            while let Some(chunk) = payload.next().await {
                let chunk = chunk.map_err(|e| {
                    IdpError::invalid_request(format!("the form body could not be read: {e}"))
                })?;
                if body.len() + chunk.len() > BODY_LIMIT {
                    return Err(too_large(BODY_LIMIT).into());
                }
                body.extend_from_slice(&chunk);
            }
            Params::from_form(&body)
                .map(Form)
                .map_err(|e| IdpError::invalid_request(e.to_string()).into())
        })
    }
}

fn media_type(req: &HttpRequest) -> Result<(), IdpError> {
    if !req.content_type().eq_ignore_ascii_case(MEDIA_TYPE) {
        return Err(unsupported_media_type(MEDIA_TYPE));
    }
    let charset = req.mime_type().ok().flatten().and_then(|mime| {
        mime.get_param(mime::CHARSET)
            .map(|charset| charset.as_str().to_owned())
    });
    match charset {
        Some(charset) if !charset.eq_ignore_ascii_case("utf-8") => Err(unsupported_media_type(
            "application/x-www-form-urlencoded in UTF-8",
        )),
        _ => Ok(()),
    }
}

fn declared_length(req: &HttpRequest) -> Result<(), IdpError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    match declared {
        Some(length) if length > BODY_LIMIT => Err(too_large(BODY_LIMIT)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_decoded_and_empty_values_are_absent() {
        let params = Params::from_form(b"a=&b=1&b=2&resource=x&resource=y&s=n%3Ar+w&&c").unwrap();
        assert_eq!(params.one("a").unwrap(), None);
        assert!(params.one("b").is_err());
        assert_eq!(params.all("resource"), ["x", "y"]);
        assert_eq!(params.required("s").unwrap(), "n:r w");
        assert!(params.required("c").is_err());
        assert!(Params::from_form(b"a=%ff").is_err());
    }
}
