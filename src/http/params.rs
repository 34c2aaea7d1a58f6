//! OAuth request parameters as a list, because some may repeat (`resource`, RFC 8707
//! §2) while the rest must not (RFC 6749 §3.1: "MUST NOT be included more than once").

use super::error::ApiError;

/// Parameters from a query string or a form body, in order.
#[derive(Debug, Clone, Default)]
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn new(pairs: Vec<(String, String)>) -> Self {
        Self(pairs)
    }

    /// A single-valued parameter; empty counts as absent (RFC 6749 §3.1). A repeated
    /// one is `invalid_request`.
    pub fn one(&self, name: &str) -> Result<Option<&str>, ApiError> {
        let mut values = self
            .0
            .iter()
            .filter(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str());
        let first = values.next();
        if values.next().is_some() {
            return Err(ApiError::InvalidRequest(format!(
                "parameter `{name}` is repeated"
            )));
        }
        Ok(first)
    }

    /// A required single-valued parameter.
    pub fn required(&self, name: &str) -> Result<&str, ApiError> {
        self.one(name)?
            .ok_or_else(|| ApiError::InvalidRequest(format!("parameter `{name}` is required")))
    }

    /// Every value of a parameter that may repeat.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
            .collect()
    }
}
