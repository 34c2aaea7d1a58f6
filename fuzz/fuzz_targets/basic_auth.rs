//! Client credentials (RFC 6749 §2.3.1): an `Authorization: Basic` value is
//! `base64(urlencode(id) ":" urlencode(secret))`. What `client_auth::read` accepts is
//! exactly that reading (an empty id refused); what `basic_header` writes reads back
//! to the same id and secret; Basic together with a form secret is ambiguous.
#![no_main]

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use libfuzzer_sys::fuzz_target;
use token_broker::domain::client_auth::{ClientAuthError, Presented, basic_header, read};
use token_broker_fuzz::{form_decode, parts, text};

/// The credential a Basic header carries, read from the RFC.
fn reference(value: &str) -> Option<Result<(String, String), ()>> {
    let (scheme, rest) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(rest.trim()).map_err(drop);
    Some(decoded.and_then(|bytes| {
        let text = String::from_utf8(bytes).map_err(drop)?;
        let (id, secret) = text.split_once(':').ok_or(())?;
        let id = form_decode(id.as_bytes()).ok_or(())?;
        let secret = form_decode(secret.as_bytes()).ok_or(())?;
        if id.is_empty() {
            Err(())
        } else {
            Ok((id, secret))
        }
    }))
}

fuzz_target!(|data: &[u8]| {
    let pieces = parts(data);
    let Some(value) = pieces.first().copied().and_then(text) else {
        return;
    };
    let form_id = pieces.get(1).copied().and_then(text);
    match (reference(value), read(Some(value), form_id, None)) {
        (None, got) => assert_eq!(
            got,
            match form_id {
                Some(id) => Ok(Presented::Public {
                    client_id: id.to_owned()
                }),
                None => Err(ClientAuthError::Missing),
            }
        ),
        (Some(Err(())), got) => assert_eq!(got, Err(ClientAuthError::MalformedBasic)),
        (Some(Ok((id, secret))), got) => {
            if form_id.is_some_and(|form| form != id) {
                assert_eq!(got, Err(ClientAuthError::Ambiguous));
            } else {
                assert_eq!(
                    got,
                    Ok(Presented::Basic {
                        client_id: id.clone(),
                        secret
                    })
                );
            }
            assert_eq!(
                read(Some(value), Some(&id), Some("secret")),
                Err(ClientAuthError::Ambiguous),
                "Basic and client_secret_post at once"
            );
        }
    }
    // Any id and secret written as a header read back unchanged.
    let (Some(id), Some(secret)) = (form_id, pieces.get(2).copied().and_then(text)) else {
        return;
    };
    if !id.is_empty() {
        assert_eq!(
            read(Some(&basic_header(id, secret)), None, None),
            Ok(Presented::Basic {
                client_id: id.to_owned(),
                secret: secret.to_owned()
            })
        );
    }
});
