//! Resource identifiers (RFC 8707).

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

#[cfg(test)]
mod tests {
    use super::*;

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
