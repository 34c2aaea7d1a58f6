//! An event stream as a client reads it (HTML Living Standard, "Server-sent events",
//! §9.2.5–9.2.6): the bytes decoded as UTF-8 with replacement, one leading BOM
//! dropped, lines ended by CRLF, LF or CR, an empty line dispatching the event, the
//! `data` field's values joined with LF (one space after the colon dropped), and an
//! event with no data not dispatched. What the gateway sends on is judged by this.

/// The data of every event a client dispatches from `stream`.
pub fn client_events(stream: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(stream);
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let mut events = Vec::new();
    let mut data: Option<String> = None;
    let mut rest = text;
    loop {
        let Some(end) = rest.find(['\r', '\n']) else {
            // An unfinished last event is discarded by clients.
            break;
        };
        let line = &rest[..end];
        rest = &rest[end
            + if rest[end..].starts_with("\r\n") {
                2
            } else {
                1
            }..];
        if line.is_empty() {
            if let Some(data) = data.take() {
                events.push(data);
            }
            continue;
        }
        let (field, value) = match line.find(':') {
            Some(0) => continue,
            Some(at) => {
                let value = &line[at + 1..];
                (&line[..at], value.strip_prefix(' ').unwrap_or(value))
            }
            None => (line, ""),
        };
        if field == "data" {
            match &mut data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => data = Some(value.to_owned()),
            }
        }
    }
    events
}

/// `stream` cut into events as they arrive: each up to and including the empty line
/// that ends it, the rest (if any) last.
pub fn raw_events(stream: &[u8]) -> Vec<&[u8]> {
    let mut events = Vec::new();
    let (mut start, mut line, mut i) = (0, 0, 0);
    while i < stream.len() {
        let next = match stream[i] {
            b'\n' => i + 1,
            b'\r' if stream.get(i + 1) == Some(&b'\n') => i + 2,
            b'\r' => i + 1,
            _ => {
                i += 1;
                continue;
            }
        };
        if i == line {
            events.push(&stream[start..next]);
            start = next;
        }
        line = next;
        i = next;
    }
    if start < stream.len() {
        events.push(&stream[start..]);
    }
    events
}
