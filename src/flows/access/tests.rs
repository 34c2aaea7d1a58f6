use super::*;

fn headers<'a>(version: Header<'a>, method: Header<'a>) -> TransportHeaders<'a> {
    TransportHeaders {
        protocol_version: version,
        method,
        name: Header::Absent,
    }
}

fn why(forwarded: Forwarded<'_>) -> Option<&'static str> {
    match forwarded {
        Forwarded::Described(_) => None,
        Forwarded::Unseen(why) => Some(why),
    }
}

#[test]
fn headers_stand_for_the_body_only_from_2026_07_28_and_once() {
    let call = McpCall::default();
    let current = Header::Once(Some("2026-07-28"));
    let method = Header::Once(Some("tools/call"));
    assert_eq!(
        why(Forwarded::read(call, Method::Post, || headers(
            current, method
        ))),
        None
    );
    let older = Header::Once(Some("2025-11-25"));
    assert!(
        why(Forwarded::read(call, Method::Post, || headers(
            older, method
        )))
        .is_some()
    );
    let repeated = headers(current, Header::Repeated);
    assert_eq!(
        why(Forwarded::read(call, Method::Other, || repeated)),
        Some("the request carried an MCP header more than once")
    );
    let unnamed = headers(current, Header::Absent);
    assert_eq!(
        why(Forwarded::read(call, Method::Post, || unnamed)),
        Some("the request carried no Mcp-Method")
    );
    // A stream carries no message: its headers are not even read.
    let read = Forwarded::read(call, Method::Stream, || unreachable!());
    assert_eq!(why(read), None);
}

#[test]
fn base64_names_are_decoded_and_bad_ones_match_nothing() {
    let mut scratch = String::new();
    let call = McpCall::from_headers(
        Some("tools/call"),
        Some("=?base64?w6liw6k=?="),
        &mut scratch,
    );
    assert_eq!(call.name, Some("ébé"));
    let mut scratch = String::new();
    let call = McpCall::from_headers(Some("tools/call"), Some("=?base64?***?="), &mut scratch);
    assert_eq!(call.name, Some(""));
    let mut scratch = String::new();
    let call = McpCall::from_headers(None, Some("plain"), &mut scratch);
    assert_eq!((call.name, call.tool()), (Some("plain"), None));
}

#[test]
fn bearer_tokens_are_read_from_the_header_value() {
    assert_eq!(bearer(Some(b"Bearer abc")), Ok("abc"));
    assert_eq!(bearer(Some(b"bEaReR  abc ")), Ok("abc"));
    assert_eq!(bearer(None), Err(Rejection::Missing));
    assert_eq!(bearer(Some(b"Basic abc")), Err(Rejection::WrongScheme));
    assert_eq!(bearer(Some(b"Bearer")), Err(Rejection::WrongScheme));
    assert_eq!(bearer(Some(b"Bearer a b")), Err(Rejection::Malformed));
    // Every byte outside 0x21..=0x7e is refused, wherever it sits in a long token.
    for bad in [0x00u8, 0x09, 0x1f, 0x20, 0x7f, 0x80, 0xff] {
        for at in [0, 31, 32, 600] {
            let mut value = b"Bearer ".to_vec();
            let mut token = vec![b'x'; 601];
            token[at] = bad;
            value.extend_from_slice(&token);
            let trimmed = bad == 0x20 || bad == 0x09;
            let edge = at == 0 || at == 600;
            if !(trimmed && edge) {
                assert_eq!(
                    bearer(Some(&value)),
                    Err(Rejection::Malformed),
                    "{bad:#x} at {at}"
                );
            }
        }
    }
    assert_eq!(bearer(Some(b"Bearer !~")), Ok("!~"));
}

#[test]
fn challenges_are_worded_as_clients_expect() {
    let bearer = Challenge::Bearer {
        resource_metadata: "https://mcp.example/.well-known/oauth-protected-resource/mcp"
            .to_owned(),
        scope: "notes:read".to_owned(),
        error: Some("insufficient_scope"),
        description: Some("missing scope: notes:read".to_owned()),
    };
    assert_eq!(
        bearer.to_string(),
        "Bearer resource_metadata=\"https://mcp.example/.well-known/oauth-protected-resource/mcp\", scope=\"notes:read\", error=\"insufficient_scope\", error_description=\"missing scope: notes:read\""
    );
    let bare = Challenge::Bearer {
        resource_metadata: "m".to_owned(),
        scope: String::new(),
        error: None,
        description: None,
    };
    assert_eq!(bare.to_string(), "Bearer resource_metadata=\"m\"");
    let denied = Challenge::AccessDenied {
        resource_metadata: "m".to_owned(),
        description: "no".to_owned(),
    };
    assert_eq!(
        denied.to_string(),
        "Bearer error=\"access_denied\", error_description=\"no\", resource_metadata=\"m\""
    );
}
