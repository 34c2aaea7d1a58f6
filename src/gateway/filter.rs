//! `tools/list` answers cut down to the tools the caller may call, in a plain JSON body
//! (buffered, bounded) or in an event stream (incremental: every event goes on as soon
//! as it is complete, and only the `data` of the answer being filtered is rewritten).
//! A tool without a string `name` is dropped: what cannot be checked is not shown.
//! Every list filtered is marked `cacheScope: "private"`: it is one caller's.

use actix_web::web::Bytes;
use serde_json::Value;

use super::GatewayError;

/// The most a filtered answer may hold: a whole JSON body, or one event of a stream
/// (a tool list with its schemas is one event).
pub const MAX_FILTERED_BYTES: usize = 8 * 1024 * 1024;

/// The result field saying who may cache it (MCP 2026-07-28 `CacheableResult`), and
/// the value for a result that differs per caller.
const CACHE_SCOPE: &str = "cacheScope";
const PRIVATE: &str = "private";

/// Which answers carry a tool list to filter.
#[derive(Debug, Clone, PartialEq)]
pub enum Lists {
    /// Responses to these request ids (the POSTed `tools/list` requests), each once.
    Ids(Vec<Value>),
    /// Any response with `result.tools`: a GET stream, which may replay earlier answers
    /// when a client resumes with `Last-Event-ID`.
    Any,
}

impl Lists {
    /// Whether a response with `id` is one to filter (an expected id is used up).
    fn claims(&mut self, id: Option<&Value>) -> bool {
        match self {
            Self::Any => true,
            Self::Ids(ids) => match ids.iter().position(|x| Some(x) == id) {
                Some(at) => {
                    ids.swap_remove(at);
                    true
                }
                None => false,
            },
        }
    }

    /// Nothing left to filter.
    pub fn done(&self) -> bool {
        matches!(self, Self::Ids(ids) if ids.is_empty())
    }
}

/// Filters the tool list of a JSON-RPC response (or of each in a batch) that `lists`
/// claims and marks it private; `true` when it changed something.
pub fn filter_message(
    message: &mut Value,
    lists: &mut Lists,
    visible: &impl Fn(&str) -> bool,
) -> bool {
    match message {
        Value::Array(items) => {
            // Every answer of the batch, not only up to the first filtered one.
            let mut changed = false;
            for item in items {
                changed |= filter_one(item, lists, visible);
            }
            changed
        }
        other => filter_one(other, lists, visible),
    }
}

fn filter_one(message: &mut Value, lists: &mut Lists, visible: &impl Fn(&str) -> bool) -> bool {
    let Value::Object(object) = message else {
        return false;
    };
    // A request or notification from the server, not an answer.
    if object.contains_key("method") || !lists.claims(object.get("id")) {
        return false;
    }
    let Some(result) = object.get_mut("result").and_then(Value::as_object_mut) else {
        return false;
    };
    let Some(Value::Array(tools)) = result.get_mut("tools") else {
        return false;
    };
    let before = tools.len();
    tools.retain(|tool| {
        tool.get("name")
            .and_then(Value::as_str)
            .is_some_and(visible)
    });
    let removed = tools.len() != before;
    // The list is this caller's (MCP 2026-07-28 caching): a shared cache must not hand
    // it to another token, whatever scope the server gave. `ttlMs` stays as it came.
    let private = result.get(CACHE_SCOPE).and_then(Value::as_str) == Some(PRIVATE);
    if !private {
        result.insert(CACHE_SCOPE.to_owned(), Value::String(PRIVATE.to_owned()));
    }
    removed || !private
}

/// A whole JSON body: `None` when nothing changed (no tool list claimed, or one
/// already private with nothing to remove: the body goes on as it came).
pub fn filter_json(
    body: &[u8],
    lists: &mut Lists,
    visible: &impl Fn(&str) -> bool,
) -> Result<Option<Vec<u8>>, GatewayError> {
    if body.trim_ascii().is_empty() {
        return Ok(None);
    }
    let mut value: Value =
        serde_json::from_slice(body).map_err(|_| GatewayError::Unfilterable("not JSON"))?;
    if !filter_message(&mut value, lists, visible) {
        return Ok(None);
    }
    serde_json::to_vec(&value)
        .map(Some)
        .map_err(|_| GatewayError::Unfilterable("cannot be written back"))
}

/// An event stream (`text/event-stream`) filtered as it arrives.
pub struct SseFilter<F> {
    lists: Lists,
    visible: F,
    /// What has arrived of the current event (and, after a scan, of later ones).
    buf: Vec<u8>,
    /// Where scanning for line ends resumes in `buf`.
    scan: usize,
    /// Where the current line starts in `buf`.
    line: usize,
    limit: usize,
    /// No event has gone on yet: a client drops one byte order mark before the first.
    first: bool,
}

