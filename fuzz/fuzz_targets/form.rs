//! A form body (`application/x-www-form-urlencoded`, the token, revocation,
//! introspection and consent endpoints): `Params::from_form` agrees with the
//! `form_urlencoded` crate on every body whose fields decode to UTF-8, refuses exactly
//! the others, and answers repeats and empty values as RFC 6749 §3.1 says.
#![no_main]

use libfuzzer_sys::fuzz_target;
use token_broker::http::params::Params;
use token_broker_fuzz::form_decode;

fuzz_target!(|body: &[u8]| {
    // Strictly decoded: `None` where a field (or the body) is not UTF-8.
    let strict: Option<Vec<(String, String)>> = std::str::from_utf8(body).ok().and_then(|_| {
        body.split(|b| *b == b'&')
            .filter(|field| !field.is_empty())
            .map(|field| {
                let (name, value) = match field.iter().position(|b| *b == b'=') {
                    Some(at) => (&field[..at], &field[at + 1..]),
                    None => (field, &b""[..]),
                };
                Some((form_decode(name)?, form_decode(value)?))
            })
            .collect()
    });
    let parsed = Params::from_form(body.to_vec());
    let (Some(strict), Ok(params)) = (strict.as_ref(), parsed.as_ref()) else {
        assert_eq!(strict.is_some(), parsed.is_ok(), "refused iff not UTF-8");
        return;
    };
    let reference: Vec<(String, String)> = url::form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    assert_eq!(&reference, strict, "form_urlencoded on valid input");
    for (name, _) in &reference {
        let values: Vec<&str> = reference
            .iter()
            .filter(|(n, v)| n == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(params.all(name), values, "{name}");
        match values.as_slice() {
            [] => assert_eq!(params.one(name).ok(), Some(None)),
            [one] => assert_eq!(params.required(name).ok(), Some(*one)),
            _ => assert!(params.one(name).is_err(), "a repeated `{name}` is refused"),
        }
    }
});
