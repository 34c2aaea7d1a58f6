//! The broker's access tokens (RFC 9068 JWT profile): `iss` the broker, `aud` the
//! resource, `sub`, `scope`, `client_id`, a random `jti`, and `sid` naming the grant
//! so revoking the grant stops the token; with `tokens.identity_claims`, the user's
//! `email`, `preferred_username` and `groups`.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::signing::{SigningError, SigningKeys};
use crate::clock::UnixSeconds;
use crate::domain::identity::Identity;
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
    /// With `tokens.identity_claims`: the user's verified email, preferred username
    /// and groups as the grant holds them (bounded: `domain::identity`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<String>>,
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
    /// The identity to state (`tokens.identity_claims`), if any.
    pub identity: Option<&'a Identity>,
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
        email: m.identity.and_then(|i| i.email.clone()),
        preferred_username: m.identity.and_then(|i| i.username.clone()),
        groups: m.identity.and_then(|i| i.groups.clone()),
    };
    Ok((keys.sign("at+jwt", &claims, m.now)?, exp))
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{Validation, decode, decode_header};

    use super::*;
    use crate::config::{TokenMode, TokensConfig};

    fn keys() -> SigningKeys {
        let config = TokensConfig {
            mode: TokenMode::Issue,
            access_token_ttl: Duration::from_secs(900),
            algorithm: "EdDSA".to_owned(),
            key_file: None,
            key_grace: Duration::from_secs(3_600),
            identity_claims: false,
        };
        SigningKeys::load_or_create(&config, 0).unwrap()
    }

    fn minting<'a>(scopes: &'a Scopes) -> Minting<'a> {
        Minting {
            issuer: "https://broker.example",
            subject: "alice",
            client_id: "client-1",
            audience: "https://mcp.example/mcp",
            scopes,
            grant_id: "grant-1",
            now: 1_000,
            ttl: Duration::from_secs(900),
            identity: None,
        }
    }

    fn claims_of(keys: &SigningKeys, token: &str) -> AccessTokenClaims {
        let kid = decode_header(token).unwrap().kid.unwrap();
        let set = keys.snapshot();
        let (key, _) = set.find(&kid, 1_000).unwrap();
        let mut validation = Validation::new(key.alg.algorithm());
        validation.validate_exp = false;
        validation.set_audience(&["https://mcp.example/mcp"]);
        decode::<AccessTokenClaims>(token, key.decoding(), &validation)
            .unwrap()
            .claims
    }

    #[test]
    fn a_minted_token_says_who_for_what_and_until_when() {
        let keys = keys();
        let scopes = Scopes::of(["notes:read", "notes:write"]);
        let (token, expires_at) = mint(&keys, &minting(&scopes)).unwrap();
        assert_eq!(expires_at, 1_900);
        let header = decode_header(&token).unwrap();
        assert_eq!(header.typ.as_deref(), Some("at+jwt"), "RFC 9068 §2.1");
        assert_eq!(header.alg, jsonwebtoken::Algorithm::EdDSA);
        let claims = claims_of(&keys, &token);
        assert_eq!(claims.iss, "https://broker.example");
        assert_eq!(claims.sub, "alice");
        assert_eq!(claims.aud, "https://mcp.example/mcp");
        assert_eq!(claims.scope, scopes.to_string());
        assert_eq!(claims.client_id, "client-1");
        assert_eq!(claims.sid, "grant-1");
        assert_eq!((claims.iat, claims.nbf, claims.exp), (1_000, 1_000, 1_900));
        assert!(claims.jti.len() >= 22, "128 random bits");
    }

    #[test]
    fn every_token_gets_its_own_jti() {
        let keys = keys();
        let scopes = Scopes::of(["notes:read"]);
        let (a, _) = mint(&keys, &minting(&scopes)).unwrap();
        let (b, _) = mint(&keys, &minting(&scopes)).unwrap();
        assert_ne!(claims_of(&keys, &a).jti, claims_of(&keys, &b).jti);
    }
}
