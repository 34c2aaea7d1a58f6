//! Resource identifiers (RFC 8707) and the request paths that select a resource.

use std::borrow::Cow;

/// Resource identifiers are compared without regard to a trailing slash: clients
/// differ on it (the TS SDK adds one to a bare origin, Zed strips it), and the path
/// still counts.
pub fn same_resource(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

/// Whether a request to `path` belongs under `base` (a resource's path without a
/// trailing slash): the same path, or below it at a segment boundary; `""` covers all.
pub fn path_covers(base: &str, path: &str) -> bool {
    base.is_empty()
        || path == base
        || path
            .strip_prefix(base)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// A resource URI's authority (RFC 3986 §3.2): its host, lower-cased, and its port
/// (the scheme's default when the URI names none), which a request's `Host` must name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Authority {
    pub host: String,
    pub port: u16,
    /// The port a `Host` without one means for this URI: its scheme's default (443 for
    /// https, 80 for http).
    pub default_port: u16,
}

impl Authority {
    /// The authority of an http(s) `url` (`None` without a host).
    pub fn of(url: &url::Url) -> Option<Self> {
        Some(Self {
            host: url.host_str()?.to_ascii_lowercase(),
            port: url.port_or_known_default()?,
            default_port: match url.scheme() {
                "https" => 443,
                "http" => 80,
                _ => return None,
            },
        })
    }

    /// Whether some request host names both authorities: the same host on the same port,
    /// or each on its scheme's default port (a `Host` without a port names both).
    pub fn overlaps(&self, other: &Self) -> bool {
        self.host == other.host
            && (self.port == other.port || (self.on_default() && other.on_default()))
    }

    fn on_default(&self) -> bool {
        self.port == self.default_port
    }

    /// Whether a request's host (`Host` or a trusted `X-Forwarded-Host`: `host[:port]`,
    /// an IPv6 address in brackets) names this authority; without a port, the scheme's
    /// default is meant (RFC 9110 §7.2).
    pub fn matches(&self, request_host: &str) -> bool {
        let (host, port) = split_host(request_host.trim());
        let port = match port {
            None => self.on_default(),
            Some(port) => port.parse::<u16>().is_ok_and(|p| p == self.port),
        };
        port && host.eq_ignore_ascii_case(&self.host)
    }
}

/// `host[:port]` split, an IPv6 literal keeping its brackets (as `Url::host_str` does).
fn split_host(value: &str) -> (&str, Option<&str>) {
    if value.starts_with('[') {
        return match value.find(']') {
            Some(end) => {
                let (host, rest) = value.split_at(end + 1);
                (host, rest.strip_prefix(':'))
            }
            None => (value, None),
        };
    }
    match value.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (value, None),
    }
}

/// A request that matches no resource for certain: its path is shared by resources on
/// several hosts and its host names none of them, so picking one would apply the
/// wrong rule set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the request's host names none of the resources that share its path")]
pub struct UnknownHost;

/// The resource a request to `host` and `path` (routed) belongs to, of `resources`
/// (each giving its authority and path). `covers(base, path)` says whether a resource
/// path takes the request ([`path_covers`] for requests, equality for metadata).
///
/// 1. Of the resources that cover the path and whose authority the host names, the
///    longest path wins.
/// 2. Else (no host, or a proxy that rewrites it) the path alone decides: the longest
///    covering path, if no resource on another authority has that same path; if one
///    has, the host cannot tell them apart and the request is refused ([`UnknownHost`]):
///    fail closed rather than judge it by another server's rules.
pub fn select<'a, R>(
    resources: &'a [R],
    parts: impl Fn(&R) -> (&Authority, &str),
    host: Option<&str>,
    path: &str,
    covers: impl Fn(&str, &str) -> bool,
) -> Result<Option<&'a R>, UnknownHost> {
    let covering = || {
        resources
            .iter()
            .filter(|r| covers(parts(r).1, path))
            .map(|r| (r, parts(r)))
    };
    if let Some(host) = host
        && let Some((best, _)) = covering()
            .filter(|(_, (authority, _))| authority.matches(host))
            .max_by_key(|(_, (_, base))| base.len())
    {
        return Ok(Some(best));
    }
    let Some((best, (authority, base))) = covering().max_by_key(|(_, (_, base))| base.len()) else {
        return Ok(None);
    };
    let shared = resources.iter().any(|r| {
        let (other, other_base) = parts(r);
        other_base == base && other != authority
    });
    if shared {
        Err(UnknownHost)
    } else {
        Ok(Some(best))
    }
}

/// Why a request path is refused instead of matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathError {
    NotAbsolute,
    /// `//`: nginx merges slashes, other servers do not.
    EmptySegment,
    /// `.` or `..`, plain or encoded (`%2e`): proxies resolve them before routing.
    DotSegment,
    /// `%2F`, `%5C` or `\`: a separator that one server splits on and another does not.
    Separator,
    /// A `%` without two hex digits, a control character, or bytes that are not UTF-8.
    Malformed,
}

