//! A POSTed MCP body as the gateway reads it (JSON-RPC 2.0 §4–§6, one message or a
//! batch): the messages it authorizes are exactly the body's, in order, each with the
//! method and tool name the MCP server will act on; anything it cannot read that way
//! refuses the whole body with the code JSON-RPC gives it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use token_broker::gateway::jsonrpc::{
    INVALID_PARAMS, INVALID_REQUEST, PARSE_ERROR, answer_id, check_headers, parse,
};

fuzz_target!(|body: &[u8]| {
    let value: Option<Value> = serde_json::from_slice(body).ok();
    let messages = match parse(body) {
        Err(refused) => {
            match &value {
                None => assert_eq!(refused.code, PARSE_ERROR),
                Some(_) => assert!([INVALID_REQUEST, INVALID_PARAMS].contains(&refused.code)),
            }
            if matches!(value, Some(Value::Array(_))) {
                assert_eq!(refused.id, Value::Null, "a batch is answered under null");
            }
            return;
        }
        Ok(messages) => messages,
    };
    let value = value.expect("a parsed body is JSON");
    let items: Vec<&Value> = match &value {
        Value::Array(items) => items.iter().collect(),
        one => vec![one],
    };
    assert!(!items.is_empty());
    assert_eq!(items.len(), messages.len());
    for (message, item) in messages.iter().zip(items) {
        let object = item.as_object().expect("a message is an object");
        assert_eq!(object.get("jsonrpc"), Some(&Value::from("2.0")));
        match (&message.id, object.get("id")) {
            (None, None) => {}
            (Some(id), Some(raw)) => {
                assert_eq!(id, raw);
                assert!(id.is_string() || id.is_number());
            }
            (ours, theirs) => panic!("id {ours:?} read from {theirs:?}"),
        }
        match &message.method {
            Some(method) => assert_eq!(object.get("method"), Some(&Value::from(method.as_str()))),
            None => assert!(
                object.get("method").is_none()
                    && (object.contains_key("result") || object.contains_key("error"))
            ),
        }
        let name = item.pointer("/params/name").and_then(Value::as_str);
        if message.method.as_deref() == Some("tools/call") {
            assert_eq!(
                message.tool.as_deref(),
                Some(name.expect("a called tool has a name"))
            );
        } else {
            assert_eq!(message.tool, None);
        }
    }
    // The transport's headers naming exactly the one message are accepted.
    if let [one] = messages.as_slice() {
        assert_eq!(answer_id(&messages), one.id.clone().unwrap_or_default());
        if let Some(method) = &one.method {
            assert!(check_headers(&messages, Some(method), one.tool.as_deref()).is_ok());
        }
    } else {
        assert_eq!(answer_id(&messages), Value::Null);
        assert!(check_headers(&messages, Some("tools/call"), None).is_err());
    }
});
