//! What a completed login leaves behind: the grant (who, which client, which scopes
//! and resource, the provider's tokens) and the refresh tokens of its chain.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::clock::UnixSeconds;
use crate::domain::identity::Identity;
use crate::domain::provider_session::ProviderSession;
use crate::domain::scope::Scopes;

/// The provider's tokens for a grant. Kept in the clear in memory; durable backends
/// seal them at rest. `Debug` never shows them.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpstreamTokens {
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub expires_at: Option<UnixSeconds>,
    pub scope: Option<String>,
    /// When the broker received these tokens (login or refresh); `None` in grants
    /// stored before it was kept, whose creation counts instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub obtained_at: Option<UnixSeconds>,
    /// What the provider said of the user with these tokens (the ID token, at login
    /// or at the refresh that brought them): replaced with them, so a group removed
    /// at the provider is gone after its next refresh. Sealed with the tokens at rest
    /// (it is personal data); `None` for grants without a provider login and grants
    /// stored before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<Identity>,
}

impl UpstreamTokens {
    /// None at all, for a grant made without a provider login (an ID-JAG or client
    /// credentials): nothing the provider knows the subject by, so nothing to refresh
    /// or exchange ([`UpstreamTokens::is_absent`]).
    pub fn absent(now: UnixSeconds) -> Self {
        Self {
            access_token: String::new(),
            refresh_token: None,
            expires_at: None,
            scope: None,
            obtained_at: Some(now),
            identity: None,
        }
    }

    /// Whether the grant holds no provider token.
    pub fn is_absent(&self) -> bool {
        self.access_token.is_empty()
    }
}

impl fmt::Debug for UpstreamTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpstreamTokens")
            .field("access_token", &"<redacted>")
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "<redacted>"),
            )
            .field("expires_at", &self.expires_at)
            .field("scope", &self.scope)
            .field("obtained_at", &self.obtained_at)
            .field("identity", &self.identity)
            .finish()
    }
}

/// A user's authorization of a client, from one login.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub grant_id: String,
    pub subject: String,
    pub client_id: String,
    #[serde(with = "scope_text")]
    pub scopes: Scopes,
    pub resource: Option<String>,
    pub upstream: UpstreamTokens,
    pub created_at: UnixSeconds,
    pub revoked_at: Option<UnixSeconds>,
}

impl Grant {
    /// What the broker knows of the provider's session behind this grant.
    pub fn provider_session(&self) -> ProviderSession {
        ProviderSession {
            expires_at: self.upstream.expires_at,
            obtained_at: self.upstream.obtained_at.unwrap_or(self.created_at),
            refreshable: self.upstream.refresh_token.is_some(),
        }
    }
}

/// A refresh token as stored: by hash, never the token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshRecord {
    pub hash: [u8; 32],
    pub grant_id: String,
    /// May be narrower than the grant's.
    #[serde(with = "scope_text")]
    pub scopes: Scopes,
    pub issued_at: UnixSeconds,
    pub expires_at: UnixSeconds,
    pub rotated: Option<Rotation>,
}

/// A provider access token the broker handed to a client (`tokens.mode =
/// "passthrough"`), known by its SHA-256 — never the token. It says which grant, and
/// so which client, the token belongs to; kept until the token expires, so revoking
/// the grant refuses the token on every replica, and per-client rules apply to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PassthroughToken {
    pub digest: [u8; 32],
    pub grant_id: String,
    /// The broker's client the token was handed to.
    pub client_id: String,
    /// When the token stops verifying (its `exp` plus leeway): the record may go then.
    pub expires_at: UnixSeconds,
}

/// When a token was spent, and for which successor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rotation {
    pub at: UnixSeconds,
    pub successor: [u8; 32],
}

impl Rotation {
    /// The mark of a successor a retry within the grace replaced: rotated into
    /// itself, so its successor counts as spent and presenting it is a replay
    /// (`domain::refresh`) — in every backend and every broker version, with no
    /// schema change.
    pub fn superseded(hash: [u8; 32], at: UnixSeconds) -> Self {
        Self {
            at,
            successor: hash,
        }
    }
}

/// The result of presenting a refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RotateOutcome {
    /// The successor is stored; `retried` when this was a retry within the grace.
    Rotated {
        previous: RefreshRecord,
        retried: bool,
    },
    /// A spent token outside the grace: the grant is now revoked.
    Replayed {
        grant_id: String,
    },
    Expired,
    /// Unknown, or its grant is revoked.
    Unknown,
}

mod scope_text {
    use super::*;

    pub fn serialize<S: Serializer>(scopes: &Scopes, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&scopes.to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Scopes, D::Error> {
        let text = String::deserialize(d)?;
        Scopes::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant() -> Grant {
        Grant {
            grant_id: "g1".into(),
            subject: "alice".into(),
            client_id: "c1".into(),
            scopes: Scopes::of(["notes:read", "offline_access"]),
            resource: None,
            upstream: UpstreamTokens {
                access_token: "upstream-at".into(),
                refresh_token: Some("upstream-rt".into()),
                expires_at: Some(100),
                scope: Some("openid".into()),
                obtained_at: None,
                identity: None,
            },
            created_at: 0,
            revoked_at: None,
        }
    }

    #[test]
    fn debug_output_never_shows_the_providers_tokens() {
        let text = format!("{:?}", grant());
        assert!(!text.contains("upstream-at") && !text.contains("upstream-rt"));
        assert!(text.contains("<redacted>") && text.contains("openid"));
    }

    #[test]
    fn scopes_are_stored_as_the_space_separated_string() {
        let json = serde_json::to_value(grant()).unwrap();
        assert_eq!(json["scopes"], "notes:read offline_access");
        let back: Grant = serde_json::from_value(json).unwrap();
        assert_eq!(back, grant());
    }
}
