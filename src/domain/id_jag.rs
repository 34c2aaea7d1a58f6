//! The Identity Assertion JWT Authorization Grant's claims, judged once its signature
//! held (draft-ietf-oauth-identity-assertion-authz-grant §3.1 and §4.4.1; the MCP
//! extension "Enterprise-Managed Authorization" §5.1 and §7): `aud` exactly this
//! authorization server, `exp`/`iat` with the leeway and a bounded lifetime, the
//! `client_id` the authenticated client, `resource` one of the broker's, and the
//! scopes granted the intersection of what was asked, what the grant carries and what
//! its issuer may grant. Time is passed in; every refusal is `invalid_grant`.

use serde::Deserialize;
use serde_json::Value;

use crate::domain::resource::same_resource;
use crate::domain::scope::Scopes;

/// The `typ` an ID-JAG's header must carry (draft §3.1, RFC 8725 §3.11).
pub const ID_JAG_TYPE: &str = "oauth-id-jag+jwt";
/// What the authorization server metadata advertises (draft §7.2, the extension §6).
pub const GRANT_PROFILE: &str = "urn:ietf:params:oauth:grant-profile:id-jag";
/// The token type an IdP issues an ID-JAG as (RFC 8693 `requested_token_type`).
pub const TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:id-jag";
/// The grant it is presented with (RFC 7523 §2.1).
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// Whether a header's `typ` names an ID-JAG (media types compare case-insensitively;
/// the `application/` prefix may be written out, RFC 7515 §4.1.9).
pub fn is_id_jag_type(typ: Option<&str>) -> bool {
    typ.is_some_and(|t| {
        t.eq_ignore_ascii_case(ID_JAG_TYPE)
            || t.eq_ignore_ascii_case(&format!("application/{ID_JAG_TYPE}"))
    })
}

/// The claims an ID-JAG is judged by.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct Claims {
    pub iss: Option<String>,
    pub sub: Option<String>,
    pub aud: Option<Value>,
    pub client_id: Option<String>,
    pub jti: Option<String>,
    pub exp: Option<u64>,
    pub iat: Option<u64>,
    pub nbf: Option<u64>,
    pub resource: Option<Value>,
    pub scope: Option<String>,
    pub email: Option<String>,
}

/// Which claim names the user, and what goes before it in the broker's subject.
#[derive(Debug, Clone, Copy)]
pub enum SubjectFrom<'a> {
    Sub { prefix: &'a str },
    Email { prefix: &'a str },
}

/// A resource the broker protects, as the grant's `resource` is matched against.
pub struct KnownResource<'a> {
    pub uri: &'a str,
    /// Its `scopes_supported` (empty: not narrowed by the resource).
    pub scopes_supported: &'a [String],
}

/// What the claims are judged against.
pub struct Expected<'a> {
    /// The broker's issuer identifier: `aud` must be exactly it.
    pub audience: &'a str,
    /// The authenticated client.
    pub client_id: &'a str,
    pub resources: &'a [KnownResource<'a>],
    pub subject: SubjectFrom<'a>,
    /// The most the issuer may grant.
    pub max_scopes: &'a Scopes,
    /// The request's `scope`, when it had one.
    pub requested: Option<&'a Scopes>,
    pub now: u64,
    pub leeway: u64,
    /// The longest `exp - iat` accepted.
    pub max_lifetime: u64,
}

/// An ID-JAG the broker honours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The broker's subject for the user.
    pub subject: String,
    /// The broker resource the access token is bound to.
    pub resource: String,
    pub scopes: Scopes,
    /// The grant's `jti` and `exp`: it may not be presented again before then.
    pub jti: String,
    pub exp: u64,
}

/// Why an ID-JAG is refused (each `invalid_grant`, RFC 6749 §5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    MissingClaims,
    WrongAudience,
    Expired,
    NotYetValid,
    TooLong,
    WrongClient,
    UnknownResource,
    NoSubject,
    NoScope,
}

