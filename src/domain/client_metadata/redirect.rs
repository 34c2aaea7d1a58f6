//! Redirect URIs a client may register: https, loopback http for applications on the
//! user's device (RFC 8252 §7.3), private-use schemes where the operator allows them,
//! never a scheme that could run or read something; and, when the operator lists
//! patterns, only URIs that match one.

use url::Url;

use super::ApplicationType;
use super::MetadataError::{self, InvalidRedirectUri as Redirect};
use crate::domain::redirect_uri::is_loopback_http;

/// The operator's redirect-URI rules (`[registration]`).
#[derive(Debug, Clone, Default)]
pub struct RedirectPolicy {
    /// Accept private-use schemes (`cursor://…`): one refused URI fails a client's
    /// whole registration, so they are allowed by default.
    pub allow_private_use_schemes: bool,
    /// Patterns each URI must match when non-empty: `*` as the port means any port,
    /// a trailing `/*` any path below.
    pub allowed_patterns: Vec<String>,
}

const MAX_URI_LEN: usize = 2000;
/// Schemes that are never a redirect target, whatever the policy.
const FORBIDDEN_SCHEMES: &[&str] = &[
    "javascript",
    "data",
    "file",
    "vbscript",
    "about",
    "blob",
    "ftp",
    "ws",
    "wss",
    "http",
];
/// One redirect URI against the fixed rules (no wildcards or fragments; https, or
/// loopback http for native apps, or a private-use scheme where allowed) and the
/// operator's patterns.
pub(super) fn check(
    uri: &str,
    app: Option<ApplicationType>,
    policy: &RedirectPolicy,
) -> Result<(), MetadataError> {
    if uri.len() > MAX_URI_LEN {
        return Err(Redirect(format!(
            "a redirect URI is longer than {MAX_URI_LEN} characters"
        )));
    }
    if uri.contains('*') {
        return Err(Redirect(format!("`{uri}`: wildcards are not allowed")));
    }
    let url = Url::parse(uri).map_err(|_| Redirect(format!("`{uri}` is not an absolute URI")))?;
    if url.fragment().is_some() {
        return Err(Redirect(format!("`{uri}` must not have a fragment")));
    }
    let scheme = url.scheme();
    let loopback = is_loopback_http(&url);
    if scheme == "https" {
        if url.host_str().is_none_or(str::is_empty) {
            return Err(Redirect(format!("`{uri}` has no host")));
        }
    } else if loopback {
        // RFC 8252 §7.3: native apps' loopback redirects, any port.
        if app == Some(ApplicationType::Web) {
            return Err(Redirect(format!(
                "`{uri}`: a web application must use https redirect URIs; an application \
                 on the user's device (loopback redirect) registers as native"
            )));
        }
    } else if FORBIDDEN_SCHEMES.contains(&scheme) {
        return Err(Redirect(format!(
            "`{uri}`: {scheme} redirect URIs are not allowed"
        )));
    } else {
        if !policy.allow_private_use_schemes {
            return Err(Redirect(format!(
                "`{uri}`: private-use schemes are not allowed here"
            )));
        }
        if app == Some(ApplicationType::Web) {
            return Err(Redirect(format!(
                "`{uri}`: a web application must use https redirect URIs"
            )));
        }
    }
    if !policy.allowed_patterns.is_empty()
        && !policy
            .allowed_patterns
            .iter()
            .any(|p| pattern_matches(p, &url))
    {
        return Err(Redirect(format!(
            "`{uri}` is not among the redirect URIs this server allows"
        )));
    }
    Ok(())
}

/// `https://claude.ai/api/mcp/auth_callback` (exact), `http://127.0.0.1:*/*`
/// (any port, any path).
fn pattern_matches(pattern: &str, url: &Url) -> bool {
    let (base, any_path) = match pattern.strip_suffix("/*") {
        Some(base) => (base, true),
        None => (pattern, false),
    };
    let (base, any_port) = any_port(base);
    let Ok(pattern_url) = Url::parse(&base) else {
        return false;
    };
    let path_ok = if any_path {
        let prefix = pattern_url.path().trim_end_matches('/');
        url.path() == prefix || url.path().starts_with(&format!("{prefix}/")) || prefix.is_empty()
    } else {
        url.path() == pattern_url.path() && url.query() == pattern_url.query()
    };
    url.scheme() == pattern_url.scheme()
        && url.host_str() == pattern_url.host_str()
        && (any_port || url.port_or_known_default() == pattern_url.port_or_known_default())
        && path_ok
}

/// A pattern with `*` as its port (`scheme://host:*`, then the path if any) without
/// it, and whether it had one. A `:*` anywhere else is part of the pattern: taken for
/// the port, it would widen the pattern to URIs its author did not list.
fn any_port(pattern: &str) -> (String, bool) {
    let Some((scheme, rest)) = pattern.split_once("://") else {
        return (pattern.to_owned(), false);
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..end].strip_suffix(":*") {
        Some(host) => (format!("{scheme}://{host}{}", &rest[end..]), true),
        None => (pattern.to_owned(), false),
    }
}
