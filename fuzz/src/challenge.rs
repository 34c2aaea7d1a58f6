//! A `WWW-Authenticate` challenge read back (RFC 9110 §11.2, §5.6.4): `scheme` then
//! `name=value` pairs, a value a token or a quoted-string.

/// tchar (RFC 9110 §5.6.2).
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Whether `value` may stand in a header field at all: visible ASCII, SP and HTAB
/// (what the broker writes is ASCII; obs-text is never needed).
pub fn is_field_value(value: &str) -> bool {
    value
        .bytes()
        .all(|b| b == b' ' || b == b'\t' || (0x21..=0x7e).contains(&b))
}

/// One challenge: its scheme and parameters in order; `None` when it is not one.
pub fn parse(header: &str) -> Option<(String, Vec<(String, String)>)> {
    let bytes = header.as_bytes();
    let mut i = 0;
    let token = |i: &mut usize| {
        let start = *i;
        while *i < bytes.len() && is_tchar(bytes[*i]) {
            *i += 1;
        }
        (start < *i).then(|| header[start..*i].to_owned())
    };
    let skip_ows = |i: &mut usize| {
        while *i < bytes.len() && (bytes[*i] == b' ' || bytes[*i] == b'\t') {
            *i += 1;
        }
    };
    let scheme = token(&mut i)?;
    let mut params = Vec::new();
    if i == bytes.len() {
        return Some((scheme, params));
    }
    if bytes[i] != b' ' {
        return None;
    }
    skip_ows(&mut i);
    loop {
        let name = token(&mut i)?;
        skip_ows(&mut i);
        if bytes.get(i) != Some(&b'=') {
            return None;
        }
        i += 1;
        skip_ows(&mut i);
        let value = if bytes.get(i) == Some(&b'"') {
            i += 1;
            let mut value = String::new();
            loop {
                match bytes.get(i)? {
                    b'"' => {
                        i += 1;
                        break;
                    }
                    b'\\' => {
                        value.push(char::from(*bytes.get(i + 1)?));
                        i += 2;
                    }
                    b => {
                        value.push(char::from(*b));
                        i += 1;
                    }
                }
            }
            value
        } else {
            token(&mut i)?
        };
        params.push((name, value));
        skip_ows(&mut i);
        if i == bytes.len() {
            return Some((scheme, params));
        }
        if bytes[i] != b',' {
            return None;
        }
        i += 1;
        skip_ows(&mut i);
    }
}
