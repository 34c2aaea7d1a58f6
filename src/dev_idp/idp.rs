//! The IdP's state and its token machinery: clients, codes, refresh-token families,
//! revocations, and minting/verifying JWTs with the key ring. Kept in memory behind
//! one mutex that is never held across an `.await`.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use jsonwebtoken::{Validation, decode, decode_header, encode};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::config::{ClientSpec, DevIdpConfig, User};
use super::faults::Faults;
use super::keys::{KeyRing, b64url};
use crate::clock::{Clock, UnixSeconds};
use crate::domain::scope::Scopes;
use crate::http::error::{ApiError, ErrorCode};
use crate::redact::Redacted;

/// A client the IdP knows: configured or dynamically registered. `Debug` hides the
/// secret and the registration access token.
#[derive(Clone)]
pub struct Client {
    pub client_id: String,
    pub secret: Option<String>,
    pub redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    /// Scopes it may receive; `None` = any supported scope.
    pub scopes: Option<Scopes>,
    /// RFC 7592 registration access token, for registered clients.
    pub registration_token: Option<String>,
    /// The registration response, returned again by RFC 7592 GET.
    pub metadata: Option<Value>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("client_id", &self.client_id)
            .field("secret", &Redacted::option(&self.secret))
            .field("redirect_uris", &self.redirect_uris)
            .field("grant_types", &self.grant_types)
            .field("scopes", &self.scopes)
            .field(
                "registration_token",
                &Redacted::option(&self.registration_token),
            )
            .field("metadata", &self.metadata)
            .finish()
    }
}

impl Client {
    pub fn from_spec(spec: &ClientSpec) -> Self {
        Self {
            client_id: spec.client_id.clone(),
            secret: spec.client_secret.clone(),
            redirect_uris: spec.redirect_uris.clone(),
            grant_types: spec.grant_types.clone(),
            scopes: spec.scopes.as_ref().map(|s| Scopes::of(s.iter().cloned())),
            registration_token: None,
            metadata: None,
        }
    }

    pub fn allows_grant(&self, grant: &str) -> bool {
        self.grant_types.iter().any(|g| g == grant)
    }
}

/// An authorization code, one-time, bound to client, redirect URI and challenge.
/// `Debug` hides the nonce.
#[derive(Clone)]
pub struct Code {
    pub client_id: String,
    pub redirect_uri: String,
    pub challenge: String,
    pub sub: String,
    pub scopes: Scopes,
    pub resources: Vec<String>,
    pub nonce: Option<String>,
    pub expires_at: UnixSeconds,
    /// Set on first redemption; a second redemption revokes what the first issued.
    pub redeemed: Option<Issued>,
}

impl std::fmt::Debug for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Code")
            .field("client_id", &self.client_id)
            .field("redirect_uri", &self.redirect_uri)
            .field("challenge", &self.challenge)
            .field("sub", &self.sub)
            .field("scopes", &self.scopes)
            .field("resources", &self.resources)
            .field("nonce", &Redacted::option(&self.nonce))
            .field("expires_at", &self.expires_at)
            .field("redeemed", &self.redeemed)
            .finish()
    }
}

/// What one redemption issued, so a replay can revoke it (RFC 6749 §4.1.2).
#[derive(Debug, Clone, Default)]
pub struct Issued {
    pub jti: Option<String>,
    pub family: Option<String>,
}

/// A refresh token; rotation keeps the family so reuse of a spent token revokes it all.
#[derive(Debug, Clone)]
pub struct Refresh {
    pub client_id: String,
    pub sub: String,
    pub scopes: Scopes,
    pub resources: Vec<String>,
    pub expires_at: UnixSeconds,
    pub family: String,
}