impl<F: Fn(&str) -> bool> SseFilter<F> {
    pub fn new(lists: Lists, visible: F, limit: usize) -> Self {
        Self {
            lists,
            visible,
            buf: Vec::new(),
            scan: 0,
            line: 0,
            limit,
            first: true,
        }
    }

    /// Takes the next chunk; returns what may go on now: every event it completed
    /// (rewritten where it is a tool list to filter), everything once no tool list is
    /// expected any more.
    pub fn push(&mut self, chunk: Bytes) -> Result<Bytes, GatewayError> {
        if self.lists.done() && self.buf.is_empty() {
            return Ok(chunk);
        }
        self.buf.extend_from_slice(&chunk);
        let mut out = Vec::new();
        let mut start = 0;
        let mut i = self.scan;
        while i < self.buf.len() {
            let next = match self.buf[i] {
                b'\n' => i + 1,
                // A CR ending the chunk may be the first half of a CRLF.
                b'\r' if i + 1 == self.buf.len() => break,
                b'\r' if self.buf[i + 1] == b'\n' => i + 2,
                b'\r' => i + 1,
                _ => {
                    i += 1;
                    continue;
                }
            };
            // An empty line ends the event.
            if i == self.line {
                let event = self.buf[start..next].to_vec();
                self.emit(&event, &mut out);
                start = next;
                if self.lists.done() {
                    out.extend_from_slice(&self.buf[start..]);
                    start = self.buf.len();
                    i = start;
                    self.line = start;
                    break;
                }
            }
            self.line = next;
            i = next;
        }
        self.buf.drain(..start);
        self.scan = i - start;
        self.line -= start;
        if self.buf.len() > self.limit {
            return Err(GatewayError::TooLarge(self.limit));
        }
        Ok(Bytes::from(out))
    }

    /// The stream ended: what is left (an event without its final empty line, which
    /// clients drop, filtered all the same).
    pub fn finish(&mut self) -> Bytes {
        let rest = std::mem::take(&mut self.buf);
        self.scan = 0;
        self.line = 0;
        let mut out = Vec::new();
        if !rest.is_empty() {
            self.emit(&rest, &mut out);
        }
        Bytes::from(out)
    }

    fn emit(&mut self, event: &[u8], out: &mut Vec<u8>) {
        let first = std::mem::replace(&mut self.first, false);
        match self.rewrite(event, first) {
            Some(rewritten) => out.extend_from_slice(rewritten.as_bytes()),
            None => out.extend_from_slice(event),
        }
    }

    /// The event with its data replaced by the filtered message, or `None` when it is
    /// not a tool list to filter or nothing changed. Read as a client reads it (HTML
    /// standard, event streams): bytes that are not UTF-8 as U+FFFD, and a byte order
    /// mark before the stream's first event dropped; read any stricter, such an event
    /// would go on unfiltered and still be read as a tool list.
    fn rewrite(&mut self, event: &[u8], first: bool) -> Option<String> {
        let text = String::from_utf8_lossy(event);
        let text = match text.strip_prefix('\u{feff}') {
            Some(rest) if first => rest,
            _ => &text,
        };
        let lines = split_lines(text);
        let mut data: Option<String> = None;
        for line in &lines {
            if let Some(value) = data_value(line) {
                match &mut data {
                    Some(data) => {
                        data.push('\n');
                        data.push_str(value);
                    }
                    None => data = Some(value.to_owned()),
                }
            }
        }
        let mut message: Value = serde_json::from_str(&data?).ok()?;
        if !filter_message(&mut message, &mut self.lists, &self.visible) {
            return None;
        }
        // Writing a Value back cannot fail; an empty data line would still hide the
        // list, never show it.
        let json = serde_json::to_string(&message).unwrap_or_default();
        let mut out = String::with_capacity(json.len() + 64);
        let mut written = false;
        for line in lines.iter().filter(|line| !line.is_empty()) {
            if data_value(line).is_some() {
                if !written {
                    out.push_str("data: ");
                    out.push_str(&json);
                    out.push('\n');
                    written = true;
                }
            } else {
                out.push_str(line);
                out.push('\n');
            }
        }
        out.push('\n');
        Some(out)
    }
}

/// The event's lines; CRLF, LF and CR each end one.
fn split_lines(text: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut rest = text;
    while let Some(end) = rest.find(['\n', '\r']) {
        lines.push(&rest[..end]);
        let skip = if rest[end..].starts_with("\r\n") {
            2
        } else {
            1
        };
        rest = &rest[end + skip..];
    }
    if !rest.is_empty() {
        lines.push(rest);
    }
    lines
}

/// The value of a `data` field line (one space after the colon dropped), per the
/// HTML event-stream format.
fn data_value(line: &str) -> Option<&str> {
    if line == "data" {
        return Some("");
    }
    let value = line.strip_prefix("data:")?;
    Some(value.strip_prefix(' ').unwrap_or(value))
}

#[cfg(test)]
mod tests;
