//! A login session packed into one allocation while it waits in memory.
//!
//! A broker holds up to `sessions.max_sessions` (100 000) pending logins. As a
//! `LoginSession` each one was a 280-byte table slot plus eight separate strings:
//! about 1 KB a pending login (the scale bench, benches/README.md). Packed, a session is
//! its expiry and one exact-size buffer of length-prefixed fields; steps (consent,
//! callback, the operator's listing) unpack it, which they do once per login.

use crate::clock::UnixSeconds;
use crate::domain::authorize::Authorization;
use crate::domain::scope::Scopes;
use crate::store::StoreError;
use crate::store::login_state::{LoginSession, Remember, UpstreamLeg};

/// A field's length, or `ABSENT` for a `None`.
const ABSENT: u32 = u32::MAX;

/// A [`LoginSession`] packed: `expires_at` stays outside so that expiry checks and
/// sweeps read no buffer.
pub(super) struct Packed {
    pub expires_at: UnixSeconds,
    fields: Box<[u8]>,
}

impl Packed {
    pub fn pack(session: &LoginSession) -> Result<Self, StoreError> {
        let r = &session.request;
        let leg = session.leg.as_ref();
        let remember = leg.map(|l| l.remember.encode());
        let scopes = r.scopes.to_string();
        let fields: [Option<&str>; 11] = [
            Some(&r.client_id),
            Some(&r.redirect_uri),
            Some(&r.code_challenge),
            r.state.as_deref(),
            Some(&scopes),
            r.resource.as_deref(),
            Some(&session.csrf),
            leg.map(|l| l.state.as_str()),
            leg.map(|l| l.verifier.as_str()),
            leg.map(|l| l.nonce.as_str()),
            remember.as_deref(),
        ];
        let size = fields.iter().map(|f| 4 + f.map_or(0, str::len)).sum();
        let mut out = Vec::with_capacity(size);
        for field in fields {
            let len = match field {
                Some(text) => u32::try_from(text.len())
                    .ok()
                    .filter(|&n| n != ABSENT)
                    .ok_or_else(|| StoreError::Unavailable("session field too long".into()))?,
                None => ABSENT,
            };
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(field.unwrap_or("").as_bytes());
        }
        Ok(Self {
            expires_at: session.expires_at,
            fields: out.into_boxed_slice(),
        })
    }

    pub fn unpack(&self) -> Result<LoginSession, StoreError> {
        let mut reader = Reader(&self.fields);
        let client_id = reader.text()?;
        let redirect_uri = reader.text()?;
        let code_challenge = reader.text()?;
        let state = reader.optional()?;
        let scopes = Scopes::parse(&reader.text()?).map_err(StoreError::Corrupt)?;
        let resource = reader.optional()?;
        let csrf = reader.text()?;
        let leg = match (
            reader.optional()?,
            reader.optional()?,
            reader.optional()?,
            reader.optional()?,
        ) {
            (Some(state), Some(verifier), Some(nonce), Some(remember)) => Some(UpstreamLeg {
                state,
                verifier,
                nonce,
                remember: Remember::decode(&remember),
            }),
            (None, None, None, None) => None,
            _ => return Err(corrupt()),
        };
        if !reader.0.is_empty() {
            return Err(corrupt());
        }
        Ok(LoginSession {
            request: Authorization {
                client_id,
                redirect_uri,
                code_challenge,
                state,
                scopes,
                resource,
            },
            csrf,
            expires_at: self.expires_at,
            leg,
        })
    }

    /// The CSRF token, read without unpacking the rest: every step checks it first.
    pub fn csrf(&self) -> Result<&[u8], StoreError> {
        let mut reader = Reader(&self.fields);
        for _ in 0..6 {
            reader.field()?;
        }
        reader.field()?.ok_or_else(corrupt)
    }
}

fn corrupt() -> StoreError {
    StoreError::Corrupt("packed login session".into())
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn field(&mut self) -> Result<Option<&'a [u8]>, StoreError> {
        let (len, rest) = self.0.split_first_chunk::<4>().ok_or_else(corrupt)?;
        let len = u32::from_le_bytes(*len);
        if len == ABSENT {
            self.0 = rest;
            return Ok(None);
        }
        let len = usize::try_from(len).map_err(|_| corrupt())?;
        let (text, rest) = rest.split_at_checked(len).ok_or_else(corrupt)?;
        self.0 = rest;
        Ok(Some(text))
    }

    fn optional(&mut self) -> Result<Option<String>, StoreError> {
        self.field()?
            .map(|bytes| String::from_utf8(bytes.to_vec()).map_err(|_| corrupt()))
            .transpose()
    }

    fn text(&mut self) -> Result<String, StoreError> {
        self.optional()?.ok_or_else(corrupt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(leg: Option<UpstreamLeg>, state: Option<&str>) -> LoginSession {
        LoginSession {
            request: Authorization {
                client_id: "https://client.example/meta.json".into(),
                redirect_uri: "http://127.0.0.1:3334/callback?x=ü".into(),
                code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into(),
                state: state.map(Into::into),
                scopes: Scopes::parse("notes:read openid").unwrap(),
                resource: None,
            },
            csrf: "csrf-token".into(),
            expires_at: 1_700_000_000,
            leg,
        }
    }

    #[test]
    fn a_session_unpacks_as_it_was_packed_with_and_without_its_leg() {
        let leg = UpstreamLeg {
            state: "s".into(),
            verifier: "v".into(),
            nonce: String::new(),
            remember: Remember::For("digest".into()),
        };
        for original in [
            session(None, None),
            session(None, Some("")),
            session(Some(leg.clone()), Some("a\nstate")),
            session(
                Some(UpstreamLeg {
                    remember: Remember::Asked,
                    ..leg
                }),
                None,
            ),
        ] {
            let packed = Packed::pack(&original).unwrap();
            assert_eq!(packed.unpack().unwrap(), original);
            assert_eq!(packed.csrf().unwrap(), b"csrf-token");
        }
    }

    #[test]
    fn a_damaged_buffer_is_corrupt_not_a_panic() {
        let packed = Packed::pack(&session(None, None)).unwrap();
        for cut in 0..packed.fields.len() {
            let damaged = Packed {
                expires_at: 0,
                fields: packed.fields[..cut].into(),
            };
            assert!(damaged.unpack().is_err());
        }
    }
}