/// Claims of the access tokens this IdP issues (RFC 9068 profile).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    /// A string for one audience, an array for several.
    pub aud: Value,
    pub exp: UnixSeconds,
    pub iat: UnixSeconds,
    pub nbf: UnixSeconds,
    pub jti: String,
    pub client_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Entra-style space-separated scopes, used by on-behalf-of tokens instead of `scope`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scp: Option<String>,
    /// RFC 8693 §4.1 actor, for delegated exchanges.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub act: Option<Value>,
}

impl AccessClaims {
    pub fn scopes(&self) -> Scopes {
        let text = self.scope.as_deref().or(self.scp.as_deref()).unwrap_or("");
        Scopes::parse(text).unwrap_or_default()
    }

    pub fn audiences(&self) -> Vec<String> {
        match &self.aud {
            Value::String(one) => vec![one.clone()],
            Value::Array(many) => many
                .iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// What to put in a new access token.
pub struct AccessGrant<'a> {
    pub sub: &'a str,
    pub client_id: &'a str,
    pub audiences: &'a [String],
    pub scopes: &'a Scopes,
    pub act: Option<Value>,
    /// Entra shape: `scp` instead of `scope`.
    pub entra: bool,
}

#[derive(Default)]
pub struct Store {
    pub clients: HashMap<String, Client>,
    pub codes: HashMap<String, Code>,
    pub refresh: HashMap<String, Refresh>,
    /// Spent refresh tokens by family, to detect reuse.
    pub spent: HashMap<String, String>,
    /// Revoked access-token ids, until their expiry.
    pub revoked: HashMap<String, UnixSeconds>,
    /// Opaque access tokens (`opaque_access_tokens = true`) and their claims.
    pub opaque: HashMap<String, AccessClaims>,
}

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

    pub fn store(&self) -> Result<MutexGuard<'_, Store>, ApiError> {
        self.store
            .lock()
            .map_err(|_| ApiError::Internal("dev IdP store poisoned".to_owned()))
    }

    pub fn user(&self, sub: &str) -> Option<&User> {
        self.config.users.iter().find(|u| u.sub == sub)
    }

    pub fn supported(&self) -> Scopes {
        Scopes::of(self.config.scopes_supported.iter().cloned())
    }

    /// Signs a new access token; returns it with its claims.
    pub fn mint_access(&self, grant: AccessGrant<'_>) -> Result<(String, AccessClaims), ApiError> {
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
    ) -> Result<String, ApiError> {
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
        });
        // Absent, not null: a request without a nonce gets no `nonce` claim (OIDC Core §2).
        if let Value::Object(map) = &mut claims {
            map.retain(|_, v| !v.is_null());
        }
        self.sign("JWT", &claims)
    }

    /// Signs any claims with the current key (tests use it to forge edge cases).
    pub fn sign<T: Serialize>(&self, typ: &str, claims: &T) -> Result<String, ApiError> {
        let key = self
            .keys
            .current()
            .ok_or_else(|| ApiError::Internal("no signing key".to_owned()))?;
        encode(&key.header(typ), claims, key.encoding())
            .map_err(|e| ApiError::Internal(format!("signing failed: {e}")))
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

    /// Authenticates the client of a token-endpoint style request.
    pub fn authenticate(
        &self,
        presented: &crate::domain::client_auth::Presented,
    ) -> Result<Client, ApiError> {
        let store = self.store()?;
        let client = store
            .clients
            .get(presented.client_id())
            .cloned()
            .ok_or_else(|| ApiError::InvalidClient("unknown client".to_owned()))?;
        match (&client.secret, presented.secret()) {
            (Some(expected), Some(given))
                if crate::config::constant_time_eq(expected.as_bytes(), given.as_bytes()) =>
            {
                Ok(client)
            }
            (None, None) => Ok(client),
            (None, Some(_)) => Err(ApiError::InvalidClient(
                "this is a public client: send no secret".to_owned(),
            )),
            _ => Err(ApiError::InvalidClient(
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

/// Shorthand for the OAuth errors the IdP answers with.
pub fn err(code: ErrorCode, description: impl Into<String>) -> ApiError {
    ApiError::oauth(code, description)
}