impl std::fmt::Display for PathError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.description())
    }
}

impl std::error::Error for PathError {}

impl PathError {
    /// The message as a `'static` text, for an error body.
    pub fn description(self) -> &'static str {
        match self {
            Self::NotAbsolute => "the request path must start with `/`",
            Self::EmptySegment => "the request path has an empty segment (`//`)",
            Self::DotSegment => "the request path has a `.` or `..` segment",
            Self::Separator => "the request path has an encoded `/` or a `\\`",
            Self::Malformed => {
                "the request path has a malformed escape, a control character or non-UTF-8 bytes"
            }
        }
    }
}

/// The path a request for `raw` is routed to, for matching against resource paths:
/// percent-escapes decoded, as nginx decodes them before it picks a location (RFC 3986
/// §6.2.2.2). A path that routers resolve differently — dot segments, encoded
/// separators, empty segments — is refused rather than normalised: the broker would
/// otherwise judge one resource while the proxy hands the request to another, or the
/// MCP server (which receives the path raw) resolves it a third way.
pub fn routed_path(raw: &str) -> Result<Cow<'_, str>, PathError> {
    let Some(rest) = raw.strip_prefix('/') else {
        return Err(PathError::NotAbsolute);
    };
    if raw.contains('\\') {
        return Err(PathError::Separator);
    }
    let escaped = raw.contains('%');
    let mut decoded = String::new();
    let mut segments = rest.split('/').peekable();
    while let Some(segment) = segments.next() {
        let last = segments.peek().is_none();
        if segment.is_empty() && !last {
            return Err(PathError::EmptySegment);
        }
        if segment.bytes().any(|b| b.is_ascii_control()) {
            return Err(PathError::Malformed);
        }
        let plain = decode_segment(segment)?;
        if plain == "." || plain == ".." {
            return Err(PathError::DotSegment);
        }
        if escaped {
            decoded.push('/');
            decoded.push_str(&plain);
        }
    }
    Ok(if escaped {
        Cow::Owned(decoded)
    } else {
        Cow::Borrowed(raw)
    })
}

