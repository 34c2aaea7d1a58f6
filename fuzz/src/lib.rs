//! What the fuzz targets share: splitting one input into several, and independent
//! readings (the spec's, written here from the RFC text, not from the broker's code)
//! that the broker's parsers are compared with.

pub mod challenge;
pub mod event_stream;

/// The input's parts, separated by NUL bytes (which none of the texts fuzzed here may
/// contain unescaped, so seeds stay readable).
pub fn parts(data: &[u8]) -> Vec<&[u8]> {
    data.split(|b| *b == 0).collect()
}

/// A part as text; `None` when it is not UTF-8 (the HTTP layer never hands the
/// broker's parsers anything else).
pub fn text(part: &[u8]) -> Option<&str> {
    std::str::from_utf8(part).ok()
}

/// One name or value of a form body decoded strictly (WHATWG URL §5.1: `+` is a space,
/// `%XX` a byte, a lone `%` itself); `None` when the bytes are not UTF-8.
pub fn form_decode(raw: &[u8]) -> Option<String> {
    let spaced: Vec<u8> = raw
        .iter()
        .map(|b| if *b == b'+' { b' ' } else { *b })
        .collect();
    let bytes: Vec<u8> = percent_encoding::percent_decode(&spaced).collect();
    String::from_utf8(bytes).ok()
}