impl Refusal {
    /// The `error_description`.
    pub fn describe(self) -> &'static str {
        match self {
            Self::MissingClaims => {
                "the ID-JAG lacks a required claim (iss, sub, aud, client_id, jti, exp, iat)"
            }
            Self::WrongAudience => {
                "the ID-JAG's aud is not exactly this authorization server's issuer"
            }
            Self::Expired => "the ID-JAG has expired",
            Self::NotYetValid => "the ID-JAG is not valid yet",
            Self::TooLong => "the ID-JAG lives longer than its issuer's grants may",
            Self::WrongClient => "the ID-JAG's client_id does not name the authenticated client",
            Self::UnknownResource => {
                "the ID-JAG's resource is not one this authorization server protects"
            }
            Self::NoSubject => "the ID-JAG has no claim to map to a subject",
            Self::NoScope => "nothing the ID-JAG grants may be granted here",
        }
    }
}

/// Judges the claims of an ID-JAG whose signature held.
pub fn judge(claims: &Claims, expected: &Expected<'_>) -> Result<Accepted, Refusal> {
    let (Some(_), Some(sub), Some(aud), Some(client_id), Some(jti), Some(exp), Some(iat)) = (
        &claims.iss,
        &claims.sub,
        &claims.aud,
        &claims.client_id,
        &claims.jti,
        claims.exp,
        claims.iat,
    ) else {
        return Err(Refusal::MissingClaims);
    };
    if jti.is_empty() || sub.is_empty() {
        return Err(Refusal::MissingClaims);
    }
    // Draft §4.4.1: a string, or an array of exactly one element, naming this server.
    let audience = match aud {
        Value::String(one) => Some(one.as_str()),
        Value::Array(many) if many.len() == 1 => many.first().and_then(Value::as_str),
        _ => None,
    };
    if audience != Some(expected.audience) {
        return Err(Refusal::WrongAudience);
    }
    if expected.now >= exp.saturating_add(expected.leeway) {
        return Err(Refusal::Expired);
    }
    if expected.now.saturating_add(expected.leeway) < iat
        || claims
            .nbf
            .is_some_and(|nbf| expected.now.saturating_add(expected.leeway) < nbf)
    {
        return Err(Refusal::NotYetValid);
    }
    if exp.saturating_sub(iat) > expected.max_lifetime || exp < iat {
        return Err(Refusal::TooLong);
    }
    if client_id != expected.client_id {
        return Err(Refusal::WrongClient);
    }
    let resource = resource(claims.resource.as_ref(), expected.resources)?;
    let subject = match expected.subject {
        SubjectFrom::Sub { prefix } => format!("{prefix}{sub}"),
        SubjectFrom::Email { prefix } => match claims.email.as_deref() {
            Some(email) if !email.is_empty() => format!("{prefix}{email}"),
            _ => return Err(Refusal::NoSubject),
        },
    };
    let carried = claims
        .scope
        .as_deref()
        .and_then(|s| Scopes::parse(s).ok())
        .unwrap_or_default();
    let mut scopes = carried.intersection(expected.max_scopes);
    if let Some(requested) = expected.requested {
        scopes = scopes.intersection(requested);
    }
    if !resource.scopes_supported.is_empty() {
        scopes = scopes.intersection(&Scopes::of(resource.scopes_supported.iter().cloned()));
    }
    if scopes.is_empty() {
        return Err(Refusal::NoScope);
    }
    Ok(Accepted {
        subject,
        resource: resource.uri.to_owned(),
        scopes,
        jti: jti.clone(),
        exp,
    })
}

/// The one broker resource the grant's `resource` names (a string, or an array of
/// one). The access token must be bound to it (the extension §5.1), so a grant
/// naming none is refused.
fn resource<'r>(
    claim: Option<&Value>,
    known: &'r [KnownResource<'r>],
) -> Result<&'r KnownResource<'r>, Refusal> {
    let named = match claim {
        Some(Value::String(one)) => one.as_str(),
        Some(Value::Array(many)) if many.len() == 1 => many
            .first()
            .and_then(Value::as_str)
            .ok_or(Refusal::UnknownResource)?,
        _ => return Err(Refusal::UnknownResource),
    };
    known
        .iter()
        .find(|r| same_resource(r.uri, named))
        .ok_or(Refusal::UnknownResource)
}

#[cfg(test)]
mod tests;
