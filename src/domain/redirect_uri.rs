//! Redirect-URI matching: exact string comparison, except that a loopback `http`
//! URI matches on any port (RFC 8252 §7.3): native clients bind an ephemeral port.

use std::net::IpAddr;

use url::{Host, Url};

/// Whether `presented` may be used where `registered` was registered.
pub fn matches(registered: &str, presented: &str) -> bool {
    if registered == presented {
        return true;
    }
    let (Ok(reg), Ok(pres)) = (Url::parse(registered), Url::parse(presented)) else {
        return false;
    };
    is_loopback_http(&reg)
        && is_loopback_http(&pres)
        && reg.host() == pres.host()
        && reg.path() == pres.path()
        && reg.query() == pres.query()
        && pres.fragment().is_none()
}

/// An `http` URI on 127.0.0.0/8, `[::1]` or `localhost`.
pub fn is_loopback_http(url: &Url) -> bool {
    url.scheme() == "http"
        && match url.host() {
            Some(Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
            Some(Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
            Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            None => false,
        }
}

/// Whether any of `registered` admits `presented`.
pub fn any_matches<'a>(registered: impl IntoIterator<Item = &'a String>, presented: &str) -> bool {
    registered.into_iter().any(|r| matches(r, presented))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_match_and_loopback_any_port() {
        assert!(matches(
            "https://claude.ai/api/mcp/auth_callback",
            "https://claude.ai/api/mcp/auth_callback"
        ));
        assert!(matches(
            "http://127.0.0.1/callback",
            "http://127.0.0.1:53117/callback"
        ));
        assert!(matches(
            "http://127.0.0.1:33418/",
            "http://127.0.0.1:40000/"
        ));
        assert!(matches(
            "http://localhost:3000/cb",
            "http://localhost:9999/cb"
        ));
        assert!(matches("http://[::1]/cb", "http://[::1]:8080/cb"));
    }

    #[test]
    fn anything_else_must_be_identical() {
        assert!(!matches(
            "https://claude.ai/api/mcp/auth_callback",
            "https://claude.ai/api/mcp/auth_callback/"
        ));
        assert!(!matches(
            "https://app.example.com/cb",
            "https://app.example.com:8443/cb"
        ));
        assert!(!matches(
            "http://127.0.0.1/callback",
            "http://127.0.0.1:5000/other"
        ));
        assert!(!matches(
            "http://127.0.0.1/callback",
            "http://localhost:5000/callback"
        ));
        assert!(!matches(
            "http://127.0.0.1/cb",
            "http://127.0.0.1:1/cb#frag"
        ));
        assert!(!matches(
            "cursor://anysphere.cursor-mcp/oauth/callback",
            "cursor://anysphere.cursor-mcp/oauth/callback2"
        ));
    }
}
