//! The IdP's state and its token machinery: clients, codes, refresh-token families,
//! revocations, and minting/verifying JWTs with the key ring. Kept in memory behind
//! one mutex that is never held across an `.await`.

use std::sync::{Mutex, MutexGuard};

use jsonwebtoken::{Validation, decode, decode_header, encode};
use rand::Rng;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::config::{DevIdpConfig, User};
use super::error::IdpError;
use super::faults::Faults;
use super::keys::{KeyRing, b64url};
pub use super::records::{AccessClaims, AccessGrant, Client, Code, Issued, Refresh, Store};
use crate::clock::{Clock, UnixSeconds};
use crate::domain::client_auth::Presented;
use crate::domain::scope::Scopes;

/// Everything the IdP's handlers share.
pub struct Idp {
    pub issuer: String,
    pub config: DevIdpConfig,
    pub clock: Clock,
    pub keys: KeyRing,
    pub faults: Faults,
    store: Mutex<Store>,
}

/// 256 bits from the OS, base64url.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    b64url(&bytes)
}

impl Idp {
    pub fn new(
        issuer: String,
        config: DevIdpConfig,
        clock: Clock,
        keys: KeyRing,
        faults: Faults,
    ) -> Self {
        let clients = config
            .clients
            .iter()
            .map(|spec| (spec.client_id.clone(), Client::from_spec(spec)))
            .collect();
        Self {
            issuer,
            config,
            clock,
            keys,
            faults,
            store: Mutex::new(Store {
                clients,
                ..Store::default()
            }),
        }
    }

    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }

    pub fn store(&self) -> Result<MutexGuard<'_, Store>, IdpError> {
        self.store
            .lock()
            .map_err(|_| IdpError::Internal("dev IdP store poisoned".to_owned()))
    }

    pub fn user(&self, sub: &str) -> Option<&User> {
        self.config.users.iter().find(|u| u.sub == sub)
    }

    /// A user's groups now: as `POST /_dev/groups` last set them, else configured.
    pub fn groups(&self, sub: &str) -> Vec<String> {
        let set = self
            .store
            .lock()
            .ok()
            .and_then(|store| store.groups.get(sub).cloned());
        set.or_else(|| self.user(sub).map(|u| u.groups.clone()))
            .unwrap_or_default()
    }

    pub fn supported(&self) -> Scopes {
        Scopes::of(self.config.scopes_supported.iter().cloned())
    }

    /// Signs a new access token; returns it with its claims.
    pub fn mint_access(&self, grant: AccessGrant<'_>) -> Result<(String, AccessClaims), IdpError> {
        let now = self.clock.unix();
        let aud = match grant.audiences {
            [one] => Value::String(one.clone()),
            many => Value::Array(many.iter().cloned().map(Value::String).collect()),
        };
        let scope_text = (!grant.scopes.is_empty()).then(|| grant.scopes.to_string());
        let claims = AccessClaims {
            iss: self.issuer.clone(),
            sub: grant.sub.to_owned(),
            aud,
            exp: now + self.config.access_token_ttl.as_secs(),
            iat: now,
            nbf: now,
            jti: random_token(),
            client_id: grant.client_id.to_owned(),
            scope: if grant.entra {
                None
            } else {
                scope_text.clone()
            },
            scp: if grant.entra { scope_text } else { None },
            act: grant.act,
        };
        if self.config.opaque_access_tokens {
            let token = random_token();
            let mut store = self.store()?;
            store.opaque.retain(|_, c| c.exp > now);
            store.opaque.insert(token.clone(), claims.clone());
            return Ok((token, claims));
        }
        let token = self.sign("at+jwt", &claims)?;
        Ok((token, claims))
    }

    /// Signs an OpenID Connect ID token for `sub`.
    pub fn mint_id_token(
        &self,
        sub: &str,
        client_id: &str,
        nonce: Option<&str>,
        access_token: &str,
    ) -> Result<String, IdpError> {
        let now = self.clock.unix();
        let user = self.user(sub);
        // at_hash: left half of the SHA-256 of the access token (OIDC Core §3.1.3.6).
        let digest = Sha256::digest(access_token.as_bytes());
        let mut claims = serde_json::json!({
            "iss": self.issuer,
            "sub": sub,
            "aud": client_id,
            "azp": client_id,
            "exp": now + self.config.access_token_ttl.as_secs(),
            "iat": now,
            "auth_time": now,
            "nonce": nonce,
            "at_hash": b64url(&digest[..16]),
            "name": user.map(|u| u.name.clone()),
            "email": user.map(|u| u.email.clone()),
            "email_verified": user.map(|_| true),
            "preferred_username": user.map(|u| u.sub.clone()),
            "groups": user.map(|_| self.groups(sub)),
        });
        // Absent, not null: a request without a nonce gets no `nonce` claim (OIDC Core §2).
        if let Value::Object(map) = &mut claims {
            map.retain(|_, v| !v.is_null());
        }
        self.sign("JWT", &claims)
    }

    /// Signs any claims with the current key (tests use it to forge edge cases).
    pub fn sign<T: Serialize>(&self, typ: &str, claims: &T) -> Result<String, IdpError> {
        let key = self
            .keys
            .current()
            .ok_or_else(|| IdpError::Internal("no signing key".to_owned()))?;
        encode(&key.header(typ), claims, key.encoding())
            .map_err(|e| IdpError::Internal(format!("signing failed: {e}")))
    }

    /// Verifies an access token this IdP issued: signature by a published key, issuer,
    /// `exp`/`nbf` against the IdP's clock, not revoked. `None` when any check fails.
    pub fn verify_access(&self, token: &str) -> Option<AccessClaims> {
        let now = self.clock.unix();
        let opaque = {
            let store = self.store.lock().ok()?;
            store
                .opaque
                .get(token)
                .map(|claims| (claims.clone(), store.revoked.contains_key(&claims.jti)))
        };
        if let Some((claims, revoked)) = opaque {
            return (now < claims.exp && !revoked).then_some(claims);
        }
        let header = decode_header(token).ok()?;
        if header.typ.as_deref() != Some("at+jwt") {
            return None;
        }
        let key = self.keys.find(header.kid.as_deref()?, now)?;
        if header.alg != key.alg.algorithm() {
            return None;
        }
        let mut validation = Validation::new(key.alg.algorithm());
        // Time is checked below against the IdP's own clock, which tests move.
        validation.validate_exp = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        validation.set_issuer(&[&self.issuer]);
        let claims = decode::<AccessClaims>(token, key.decoding(), &validation)
            .ok()?
            .claims;
        if now >= claims.exp || now < claims.nbf {
            return None;
        }
        let revoked = self.store.lock().ok()?.revoked.contains_key(&claims.jti);
        (!revoked).then_some(claims)
    }

    /// Verifies an ID token this IdP issued to `client_id` (signature, issuer, `aud`,
    /// `exp` against the IdP's clock); its `sub` when every check holds.
    pub fn verify_id_token(&self, token: &str, client_id: &str) -> Option<String> {
        let now = self.clock.unix();
        let header = decode_header(token).ok()?;
        let key = self.keys.find(header.kid.as_deref()?, now)?;
        if header.alg != key.alg.algorithm() {
            return None;
        }
        let mut validation = Validation::new(key.alg.algorithm());
        validation.validate_exp = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        validation.set_issuer(&[&self.issuer]);
        let claims = decode::<Value>(token, key.decoding(), &validation)
            .ok()?
            .claims;
        let for_client = match claims.get("aud")? {
            Value::String(one) => one == client_id,
            Value::Array(many) => many.iter().any(|a| a.as_str() == Some(client_id)),
            _ => false,
        };
        let live = claims
            .get("exp")
            .and_then(Value::as_u64)
            .is_some_and(|exp| now < exp);
        // An ID token carries no `at+jwt` type and no `client_id`: an access token
        // is not an ID token.
        let id_token = claims.get("nonce").is_some() || claims.get("at_hash").is_some();
        (for_client && live && id_token && header.typ.as_deref() != Some("at+jwt"))
            .then(|| claims.get("sub")?.as_str().map(str::to_owned))
            .flatten()
    }

    /// Authenticates the client of a token-endpoint style request.
    pub fn authenticate(&self, presented: &Presented) -> Result<Client, IdpError> {
        let store = self.store()?;
        let client = store
            .clients
            .get(presented.client_id())
            .cloned()
            .ok_or_else(|| IdpError::InvalidClient("unknown client".to_owned()))?;
        match (&client.secret, presented.secret()) {
            (Some(expected), Some(given))
                if crate::config::constant_time_eq(expected.as_bytes(), given.as_bytes()) =>
            {
                Ok(client)
            }
            (None, None) => Ok(client),
            (None, Some(_)) => Err(IdpError::InvalidClient(
                "this is a public client: send no secret".to_owned(),
            )),
            _ => Err(IdpError::InvalidClient(
                "client authentication failed".to_owned(),
            )),
        }
    }

    /// Revokes what a code's first redemption issued (after a replay).
    pub fn revoke_issued(store: &mut Store, issued: &Issued, exp: UnixSeconds) {
        if let Some(jti) = &issued.jti {
            store.revoked.insert(jti.clone(), exp);
        }
        if let Some(family) = &issued.family {
            store.refresh.retain(|_, r| &r.family != family);
        }
    }

    /// Issues a refresh token in `family` (a new family when `None`).
    pub fn issue_refresh(&self, store: &mut Store, template: Refresh) -> String {
        let token = random_token();
        store.refresh.insert(token.clone(), template);
        token
    }

    /// Drops codes, refresh tokens and revocations that are past their time.
    pub fn sweep(&self, store: &mut Store) {
        let now = self.clock.unix();
        store.codes.retain(|_, c| c.expires_at + 300 > now);
        store.refresh.retain(|_, r| r.expires_at > now);
        store.revoked.retain(|_, exp| *exp > now);
    }
}