/// One path segment with its `%XX` escapes decoded (RFC 3986 §2.1); `+` stays a `+`.
fn decode_segment(segment: &str) -> Result<Cow<'_, str>, PathError> {
    if !segment.contains('%') {
        return Ok(Cow::Borrowed(segment));
    }
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let digit = |at: usize| {
                bytes
                    .get(at)
                    .and_then(|b| (*b as char).to_digit(16))
                    .ok_or(PathError::Malformed)
            };
            let byte = (digit(i + 1)? << 4 | digit(i + 2)?) as u8;
            match byte {
                b'/' | b'\\' => return Err(PathError::Separator),
                b if b.is_ascii_control() => return Err(PathError::Malformed),
                b => out.push(b),
            }
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out)
        .map(Cow::Owned)
        .map_err(|_| PathError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_paths_are_routed_as_they_are_without_a_copy() {
        for path in [
            "/",
            "/mcp",
            "/mcp/",
            "/mcp/x.json",
            "/mcp-admin",
            "/a/.well-known/b",
        ] {
            assert!(matches!(routed_path(path), Ok(Cow::Borrowed(p)) if p == path));
        }
    }

    #[test]
    fn escapes_are_decoded_as_a_proxy_decodes_them_before_routing() {
        assert_eq!(routed_path("/mc%70").unwrap(), "/mcp");
        assert_eq!(routed_path("/mcp%2Dadmin").unwrap(), "/mcp-admin");
        assert_eq!(routed_path("/caf%C3%A9/x").unwrap(), "/café/x");
        assert_eq!(routed_path("/a+b").unwrap(), "/a+b");
    }

    #[test]
    fn paths_that_routers_resolve_differently_are_refused() {
        let refused = [
            ("/mcp/../mcp-admin", PathError::DotSegment),
            ("/mcp/./x", PathError::DotSegment),
            ("/mcp/..", PathError::DotSegment),
            ("/mcp/%2e%2e/mcp-admin", PathError::DotSegment),
            ("/mcp/%2E./mcp-admin", PathError::DotSegment),
            ("/mcp/..%2Fmcp-admin", PathError::Separator),
            ("/mcp%2f..%2fmcp-admin", PathError::Separator),
            ("/mcp/..%5Cmcp-admin", PathError::Separator),
            ("/mcp\\..\\mcp-admin", PathError::Separator),
            ("//mcp-admin", PathError::EmptySegment),
            ("/mcp//x", PathError::EmptySegment),
            ("/mcp/%zz", PathError::Malformed),
            ("/mcp/%2", PathError::Malformed),
            ("/mcp/%00", PathError::Malformed),
            ("/mcp/%0d%0a", PathError::Malformed),
            ("/mcp/%ff", PathError::Malformed),
            ("mcp", PathError::NotAbsolute),
            ("", PathError::NotAbsolute),
        ];
        for (path, error) in refused {
            assert_eq!(routed_path(path), Err(error), "{path}");
        }
    }

    #[test]
    fn trailing_slashes_do_not_matter_but_paths_do() {
        assert!(same_resource(
            "https://x.example/mcp",
            "https://x.example/mcp/"
        ));
        assert!(same_resource("https://x.example", "https://x.example/"));
        assert!(!same_resource(
            "https://x.example/mcp",
            "https://x.example/"
        ));
    }

    #[test]
    fn a_path_covers_itself_and_what_is_below_it_at_a_segment_boundary() {
        assert!(path_covers("/mcp", "/mcp"));
        assert!(path_covers("/mcp", "/mcp/x"));
        assert!(!path_covers("/mcp", "/mcpx"));
        assert!(!path_covers("/mcp", "/"));
        assert!(path_covers("", "/anything"));
    }

    fn authority(host: &str, port: u16) -> Authority {
        Authority {
            host: host.into(),
            port,
            default_port: if port == 80 { 80 } else { 443 },
        }
    }

    #[test]
    fn a_host_names_an_authority_with_or_without_the_default_port() {
        let a = authority("a.example", 443);
        assert!(a.matches("a.example"));
        assert!(a.matches("A.Example:443"));
        assert!(!a.matches("a.example:8443"));
        assert!(!a.matches("b.example"));
        assert!(!a.matches("a.example:x"));
        let local = authority("127.0.0.1", 8080);
        assert!(local.matches("127.0.0.1:8080"));
        assert!(!local.matches("127.0.0.1"));
        assert!(authority("[::1]", 8080).matches("[::1]:8080"));
        assert!(!authority("[::1]", 8080).matches("[::1]"));
        assert!(a.overlaps(&authority("a.example", 80)));
        assert!(!a.overlaps(&authority("a.example", 8443)));
        assert!(!a.overlaps(&authority("b.example", 443)));
    }

    #[test]
    fn a_host_without_a_port_means_the_uris_own_schemes_default() {
        let of = |uri: &str| Authority::of(&url::Url::parse(uri).unwrap()).unwrap();
        // TLS on port 80, plain HTTP on 443: a bare host names neither.
        let tls_on_80 = of("https://a.example:80/mcp");
        let http_on_443 = of("http://a.example:443/mcp");
        assert!(!tls_on_80.matches("a.example"));
        assert!(!http_on_443.matches("a.example"));
        assert!(tls_on_80.matches("a.example:80"));
        assert!(of("http://a.example/mcp").matches("a.example"));
        assert!(of("https://a.example/mcp").matches("a.example"));
        // Each on its own default: a bare host names both, so they overlap.
        assert!(of("https://a.example/mcp").overlaps(&of("http://a.example/mcp")));
        assert!(!tls_on_80.overlaps(&of("https://a.example/mcp")));
        assert!(tls_on_80.overlaps(&of("http://a.example/mcp")));
    }

    #[test]
    fn the_host_picks_among_resources_on_one_path_and_the_path_alone_decides_otherwise() {
        let resources = [
            (authority("a.example", 443), "/mcp"),
            (authority("b.example", 443), "/mcp"),
            (authority("b.example", 443), ""),
            (authority("c.example", 443), "/tools"),
        ];
        let pick = |host: Option<&str>, path: &str| {
            select(&resources, |r| (&r.0, r.1), host, path, path_covers)
                .map(|found| found.map(|r| (r.0.host.as_str(), r.1)))
        };
        assert_eq!(
            pick(Some("a.example"), "/mcp/x"),
            Ok(Some(("a.example", "/mcp")))
        );
        assert_eq!(
            pick(Some("b.example"), "/mcp"),
            Ok(Some(("b.example", "/mcp")))
        );
        // The host's own resources first, though another host has a longer path.
        assert_eq!(
            pick(Some("b.example"), "/tools"),
            Ok(Some(("b.example", "")))
        );
        // A rewritten host: a path only one resource has still decides ...
        assert_eq!(
            pick(Some("internal:8080"), "/tools"),
            Ok(Some(("c.example", "/tools")))
        );
        assert_eq!(pick(None, "/other"), Ok(Some(("b.example", ""))));
        // ... but a shared one does not.
        assert_eq!(pick(Some("internal:8080"), "/mcp"), Err(UnknownHost));
        assert_eq!(pick(None, "/mcp"), Err(UnknownHost));
        let exact = |host: &str, path: &str| {
            select(&resources, |r| (&r.0, r.1), Some(host), path, |a, b| a == b)
                .map(|found| found.map(|r| r.0.host.as_str()))
        };
        assert_eq!(exact("b.example", "/mcp"), Ok(Some("b.example")));
        assert_eq!(exact("a.example", "/tools"), Ok(Some("c.example")));
        assert_eq!(exact("a.example", "/nothing"), Ok(None));
    }
}
