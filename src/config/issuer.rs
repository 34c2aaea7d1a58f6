//! The broker's issuer identifier (`server.public_url`).

use std::fmt;
use std::net::IpAddr;

use url::{Host, Url};

/// An issuer identifier per RFC 8414 §2: an https URL (http only on a loopback host,
/// for development) with no query, fragment or user info, and no trailing slash.
///
/// Clients key their stored credentials by the issuer and compare it character for
/// character with the `iss` they receive (RFC 9207), so the broker keeps the string
/// exactly as configured and builds every endpoint URL from it.
#[derive(Clone, PartialEq, Eq)]
pub struct Issuer {
    text: String,
    url: Url,
}

impl Issuer {
    /// Checks the broker's own issuer; the error says what to change.
    pub fn parse(text: &str) -> Result<Self, String> {
        let issuer = Self::parse_upstream(text, false)?;
        if text.ends_with('/') {
            return Err(format!(
                "`{text}` must not end with '/': clients compare the issuer character for character, write `{}`",
                text.trim_end_matches('/')
            ));
        }
        Ok(issuer)
    }

    /// Checks an upstream provider's issuer. It is kept as written, trailing slash
    /// included (some providers use one), and plain http is accepted off loopback only
    /// when `allow_http` says so (a provider on a private network).
    pub fn parse_upstream(text: &str, allow_http: bool) -> Result<Self, String> {
        let url = Url::parse(text).map_err(|e| format!("`{text}` is not a URL: {e}"))?;
        match url.scheme() {
            "https" => {}
            "http" if allow_http || is_loopback(&url) => {}
            "http" => {
                return Err(format!(
                    "`{text}` must use https (plain http is allowed only on a loopback host)"
                ));
            }
            other => return Err(format!("`{text}` must be an https URL, not {other}")),
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(format!("`{text}` must not have a query or fragment"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(format!("`{text}` must not contain user info"));
        }
        Ok(Self {
            text: text.to_owned(),
            url,
        })
    }

    /// The issuer exactly as configured.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The parsed URL (note: a bare origin gains a '/' path here, not in `as_str`).
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The issuer's path without a trailing slash; empty for a bare origin.
    pub fn path(&self) -> &str {
        self.url.path().trim_end_matches('/')
    }

    /// The URL of an endpoint below the issuer, e.g. `endpoint("/oauth/token")`.
    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.text.trim_end_matches('/'))
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

impl fmt::Debug for Issuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Issuer({})", self.text)
    }
}

impl fmt::Display for Issuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_and_loopback_http_are_accepted_verbatim() {
        for ok in [
            "https://broker.example.com",
            "https://example.com/mcp-auth",
            "http://127.0.0.1:8080",
            "http://localhost:8080",
            "http://[::1]:9000",
        ] {
            assert_eq!(Issuer::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn insecure_or_ambiguous_issuers_are_refused() {
        for bad in [
            "http://broker.example.com",
            "https://broker.example.com/",
            "https://broker.example.com?x=1",
            "https://broker.example.com#f",
            "https://user:pw@broker.example.com",
            "ftp://broker.example.com",
            "broker.example.com",
        ] {
            assert!(Issuer::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn endpoints_and_path_are_built_from_the_issuer() {
        let issuer = Issuer::parse("https://example.com/auth").unwrap();
        assert_eq!(
            issuer.endpoint("/oauth/token"),
            "https://example.com/auth/oauth/token"
        );
        assert_eq!(issuer.path(), "/auth");
        assert_eq!(Issuer::parse("https://example.com").unwrap().path(), "");
    }
}
