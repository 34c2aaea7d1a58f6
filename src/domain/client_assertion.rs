//! A client assertion's claims (`private_key_jwt`: RFC 7523 §3, as used for client
//! authentication by §2.2), judged once its signature held: `iss` and `sub` both the
//! client, `aud` naming this authorization server (its issuer identifier or its token
//! endpoint), `exp` present and not past, a bounded lifetime, `nbf`/`iat` not in the
//! future, and a `jti` to be spent once. Time is passed in; every refusal is
//! `invalid_client`.

use serde::Deserialize;
use serde_json::Value;

/// The longest an assertion may still be valid for when presented (`exp - now`), and
/// the longest `exp - iat`: clients sign them for a minute or five (the MCP SDK: 300 s),
/// and a spent `jti` is remembered for as long as its assertion could be accepted.
pub const MAX_LIFETIME: u64 = 600;

/// The claims a client assertion is judged by.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct Claims {
    pub iss: Option<String>,
    pub sub: Option<String>,
    pub aud: Option<Value>,
    pub jti: Option<String>,
    pub exp: Option<u64>,
    pub iat: Option<u64>,
    pub nbf: Option<u64>,
}

/// What the claims are judged against.
pub struct Expected<'a> {
    /// The client the assertion must be from (`iss` and `sub`).
    pub client_id: &'a str,
    /// What `aud` may name: the broker's issuer identifier and its token endpoint
    /// (RFC 7523 §3 point 3).
    pub audiences: &'a [&'a str],
    pub now: u64,
    pub leeway: u64,
}

/// An assertion whose claims held: its `jti`, to be spent until `spend_until`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub jti: String,
    /// `exp` plus the leeway: past it the assertion is refused anyway, so its `jti`
    /// need not be remembered longer.
    pub spend_until: u64,
}

/// Why the claims are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    WrongIssuer,
    WrongSubject,
    WrongAudience,
    NoExpiry,
    Expired,
    TooLong,
    NotYetValid,
    NoJti,
}

impl Refusal {
    /// The `error_description`.
    pub fn describe(self) -> &'static str {
        match self {
            Self::WrongIssuer => "the client assertion's iss is not the client",
            Self::WrongSubject => "the client assertion's sub is not the client",
            Self::WrongAudience => {
                "the client assertion's aud names neither this issuer nor its token endpoint"
            }
            Self::NoExpiry => "the client assertion has no exp",
            Self::Expired => "the client assertion has expired",
            Self::TooLong => "the client assertion is valid for too long (at most 10 minutes)",
            Self::NotYetValid => "the client assertion is not valid yet",
            Self::NoJti => "the client assertion has no jti",
        }
    }
}

/// Judges `claims`.
pub fn judge(claims: &Claims, expected: &Expected<'_>) -> Result<Accepted, Refusal> {
    if claims.iss.as_deref() != Some(expected.client_id) {
        return Err(Refusal::WrongIssuer);
    }
    if claims.sub.as_deref() != Some(expected.client_id) {
        return Err(Refusal::WrongSubject);
    }
    let names = |aud: &str| expected.audiences.contains(&aud);
    let audience_ok = match &claims.aud {
        Some(Value::String(aud)) => names(aud),
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).any(names),
        _ => false,
    };
    if !audience_ok {
        return Err(Refusal::WrongAudience);
    }
    let (now, leeway) = (expected.now, expected.leeway);
    let exp = claims.exp.ok_or(Refusal::NoExpiry)?;
    if exp.saturating_add(leeway) <= now {
        return Err(Refusal::Expired);
    }
    if exp > now.saturating_add(MAX_LIFETIME).saturating_add(leeway) {
        return Err(Refusal::TooLong);
    }
    if let Some(iat) = claims.iat {
        if iat > now.saturating_add(leeway) {
            return Err(Refusal::NotYetValid);
        }
        if exp.saturating_sub(iat) > MAX_LIFETIME {
            return Err(Refusal::TooLong);
        }
    }
    if claims
        .nbf
        .is_some_and(|nbf| nbf > now.saturating_add(leeway))
    {
        return Err(Refusal::NotYetValid);
    }
    let jti = claims
        .jti
        .as_deref()
        .filter(|jti| !jti.is_empty())
        .ok_or(Refusal::NoJti)?;
    Ok(Accepted {
        jti: jti.to_owned(),
        spend_until: exp.saturating_add(leeway),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const NOW: u64 = 1_000_000;

    fn claims() -> Claims {
        Claims {
            iss: Some("bot".into()),
            sub: Some("bot".into()),
            aud: Some(json!("https://broker.example")),
            jti: Some("j1".into()),
            exp: Some(NOW + 60),
            iat: Some(NOW),
            nbf: None,
        }
    }

    fn judged(claims: &Claims) -> Result<Accepted, Refusal> {
        judge(
            claims,
            &Expected {
                client_id: "bot",
                audiences: &[
                    "https://broker.example",
                    "https://broker.example/oauth/token",
                ],
                now: NOW,
                leeway: 30,
            },
        )
    }

    #[test]
    fn a_fresh_assertion_from_the_client_for_this_server_is_accepted() {
        assert_eq!(
            judged(&claims()),
            Ok(Accepted {
                jti: "j1".into(),
                spend_until: NOW + 90
            })
        );
        let mut to_endpoint = claims();
        to_endpoint.aud = Some(json!(["other", "https://broker.example/oauth/token"]));
        assert!(judged(&to_endpoint).is_ok());
    }

    #[test]
    fn each_claim_rule_refuses_on_its_own() {
        type Change = fn(&mut Claims);
        let cases: Vec<(Change, Refusal)> = vec![
            (|c| c.iss = Some("other".into()), Refusal::WrongIssuer),
            (|c| c.sub = None, Refusal::WrongSubject),
            (
                |c| c.aud = Some(json!("https://broker.example/")),
                Refusal::WrongAudience,
            ),
            (|c| c.aud = None, Refusal::WrongAudience),
            (|c| c.exp = None, Refusal::NoExpiry),
            (|c| c.exp = Some(NOW - 31), Refusal::Expired),
            (|c| c.exp = Some(NOW + 700), Refusal::TooLong),
            (|c| c.iat = Some(NOW - 3600), Refusal::TooLong),
            (|c| c.iat = Some(NOW + 31), Refusal::NotYetValid),
            (|c| c.nbf = Some(NOW + 31), Refusal::NotYetValid),
            (|c| c.jti = None, Refusal::NoJti),
            (|c| c.jti = Some(String::new()), Refusal::NoJti),
        ];
        for (change, refusal) in cases {
            let mut c = claims();
            change(&mut c);
            assert_eq!(judged(&c), Err(refusal), "{c:?}");
        }
    }
}
