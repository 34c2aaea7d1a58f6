//! Resource identifiers (RFC 8707).

/// Resource identifiers are compared without regard to a trailing slash: clients
/// differ on it (the TS SDK adds one to a bare origin, Zed strips it), and the path
/// still counts.
pub fn same_resource(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
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
}
