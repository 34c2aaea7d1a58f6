//! Decoding one name or value of `application/x-www-form-urlencoded` text (WHATWG URL
//! §5.1): `+` is a space, `%XX` a byte, and a `%` not followed by two hex digits
//! stands for itself. Text without either is returned as it is, uncopied. Used for
//! form bodies and for the two halves of a Basic client credential (RFC 6749 §2.3.1).

use std::borrow::Cow;

/// Decoded bytes that are not UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the form body must be UTF-8")]
pub struct NotUtf8;

/// `raw` decoded; borrowed when it holds no `+` or `%`.
pub fn decode(raw: &str) -> Result<Cow<'_, str>, NotUtf8> {
    let bytes = raw.as_bytes();
    let Some(first) = memchr::memchr2(b'%', b'+', bytes) else {
        return Ok(Cow::Borrowed(raw));
    };
    let mut out = Vec::with_capacity(bytes.len());
    out.extend_from_slice(&bytes[..first]);
    let mut i = first;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match (
                bytes.get(i + 1).and_then(hex),
                bytes.get(i + 2).and_then(hex),
            ) {
                (Some(high), Some(low)) => {
                    out.push(high << 4 | low);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            _ => {
                // A run of plain bytes up to the next escape, copied at once.
                let run = memchr::memchr2(b'%', b'+', &bytes[i..]).unwrap_or(bytes.len() - i);
                out.extend_from_slice(&bytes[i..i + run]);
                i += run;
                continue;
            }
        }
        i += 1;
    }
    String::from_utf8(out).map(Cow::Owned).map_err(|_| NotUtf8)
}

fn hex(digit: &u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_like_form_urlencoded_and_borrows_plain_text() {
        for raw in [
            "plain.token-with_chars~",
            "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange",
            "a+b+%2B+c",
            "bad%zz%4",
            "tail%",
            "%C3%A9t%C3%A9 and é",
            "",
        ] {
            let reference: String = url::form_urlencoded::parse(format!("x={raw}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default();
            assert_eq!(decode(raw).unwrap(), reference, "{raw}");
        }
        assert!(matches!(decode("abc.def").unwrap(), Cow::Borrowed(_)));
    }

    #[test]
    fn bytes_that_decode_to_no_text_are_refused() {
        assert_eq!(decode("%ff"), Err(NotUtf8));
        assert_eq!(decode("%C3"), Err(NotUtf8));
    }
}
