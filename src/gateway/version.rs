//! Which revision of the Streamable HTTP transport a request speaks, from its
//! `MCP-Protocol-Version` header: 2026-07-28 and later are stateless (no sessions, no
//! GET stream, no DELETE, no resumption); 2025-03-26 to 2025-11-25 keep sessions. A
//! request without the header is 2025-03-26, the default the 2025-06-18 and later
//! transports give servers for clients that predate the header. A header that is not
//! a date names no revision: refused, since the gateway could not tell which rules
//! hold.

use actix_web::http::header::{HeaderMap, HeaderName};

use crate::domain::protocol_version;

use super::jsonrpc::{HEADER_MISMATCH, Invalid, Message, answer_id};

/// The header, as the transport names it.
pub const HEADER: HeaderName = HeaderName::from_static("mcp-protocol-version");
/// The revision a request without the header is taken to speak.
const DEFAULT: &str = "2025-03-26";

/// A request's protocol revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    /// `YYYY-MM-DD`, as sent (or the default).
    pub value: String,
    /// Whether the revision has sessions.
    pub stateless: bool,
}

/// The revision `headers` state; a missing header is [`DEFAULT`]; several headers or
/// one that is not a date are refused (400, JSON-RPC `-32020`).
pub fn of(headers: &HeaderMap) -> Result<Version, Invalid> {
    let mut values = headers.get_all(HEADER);
    let value = match (values.next(), values.next()) {
        (None, _) => DEFAULT,
        (Some(one), None) => one
            .to_str()
            .ok()
            .filter(|v| protocol_version::is_revision(v))
            .ok_or_else(|| malformed("MCP-Protocol-Version is not a protocol version"))?,
        (Some(_), Some(_)) => return Err(malformed("more than one MCP-Protocol-Version")),
    };
    Ok(Version {
        value: value.to_owned(),
        stateless: protocol_version::at_least_2026_07_28(value),
    })
}

impl Version {
    /// MCP 2026-07-28 "Protocol Version Header": the header must name the version
    /// each message states in `_meta`; whoever reads the body refuses a mismatch.
    pub fn check_body(&self, messages: &[Message]) -> Result<(), Invalid> {
        let agrees = |m: &Message| {
            m.protocol_version
                .as_deref()
                .is_none_or(|stated| stated == self.value)
        };
        if messages.iter().all(agrees) {
            return Ok(());
        }
        Err(Invalid {
            code: HEADER_MISMATCH,
            message: "Header mismatch: MCP-Protocol-Version does not match the body".to_owned(),
            id: answer_id(messages),
        })
    }
}

fn malformed(message: &str) -> Invalid {
    Invalid {
        code: HEADER_MISMATCH,
        message: format!("Header mismatch: {message}"),
        id: serde_json::Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::HeaderValue;

    use super::*;
    use crate::gateway::jsonrpc::parse;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in values {
            map.append(HEADER, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn dates_from_2026_07_28_on_are_stateless_and_a_missing_header_is_2025_03_26() {
        for (sent, stateless) in [
            ("2026-07-28", true),
            ("2027-01-01", true),
            ("2025-11-25", false),
            ("2025-06-18", false),
            ("2024-11-05", false),
        ] {
            let version = of(&headers(&[sent])).unwrap();
            assert_eq!(
                (version.value.as_str(), version.stateless),
                (sent, stateless)
            );
        }
        let missing = of(&headers(&[])).unwrap();
        assert_eq!(
            (missing.value.as_str(), missing.stateless),
            (DEFAULT, false)
        );
    }

    #[test]
    fn anything_but_one_date_is_refused() {
        for bad in [
            "",
            "latest",
            "2026-7-28",
            "2026-07-28 ",
            "2026/07/28",
            "2026-13-01",
            "2026-00-10",
            "2026-07-32",
            "９９９９-07-28",
            "20260728",
        ] {
            let mut map = HeaderMap::new();
            if let Ok(value) = HeaderValue::from_str(bad) {
                map.insert(HEADER, value);
                assert_eq!(of(&map).unwrap_err().code, HEADER_MISMATCH, "{bad:?}");
            }
        }
        let twice = of(&headers(&["2026-07-28", "2025-11-25"])).unwrap_err();
        assert_eq!(twice.code, HEADER_MISMATCH);
    }

    #[test]
    fn the_body_must_state_the_header_s_version_when_it_states_one() {
        let version = of(&headers(&["2026-07-28"])).unwrap();
        let body = |meta: &str| {
            format!(
                r#"{{"jsonrpc":"2.0","id":4,"method":"tools/list","params":{{"_meta":{meta}}}}}"#
            )
        };
        let agrees =
            parse(body(r#"{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}"#).as_bytes())
                .unwrap();
        assert!(version.check_body(&agrees).is_ok());
        assert!(
            version
                .check_body(&parse(body("{}").as_bytes()).unwrap())
                .is_ok()
        );
        for meta in [
            r#"{"io.modelcontextprotocol/protocolVersion":"2025-11-25"}"#,
            r#"{"io.modelcontextprotocol/protocolVersion":20260728}"#,
        ] {
            let refused = version
                .check_body(&parse(body(meta).as_bytes()).unwrap())
                .unwrap_err();
            assert_eq!(
                (refused.code, refused.id),
                (HEADER_MISMATCH, serde_json::json!(4))
            );
        }
    }
}
