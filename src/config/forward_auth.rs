//! `[forward_auth]`: where `/auth/verify` reads the request it judges. The reverse
//! proxy copies every header the client sent into its check request, so exactly one
//! header names the original URI (and one its method): the one this deployment's proxy
//! always sets, overwriting whatever the client sent. A header the proxy only passes
//! on would let the client pick the resource being judged.

use actix_web::http::header::HeaderName;
use serde::Deserialize;

use super::Problem;
use super::sections::Checker;

/// `[forward_auth]` as written.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawForwardAuth {
    pub uri_header: Option<String>,
    pub method_header: Option<String>,
    pub email_header: Option<String>,
    pub user_header: Option<String>,
    pub groups_header: Option<String>,
}

/// `[forward_auth]`
#[derive(Debug, Clone)]
pub struct ForwardAuthConfig {
    /// `uri_header`: the header carrying the original request URI (default
    /// `X-Original-URI`, which the documented nginx set-up sets; Traefik and Caddy set
    /// `X-Forwarded-Uri`). A check request without it is refused (400).
    pub uri_header: HeaderName,
    /// `method_header`: the header carrying the original method (default
    /// `X-Original-Method`; Traefik and Caddy: `X-Forwarded-Method`). Without it no
    /// request passes anonymously.
    pub method_header: HeaderName,
    /// `email_header`, `user_header`, `groups_header`: the identity in forward-auth's
    /// 200 and on the gateway's requests (defaults `X-Auth-Email`, `X-Auth-User`,
    /// `X-Auth-Groups`).
    pub identity: super::IdentityHeaders,
}

impl Default for ForwardAuthConfig {
    fn default() -> Self {
        Self {
            uri_header: HeaderName::from_static("x-original-uri"),
            method_header: HeaderName::from_static("x-original-method"),
            identity: super::IdentityHeaders::default(),
        }
    }
}

/// Headers that carry something else, which a proxy never overwrites with the
/// original URI or method.
fn reserved(name: &HeaderName) -> bool {
    let name = name.as_str();
    matches!(
        name,
        "authorization"
            | "host"
            | "cookie"
            | "forwarded"
            | "x-forwarded-for"
            | "x-forwarded-host"
            | "x-forwarded-proto"
            | "x-real-ip"
            | "x-request-id"
    ) || name.starts_with("content-")
        || name.starts_with("mcp-")
        || name.starts_with("x-auth-")
}

fn header_name(value: String) -> Result<HeaderName, String> {
    let name = HeaderName::from_bytes(value.trim().as_bytes())
        .map_err(|_| format!("`{value}` is not a header name"))?;
    if reserved(&name) {
        return Err(format!(
            "`{value}` carries something else; name the header your proxy sets to the original request (e.g. X-Original-URI)"
        ));
    }
    Ok(name)
}

pub fn forward_auth(raw: RawForwardAuth, problems: &mut Vec<Problem>) -> Option<ForwardAuthConfig> {
    let defaults = ForwardAuthConfig::default();
    let mut c = Checker::new("forward_auth", problems);
    let uri_header = match raw.uri_header {
        None => Some(defaults.uri_header),
        some => c.parse("uri_header", some, header_name),
    };
    let method_header = match raw.method_header {
        None => Some(defaults.method_header),
        some => c.parse("method_header", some, header_name),
    };
    if let (Some(uri), Some(method)) = (&uri_header, &method_header)
        && uri == method
    {
        c.report("method_header", "must differ from uri_header");
    }
    let identity =
        super::identity::headers(raw.email_header, raw.user_header, raw.groups_header, &mut c);
    if !c.ok() {
        return None;
    }
    Some(ForwardAuthConfig {
        uri_header: uri_header?,
        method_header: method_header?,
        identity: identity?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(uri: Option<&str>, method: Option<&str>) -> Result<ForwardAuthConfig, String> {
        let mut problems = Vec::new();
        let raw = RawForwardAuth {
            uri_header: uri.map(str::to_owned),
            method_header: method.map(str::to_owned),
            ..RawForwardAuth::default()
        };
        forward_auth(raw, &mut problems).ok_or_else(|| format!("{problems:?}"))
    }

    #[test]
    fn the_default_is_what_the_documented_nginx_snippet_sets() {
        let config = check(None, None).unwrap();
        assert_eq!(config.uri_header, "x-original-uri");
        assert_eq!(config.method_header, "x-original-method");
    }

    #[test]
    fn traefiks_headers_are_accepted_in_any_case() {
        let config = check(Some("X-Forwarded-Uri"), Some("X-Forwarded-Method")).unwrap();
        assert_eq!(config.uri_header, "x-forwarded-uri");
        assert_eq!(config.method_header, "x-forwarded-method");
    }

    #[test]
    fn headers_that_carry_something_else_are_refused() {
        for name in [
            "Authorization",
            "X-Auth-Subject",
            "Mcp-Method",
            "Host",
            "bad header",
        ] {
            let error = check(Some(name), None).unwrap_err();
            assert!(error.contains("forward_auth.uri_header"), "{name}: {error}");
        }
        let error = check(Some("X-Uri"), Some("x-uri")).unwrap_err();
        assert!(error.contains("must differ"), "{error}");
    }
}
