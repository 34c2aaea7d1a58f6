//! Secrets in hand-written `Debug` output. A derived `Debug` prints every field, so a
//! type holding a PKCE verifier, a nonce, a CSRF token, a client secret or a token
//! writes it down wherever the value is logged (`?value` in a span, a test failure,
//! a panic message). Such types implement `Debug` by hand with [`Redacted`] in place
//! of the secret, as `config::Secret` does for the configuration's.

use std::fmt;

/// Stands in for a secret: prints `<redacted>`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Redacted;

impl Redacted {
    /// `Some(<redacted>)` for a secret that is there, `None` for one that is not:
    /// whether it exists is worth seeing, its value is not.
    pub fn option<T>(value: &Option<T>) -> Option<Redacted> {
        value.as_ref().map(|_| Redacted)
    }
}

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests;
