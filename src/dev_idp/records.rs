//! What the IdP keeps: clients, codes, refresh-token families, revocations and
//! opaque tokens, and the claims of the access tokens it issues. Plain records; the
//! rules that change them live in `idp.rs` and the endpoint files.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::config::ClientSpec;
use crate::clock::UnixSeconds;
use crate::domain::scope::Scopes;
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
    /// Users' groups as `POST /_dev/groups` set them, over the configured ones.
    pub groups: HashMap<String, Vec<String>>,
    /// What userinfo says of a user instead, as `POST /_dev/userinfo` set it.
    pub userinfo: HashMap<String, UserinfoAnswer>,
}

/// `POST /_dev/userinfo`: userinfo's answer for one user, unlike its ID tokens.
#[derive(Debug, Clone, Default)]
pub struct UserinfoAnswer {
    /// The groups userinfo states (the ID token's are unchanged).
    pub groups: Option<Vec<String>>,
    /// The `sub` userinfo answers with (a misbehaving provider).
    pub answer_sub: Option<String>,
}
