//! What a verified token established, and how long and how far it holds: the
//! verified-token cache keeps an entry until the token expires, and every use —
//! cached or not — takes the token as its grant now stands.

use std::sync::Arc;
use std::time::Duration;

use super::super::grant_standing::ScopeCache;
use super::super::principal::{CredentialKind, Principal};
use super::super::rejection::Rejection;
use crate::clock::{Clock, UnixSeconds};
use crate::config::ResourceConfig;
use crate::domain::resource::same_resource;

/// What a verified token established, independent of the resource asked about.
#[derive(Debug, Clone)]
pub struct Verified {
    pub principal: Arc<Principal>,
    pub audiences: Vec<String>,
    pub expires_at: UnixSeconds,
    pub not_before: Option<UnixSeconds>,
    /// When the broker key that signed it leaves `/jwks.json`: from then on the token
    /// is refused even from the cache. `None` for provider tokens and current keys.
    pub key_until: Option<UnixSeconds>,
}

impl Verified {
    /// Whether the token is meant for `resource` (RFC 8707 / OAuth 2.1 §5.2).
    pub fn meant_for(&self, resource: &ResourceConfig) -> bool {
        self.audiences.iter().any(|aud| {
            same_resource(&resource.uri, aud)
                || resource.audiences.iter().any(|ok| same_resource(ok, aud))
        })
    }
}

/// A token as its grant now stands (broker tokens, and provider tokens the broker
/// handed out; others pass as they are): refused when the grant is revoked or
/// unknown; a broker token's scopes narrowed to what the grant may still do and its
/// identity the grant's (a provider token carries what the provider gave, and the
/// client was told so).
pub(super) async fn current(
    verified: Arc<Verified>,
    grants: &ScopeCache,
) -> Result<Arc<Verified>, Rejection> {
    // Provider tokens the broker did not hand out have no grant here.
    let Some(grant_id) = verified.principal.grant_id.as_deref() else {
        return Ok(verified);
    };
    let standing = grants
        .effective(grant_id)
        .await
        .map_err(|_| Rejection::Unavailable)?;
    let Some(allowed) = &standing.scopes else {
        return Err(Rejection::Revoked);
    };
    let principal = &verified.principal;
    // A provider token keeps what it carries, its own identity included.
    if principal.kind != CredentialKind::BrokerJwt {
        return Ok(verified);
    }
    let same_identity = match (&principal.identity, &standing.identity) {
        (Some(held), Some(now)) => Arc::ptr_eq(held, now),
        (None, None) => true,
        _ => false,
    };
    if same_identity && principal.scopes.is_subset(allowed) {
        return Ok(verified);
    }
    let mut current = Verified::clone(&verified);
    current.principal = Arc::new(Principal {
        scopes: principal.scopes.intersection(allowed),
        identity: standing.identity.clone(),
        ..Principal::clone(principal)
    });
    Ok(Arc::new(current))
}

/// Entries live until the token expires (plus leeway), never longer.
pub(super) struct UntilExpiry {
    pub(super) clock: Clock,
    pub(super) leeway: u64,
}

impl moka::Expiry<[u8; 32], Arc<Verified>> for UntilExpiry {
    fn expire_after_create(
        &self,
        _: &[u8; 32],
        value: &Arc<Verified>,
        _: std::time::Instant,
    ) -> Option<Duration> {
        let now = self.clock.unix();
        Some(Duration::from_secs(
            value
                .expires_at
                .saturating_add(self.leeway)
                .saturating_sub(now),
        ))
    }
}
