//! The gateway's `tools/list` filter on an event stream (the Streamable HTTP
//! transport's SSE answers), fed in arbitrary chunks: every event it does not rewrite
//! goes on byte for byte; a client reading what goes on (as the HTML standard reads
//! an event stream) never sees a tool the caller may not call in a tool list, which
//! is marked private; how the stream is cut into chunks changes nothing.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use token_broker::gateway::filter::{Lists, SseFilter};
use token_broker_fuzz::event_stream::{client_events, raw_events};

/// The caller may call every tool but those with `write` in their name.
fn visible(name: &str) -> bool {
    !name.contains("write")
}

/// Every tool list (a response's `result.tools`, alone or in a batch) in a message.
fn tool_lists(message: &Value) -> Vec<&Value> {
    let answers: Vec<&Value> = match message {
        Value::Array(items) => items.iter().collect(),
        one => vec![one],
    };
    answers
        .into_iter()
        .filter(|a| a.get("method").is_none())
        .filter_map(|a| a.get("result"))
        .filter(|r| r.get("tools").is_some_and(Value::is_array))
        .collect()
}

/// What the filter sends on for `stream` cut every `size` bytes.
fn run(stream: &[u8], size: usize) -> Vec<u8> {
    let mut filter = SseFilter::new(Lists::Any, visible, 1 << 20);
    let mut out = Vec::new();
    for chunk in stream.chunks(size.max(1)) {
        match filter.push(Bytes::copy_from_slice(chunk)) {
            Ok(sent) => out.extend_from_slice(&sent),
            Err(_) => return out,
        }
    }
    out.extend_from_slice(&filter.finish());
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&size, stream)) = data.split_first() else {
        return;
    };
    let whole = run(stream, stream.len());
    assert_eq!(
        run(stream, usize::from(size % 16) + 1),
        whole,
        "cut into chunks"
    );

    // No tool list a client reads shows a tool it may not call, and each is private.
    for data in client_events(&whole) {
        let Ok(message) = serde_json::from_str::<Value>(&data) else {
            continue;
        };
        for result in tool_lists(&message) {
            for tool in result["tools"].as_array().into_iter().flatten() {
                let name = tool.get("name").and_then(Value::as_str);
                assert!(name.is_some_and(visible), "{tool} shown");
            }
            assert_eq!(result["cacheScope"], "private");
        }
    }
    // Every event left alone goes on byte for byte; only tool lists are rewritten.
    let sent = raw_events(&whole);
    let came = raw_events(stream);
    assert_eq!(sent.len(), came.len(), "one event out per event in");
    for (out, event) in sent.iter().zip(&came) {
        if out != event {
            let lists = client_events(&[*event, b"\n\n"].concat())
                .iter()
                .filter_map(|d| serde_json::from_str::<Value>(d).ok())
                .any(|m| !tool_lists(&m).is_empty());
            assert!(
                lists,
                "rewrote {:?} into {:?}",
                String::from_utf8_lossy(event),
                String::from_utf8_lossy(out)
            );
        }
    }
});
