//! MCP protocol revisions as the `MCP-Protocol-Version` header names them
//! (`YYYY-MM-DD`). The 2026-07-28 revision is where both the gateway and forward-auth
//! draw their line: its transport is stateless, and its servers must check the
//! `Mcp-Method` / `Mcp-Name` headers against the body.

/// The first revision without sessions whose servers check the MCP headers against
/// the body (MCP 2026-07-28 changelog).
pub const STATELESS_CHECKED_HEADERS: &str = "2026-07-28";

/// `YYYY-MM-DD` with a month 01–12 and a day 01–31: the form every MCP revision has.
pub fn is_revision(value: &str) -> bool {
    let bytes = value.as_bytes();
    let digits = |range: std::ops::Range<usize>| bytes[range].iter().all(u8::is_ascii_digit);
    if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return false;
    }
    if !(digits(0..4) && digits(5..7) && digits(8..10)) {
        return false;
    }
    let month = &value[5..7];
    let day = &value[8..10];
    ("01"..="12").contains(&month) && ("01"..="31").contains(&day)
}

/// Whether `value` is a revision, [`STATELESS_CHECKED_HEADERS`] or later. Dates of
/// that form order as strings do.
pub fn at_least_2026_07_28(value: &str) -> bool {
    is_revision(value) && value >= STATELESS_CHECKED_HEADERS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revisions_are_dates_and_order_as_text() {
        assert!(at_least_2026_07_28("2026-07-28"));
        assert!(at_least_2026_07_28("2027-01-01"));
        assert!(!at_least_2026_07_28("2025-11-25"));
        for bad in ["2026-13-01", "2026-7-28", "later", "9999-99-99", ""] {
            assert!(!is_revision(bad), "{bad}");
            assert!(!at_least_2026_07_28(bad), "{bad}");
        }
    }
}
