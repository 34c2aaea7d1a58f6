//! Header values built from or read from outside input.
//!
//! `Mcp-Name` (MCP 2026-07-28 transport headers: plain, or `=?base64?…?=` for values
//! that are not plain ASCII): forward-auth and the gateway read one value as the same
//! tool name; any name written in the encoded form reads back as itself; the gateway
//! accepts a header for a `tools/call` exactly when forward-auth would read the tool the
//! body names.
//!
//! `WWW-Authenticate` (RFC 6750 §3, RFC 9728 §5.1): a challenge naming any scopes a
//! request could need is one well-formed header whose parameters read back as written.
#![no_main]

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use libfuzzer_sys::fuzz_target;
use serde_json::json;
use token_broker::domain::scope::Scopes;
use token_broker::flows::access::{Challenge, McpCall};
use token_broker::gateway::jsonrpc::{check_headers, parse};
use token_broker_fuzz::{challenge, parts, text};

fn forward_auth_reads(value: &str) -> String {
    let mut scratch = String::new();
    let call = McpCall::from_headers(Some("tools/call"), Some(value), &mut scratch);
    call.name.unwrap_or_default().to_owned()
}

fn gateway_accepts(value: &str, tool: &str) -> bool {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool}});
    let messages = parse(body.to_string().as_bytes()).expect("a tools/call body");
    check_headers(&messages, Some("tools/call"), Some(value)).is_ok()
}

fuzz_target!(|data: &[u8]| {
    let pieces = parts(data);
    let (Some(value), Some(tool)) = (
        pieces.first().copied().and_then(text),
        pieces.get(1).copied().and_then(text),
    ) else {
        return;
    };
    let read = forward_auth_reads(value);
    if !tool.is_empty() {
        assert_eq!(
            gateway_accepts(value, tool),
            read == tool,
            "{value:?} for {tool:?}"
        );
    }
    if !value.starts_with("=?base64?") || !value.ends_with("?=") {
        assert_eq!(read, value, "a plain value is the name");
    }
    let encoded = format!("=?base64?{}?=", STANDARD.encode(tool));
    assert_eq!(forward_auth_reads(&encoded), tool);
    if !tool.is_empty() {
        assert!(gateway_accepts(&encoded, tool));
    }

    // The challenges: `scope` every token the operation needs, the description naming
    // what was missing (flows/access/tools.rs words).
    let Ok(scopes) = Scopes::parse(value) else {
        return;
    };
    let metadata = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp";
    let challenges = [
        Challenge::Bearer {
            resource_metadata: metadata.to_owned(),
            scope: scopes.to_string(),
            error: Some("insufficient_scope"),
            description: Some(format!(
                "the request carried no Mcp-Method; missing scope: {scopes}"
            )),
        },
        Challenge::Bearer {
            resource_metadata: metadata.to_owned(),
            scope: scopes.to_string(),
            error: None,
            description: None,
        },
        Challenge::AccessDenied {
            resource_metadata: metadata.to_owned(),
            description: format!("missing scope: {scopes}"),
        },
    ];
    for written in challenges {
        let header = written.to_string();
        assert!(challenge::is_field_value(&header), "{header:?}");
        let (scheme, params) = challenge::parse(&header).unwrap_or_else(|| panic!("{header:?}"));
        assert_eq!(scheme, "Bearer");
        let param = |name: &str| {
            params
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(param("resource_metadata"), Some(metadata));
        if let Challenge::Bearer { scope, .. } = &written {
            assert_eq!(
                param("scope"),
                (!scope.is_empty()).then_some(scope.as_str())
            );
            assert_eq!(
                param("scope")
                    .map(Scopes::parse)
                    .transpose()
                    .ok()
                    .flatten()
                    .unwrap_or_default(),
                scopes
            );
        }
    }
});
