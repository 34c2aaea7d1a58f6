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
}
