//! The broker's access tokens (RFC 9068 JWT profile): `iss` the broker, `aud` the
//! resource, `sub`, `scope`, `client_id`, a random `jti`, and `sid` naming the grant
//! so revoking the grant stops the token.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use serde::{Deserialize, Serialize};

use super::signing::{SigningError, SigningKeys};
use crate::clock::UnixSeconds;
use crate::domain::scope::Scopes;

/// The claims of an access token the broker issues.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessTokenClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub scope: String,
    pub client_id: String,
    pub jti: String,
    pub sid: String,
    pub iat: UnixSeconds,
    pub nbf: UnixSeconds,
    pub exp: UnixSeconds,
}

/// What a new access token says.
#[derive(Debug, Clone)]
pub struct Minting<'a> {
    pub issuer: &'a str,
    pub subject: &'a str,
    pub client_id: &'a str,
    pub audience: &'a str,
    pub scopes: &'a Scopes,
    pub grant_id: &'a str,
    pub now: UnixSeconds,
    pub ttl: Duration,
}

/// Signs a new access token; returns it with its expiry.
pub fn mint(keys: &SigningKeys, m: &Minting<'_>) -> Result<(String, UnixSeconds), SigningError> {
    let mut jti = [0u8; 16];
    rand::rng().fill_bytes(&mut jti);
    let exp = m.now + m.ttl.as_secs();
    let claims = AccessTokenClaims {
        iss: m.issuer.to_owned(),
        sub: m.subject.to_owned(),
        aud: m.audience.to_owned(),
        scope: m.scopes.to_string(),
        client_id: m.client_id.to_owned(),
        jti: URL_SAFE_NO_PAD.encode(jti),
        sid: m.grant_id.to_owned(),
        iat: m.now,
        nbf: m.now,
        exp,
    };
    Ok((keys.sign("at+jwt", &claims, m.now)?, exp))
}
