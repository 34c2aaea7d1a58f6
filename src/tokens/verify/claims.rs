//! What a token's payload must say once its signature holds: issuer, subject,
//! audience and expiry present; `exp`, `nbf` and `iat` against the broker's clock with
//! bounded leeway (time passed in, and our own reasons rather than the library's).

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::Value;

use super::super::principal::{CredentialKind, Principal};
use super::super::rejection::Rejection;
use super::Verified;
use crate::clock::UnixSeconds;
use crate::domain::identity::ClaimNames;
use crate::domain::passthrough::scopes_of;
use crate::upstream::jws::{Alg, ClaimsError, JwsError, PublicKey, verified_claims};

/// The payload claims verification looks at.
#[derive(Deserialize)]
pub(super) struct Claims {
    pub(super) iss: Option<String>,
    pub(super) sub: Option<String>,
    pub(super) aud: Option<Value>,
    pub(super) exp: Option<u64>,
    pub(super) nbf: Option<u64>,
    pub(super) iat: Option<u64>,
    pub(super) scope: Option<String>,
    pub(super) scp: Option<Value>,
    pub(super) client_id: Option<String>,
    pub(super) azp: Option<String>,
    pub(super) sid: Option<String>,
    /// Everything else: where `[upstream.claims]` looks for the identity.
    #[serde(flatten)]
    pub(super) rest: serde_json::Map<String, Value>,
}

/// Checks the signature with `key` and reads the claims; the time claims are checked
/// afterwards, against the broker's clock and with our own reasons.
pub(super) fn decode_claims(token: &str, alg: Alg, key: &PublicKey) -> Result<Claims, Rejection> {
    // RFC 7519 §7.2: the claims are UTF-8 JSON. serde skips members it does not read
    // without looking at their text, so that is checked here.
    let payload = token.split('.').nth(1).unwrap_or_default();
    let is_text = URL_SAFE_NO_PAD
        .decode(payload)
        .is_ok_and(|bytes| std::str::from_utf8(&bytes).is_ok());
    if !is_text {
        return Err(Rejection::Malformed);
    }
    verified_claims(token, alg, key).map_err(|e| match e {
        ClaimsError::Jws(JwsError::BadSignature) => Rejection::BadSignature,
        ClaimsError::Jws(JwsError::Malformed) => Rejection::Malformed,
        ClaimsError::Claims => Rejection::MissingClaims,
    })
}

/// The claims of a token whose signature held, checked against `issuer` and, with
/// `leeway`, against the broker's clock at `now`; a broker token's `sid` names its grant.
pub(super) fn check(
    claims: Claims,
    issuer: &str,
    kind: CredentialKind,
    now: UnixSeconds,
    leeway: u64,
    identity: Option<&ClaimNames>,
) -> Result<Verified, Rejection> {
    let identity = identity
        .map(|names| names.identity(&claims.rest))
        .filter(|found| !found.is_empty())
        .map(Arc::new);
    let (Some(iss), Some(sub), Some(aud), Some(exp)) =
        (claims.iss, claims.sub, claims.aud, claims.exp)
    else {
        return Err(Rejection::MissingClaims);
    };
    if iss != issuer {
        return Err(Rejection::WrongIssuer);
    }
    // Saturating: `exp` is whatever the signer wrote, up to u64::MAX.
    if now >= exp.saturating_add(leeway) {
        return Err(Rejection::Expired);
    }
    if claims
        .nbf
        .is_some_and(|nbf| now.saturating_add(leeway) < nbf)
        || claims
            .iat
            .is_some_and(|iat| now.saturating_add(leeway) < iat)
    {
        return Err(Rejection::NotYetValid);
    }
    let audiences = match aud {
        Value::String(one) => vec![one],
        Value::Array(many) => many
            .into_iter()
            .filter_map(|v| v.as_str().map(String::from))
            .collect(),
        _ => return Err(Rejection::MissingClaims),
    };
    let scopes = scopes_of(claims.scope.as_deref(), claims.scp.as_ref());
    Ok(Verified {
        principal: Arc::new(Principal {
            subject: sub,
            scopes,
            client_id: claims.client_id.or(claims.azp),
            kind,
            expires_at: Some(exp),
            grant_id: claims.sid.filter(|_| kind == CredentialKind::BrokerJwt),
            tools: None,
            identity,
        }),
        audiences,
        expires_at: exp,
        not_before: claims.nbf,
        key_until: None,
    })
}
