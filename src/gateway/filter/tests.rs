use serde_json::json;

use super::*;

fn visible(tool: &str) -> bool {
    matches!(tool, "notes_read" | "get_note" | "health")
}

fn list(id: Value) -> Value {
    json!({
        "jsonrpc": "2.0",
        "id": id,
        "result": { "tools": [
            { "name": "notes_read" }, { "name": "notes_write" },
            { "name": "get_note" }, { "name": "health" }, { "title": "nameless" }
        ], "nextCursor": "c" }
    })
}

fn names(message: &Value) -> Vec<&str> {
    message["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect()
}

#[test]
fn only_the_claimed_answers_are_filtered() {
    let mut lists = Lists::Ids(vec![json!(1)]);
    let mut other = list(json!(2));
    assert!(!filter_message(&mut other, &mut lists, &visible));
    assert_eq!(other, list(json!(2)), "untouched");
    let mut request = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"});
    assert!(!filter_message(&mut request, &mut lists, &visible));
    assert!(!lists.done());
    let mut answer = list(json!(1));
    assert!(filter_message(&mut answer, &mut lists, &visible));
    assert_eq!(names(&answer), ["notes_read", "get_note", "health"]);
    assert_eq!(answer["result"]["nextCursor"], "c");
    assert!(lists.done());
    // Used up: a second answer under the same id is not expected.
    let mut again = list(json!(1));
    assert!(!filter_message(&mut again, &mut lists, &visible));
}

#[test]
fn a_filtered_list_is_private_and_keeps_its_ttl() {
    let all = |_: &str| true;
    for scope in [json!("public"), json!(null), json!(7)] {
        let mut answer = json!({"jsonrpc": "2.0", "id": 1, "result": {
            "tools": [{"name": "x"}], "ttlMs": 300_000, "cacheScope": scope
        }});
        // Nothing removed, yet the list is still this caller's.
        assert!(
            filter_message(&mut answer, &mut Lists::Any, &all),
            "{scope}"
        );
        assert_eq!(answer["result"]["cacheScope"], "private");
        assert_eq!(answer["result"]["ttlMs"], 300_000);
    }
    let mut unscoped = list(json!(1));
    assert!(filter_message(&mut unscoped, &mut Lists::Any, &visible));
    assert_eq!(unscoped["result"]["cacheScope"], "private");
    assert!(unscoped["result"].get("ttlMs").is_none(), "none invented");
    // Not a tool list: untouched.
    let mut other = json!({"jsonrpc": "2.0", "id": 1, "result": {"ttlMs": 5}});
    assert!(!filter_message(&mut other, &mut Lists::Any, &all));
    assert!(other["result"].get("cacheScope").is_none());
}

#[test]
fn batches_and_any_answer() {
    let mut batch = json!([list(json!("a")), {"jsonrpc": "2.0", "id": "b", "result": {}}]);
    let mut lists = Lists::Ids(vec![json!("a"), json!("b")]);
    assert!(filter_message(&mut batch, &mut lists, &visible));
    assert_eq!(names(&batch[0]), ["notes_read", "get_note", "health"]);
    assert!(lists.done());
    let mut replayed = list(json!(99));
    assert!(filter_message(&mut replayed, &mut Lists::Any, &visible));
    assert!(!Lists::Any.done());
}

#[test]
fn json_bodies_are_rewritten_only_when_something_changes() {
    let body = serde_json::to_vec(&list(json!(1))).unwrap();
    let out = filter_json(&body, &mut Lists::Ids(vec![json!(1)]), &visible)
        .unwrap()
        .unwrap();
    let value: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(names(&value), ["notes_read", "get_note", "health"]);
    let all = |_: &str| true;
    let full = json!({"jsonrpc": "2.0", "id": 1, "result": {"tools": [{"name": "x"}], "cacheScope": "private"}});
    let body = serde_json::to_vec(&full).unwrap();
    assert_eq!(
        filter_json(&body, &mut Lists::Ids(vec![json!(1)]), &all).unwrap(),
        None
    );
    assert_eq!(filter_json(b"  ", &mut Lists::Any, &all).unwrap(), None);
    assert!(filter_json(b"{nope", &mut Lists::Any, &all).is_err());
}

/// Events: a progress notification, the list answer split over two data lines with
/// an id and a comment, and a later notification.
fn stream(eol: &str) -> String {
    let list = serde_json::to_string(&list(json!(7))).unwrap();
    // Between two tokens: the data lines are joined with a line feed.
    let (head, tail) = list.split_at(list.find("\"result\":").unwrap() + 9);
    [
        r#"event: message"#,
        r#"data: {"jsonrpc":"2.0","method":"notifications/progress","params":{"progress":1}}"#,
        "",
        ": keep-alive",
        "id: ev-2",
        &format!("data: {head}"),
        &format!("data:{tail}"),
        "",
        r#"data: {"jsonrpc":"2.0","method":"notifications/message","params":{}}"#,
        "",
        "",
    ]
    .join(eol)
}

fn run(input: &[u8], cuts: &[usize]) -> Vec<u8> {
    let mut filter = SseFilter::new(Lists::Ids(vec![json!(7)]), visible, 1 << 20);
    let mut out = Vec::new();
    let mut from = 0;
    for &cut in cuts.iter().chain([&input.len()]) {
        out.extend_from_slice(
            &filter
                .push(Bytes::copy_from_slice(&input[from..cut]))
                .unwrap(),
        );
        from = cut;
    }
    out.extend_from_slice(&filter.finish());
    out
}

#[test]
fn event_streams_are_filtered_the_same_however_they_are_cut() {
    for eol in ["\n", "\r\n", "\r"] {
        let input = stream(eol);
        let whole = run(input.as_bytes(), &[]);
        let text = String::from_utf8(whole.clone()).unwrap();
        // Other events go through byte for byte; the answer is one data line.
        let first = input.split(&format!("{eol}{eol}")).next().unwrap();
        assert!(text.starts_with(first), "{eol:?}");
        assert!(text.contains(": keep-alive\nid: ev-2\ndata: {"), "{text:?}");
        assert!(!text.contains("notes_write"));
        assert!(!text.contains("nameless"));
        assert!(text.contains("notes_read") && text.contains("get_note"));
        assert!(text.contains(r#""cacheScope":"private""#), "{text:?}");
        assert!(
            input.ends_with(
                &text[text
                    .find("data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message")
                    .unwrap()..]
            )
        );
        for cut in 0..=input.len() {
            assert_eq!(run(input.as_bytes(), &[cut]), whole, "{eol:?} cut at {cut}");
        }
        let every: Vec<usize> = (1..input.len()).collect();
        assert_eq!(run(input.as_bytes(), &every), whole, "{eol:?} byte by byte");
    }
}

#[test]
fn each_event_goes_on_as_soon_as_it_is_complete() {
    let input = stream("\n");
    let mut filter = SseFilter::new(Lists::Ids(vec![json!(7)]), visible, 1 << 20);
    let end_of_first = input.find("\n\n").unwrap() + 2;
    let out = filter
        .push(Bytes::copy_from_slice(
            &input.as_bytes()[..end_of_first - 1],
        ))
        .unwrap();
    assert!(out.is_empty(), "not complete yet");
    let out = filter
        .push(Bytes::copy_from_slice(
            &input.as_bytes()[end_of_first - 1..end_of_first],
        ))
        .unwrap();
    assert_eq!(out, input.as_bytes()[..end_of_first]);
    // Once the list has been filtered, chunks go on untouched, without copying.
    let rest = &input.as_bytes()[end_of_first..];
    let list_end = rest.windows(2).position(|w| w == b"\n\n").unwrap() + 2;
    filter
        .push(Bytes::copy_from_slice(&rest[..list_end]))
        .unwrap();
    let later = Bytes::from_static(b"data: partial");
    let passed = filter.push(later.clone()).unwrap();
    assert_eq!(passed.as_ptr(), later.as_ptr());
}

#[test]
fn an_event_past_the_limit_ends_the_stream() {
    let mut filter = SseFilter::new(Lists::Any, visible, 64);
    assert!(filter.push(Bytes::from_static(b"data: 1\n\n")).is_ok());
    let big = Bytes::from(format!("data: {}", "x".repeat(100)));
    assert!(matches!(filter.push(big), Err(GatewayError::TooLarge(64))));
}

#[test]
fn an_unterminated_last_event_is_filtered_too() {
    let event = format!("data: {}", serde_json::to_string(&list(json!(1))).unwrap());
    let mut filter = SseFilter::new(Lists::Any, visible, 1 << 20);
    assert!(filter.push(Bytes::from(event)).unwrap().is_empty());
    let rest = String::from_utf8(filter.finish().to_vec()).unwrap();
    assert!(
        rest.contains("notes_read") && !rest.contains("notes_write"),
        "{rest}"
    );
}

/// Found by `fuzz/fuzz_targets/sse_filter.rs`: an event with a byte that is not UTF-8
/// (here in a comment line), or a byte order mark before the first event, went on
/// unfiltered, yet clients decode with U+FFFD and drop the mark, so they read the
/// whole tool list.
#[test]
fn events_are_read_as_clients_read_them_not_utf8_and_bom_included() {
    let data = serde_json::to_string(&list(json!(1))).unwrap();
    let not_utf8 = [b": \xff\n".as_slice(), b"data: ", data.as_bytes(), b"\n\n"].concat();
    let bom = format!("\u{feff}data: {data}\n\n");
    for input in [not_utf8, bom.into_bytes()] {
        let mut filter = SseFilter::new(Lists::Any, visible, 1 << 20);
        let out = filter.push(Bytes::from(input)).unwrap();
        let text = String::from_utf8_lossy(&out);
        assert!(
            text.contains("notes_read") && !text.contains("notes_write"),
            "{text}"
        );
    }
}
