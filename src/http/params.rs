//! OAuth request parameters as a list, because some may repeat (`resource`, RFC 8707
//! §2) while the rest must not (RFC 6749 §3.1: "MUST NOT be included more than once").
//!
//! A form body is kept whole: a field without escapes is a slice of it, so the
//! token endpoint's hot path (a kilobyte-long `subject_token`) copies nothing; only
//! a field with `%XX` or `+` is decoded into its own string.

use std::borrow::Cow;
use std::ops::Range;

use super::error::ApiError;
use crate::domain::urlencoded;
pub use crate::domain::urlencoded::NotUtf8;

/// Parameters from a query string or a form body, in order.
#[derive(Debug, Clone, Default)]
pub struct Params {
    /// The form body the slices point into (empty for parameters given as pairs).
    text: String,
    pairs: Vec<(Field, Field)>,
}

#[derive(Debug, Clone)]
enum Field {
    Slice(Range<usize>),
    Owned(String),
}

impl Params {
    pub fn new(pairs: Vec<(String, String)>) -> Self {
        Self {
            text: String::new(),
            pairs: pairs
                .into_iter()
                .map(|(k, v)| (Field::Owned(k), Field::Owned(v)))
                .collect(),
        }
    }

    /// Parses a form body (WHATWG `application/x-www-form-urlencoded`): `&`-separated
    /// `name=value` fields, `+` for a space, `%XX` for a byte; an empty field is
    /// skipped, a field without `=` has an empty value, and a `%` not followed by two
    /// hex digits stands for itself. The body and every decoded field must be UTF-8.
    pub fn from_form(body: Vec<u8>) -> Result<Self, NotUtf8> {
        let text = String::from_utf8(body).map_err(|_| NotUtf8)?;
        let bytes = text.as_bytes();
        let mut pairs = Vec::with_capacity(8);
        let mut start = 0;
        while start <= bytes.len() {
            let end = memchr::memchr(b'&', &bytes[start..]).map_or(bytes.len(), |i| start + i);
            if end > start {
                let (name, value) = match memchr::memchr(b'=', &bytes[start..end]) {
                    Some(i) => (start..start + i, start + i + 1..end),
                    None => (start..end, end..end),
                };
                pairs.push((field(&text, name)?, field(&text, value)?));
            }
            start = end + 1;
        }
        Ok(Self { text, pairs })
    }

    fn get<'a>(&'a self, field: &'a Field) -> &'a str {
        match field {
            Field::Slice(range) => self.text.get(range.clone()).unwrap_or_default(),
            Field::Owned(text) => text,
        }
    }

    fn values<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a str> {
        self.pairs
            .iter()
            .filter(move |(k, v)| self.get(k) == name && !self.get(v).is_empty())
            .map(|(_, v)| self.get(v))
    }

    /// A single-valued parameter; empty counts as absent (RFC 6749 §3.1). A repeated
    /// one is `invalid_request`.
    pub fn one<'a>(&'a self, name: &str) -> Result<Option<&'a str>, ApiError> {
        let mut values = self.values(name);
        let first = values.next();
        if values.next().is_some() {
            return Err(ApiError::InvalidRequest(format!(
                "parameter `{name}` is repeated"
            )));
        }
        Ok(first)
    }

    /// A required single-valued parameter.
    pub fn required<'a>(&'a self, name: &str) -> Result<&'a str, ApiError> {
        self.one(name)?
            .ok_or_else(|| ApiError::InvalidRequest(format!("parameter `{name}` is required")))
    }

    /// Every value of a parameter that may repeat.
    pub fn all<'a>(&'a self, name: &str) -> Vec<&'a str> {
        self.values(name).collect()
    }
}

/// One name or value: a slice of the body when it holds no escape, else decoded.
fn field(text: &str, range: Range<usize>) -> Result<Field, NotUtf8> {
    match urlencoded::decode(text.get(range.clone()).unwrap_or_default())? {
        Cow::Borrowed(_) => Ok(Field::Slice(range)),
        Cow::Owned(decoded) => Ok(Field::Owned(decoded)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(body: &str) -> Params {
        Params::from_form(body.as_bytes().to_vec()).unwrap()
    }

    fn pairs(params: &Params) -> Vec<(&str, &str)> {
        params
            .pairs
            .iter()
            .map(|(k, v)| (params.get(k), params.get(v)))
            .collect()
    }

    #[test]
    fn fields_are_split_and_decoded_like_form_urlencoded() {
        let cases = [
            "a=1&b=2",
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange&x=a+b",
            "&&a=&=b&c&d=e=f&",
            "bad=%zz%4&tail=%",
            "utf8=%C3%A9t%C3%A9&raw=\u{e9}",
            "scope=notes%3Aread+notes%3Awrite&plus=%2B",
            "",
        ];
        for body in cases {
            let reference: Vec<(String, String)> = url::form_urlencoded::parse(body.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            let parsed = form(body);
            let ours: Vec<(String, String)> = pairs(&parsed)
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            assert_eq!(ours, reference, "{body}");
        }
    }

    #[test]
    fn plain_fields_are_slices_of_the_body_and_escaped_ones_are_decoded() {
        let params = form("subject_token=abc.def.ghi&scope=a+b");
        assert!(matches!(params.pairs[0].1, Field::Slice(_)));
        assert!(matches!(params.pairs[1].1, Field::Owned(_)));
        assert_eq!(params.required("subject_token").unwrap(), "abc.def.ghi");
        assert_eq!(params.required("scope").unwrap(), "a b");
    }

    #[test]
    fn text_that_is_not_utf8_is_refused_before_or_after_decoding() {
        assert_eq!(
            Params::from_form(vec![b'a', b'=', 0xff]).unwrap_err(),
            NotUtf8
        );
        assert_eq!(Params::from_form(b"a=%ff".to_vec()).unwrap_err(), NotUtf8);
        assert_eq!(Params::from_form(b"%C3=1".to_vec()).unwrap_err(), NotUtf8);
    }

    #[test]
    fn empty_values_are_absent_and_repeats_are_refused() {
        let params = form("a=&b=1&b=2&resource=x&resource=y&resource=");
        assert_eq!(params.one("a").unwrap(), None);
        assert!(params.one("b").is_err());
        assert_eq!(params.all("resource"), ["x", "y"]);
        assert!(params.required("missing").is_err());
        let pairs = Params::new(vec![("a".into(), "1".into())]);
        assert_eq!(pairs.one("a").unwrap(), Some("1"));
    }
}
