//! Verification of JWT access tokens — the provider's, against its JWKS, and the
//! broker's own, against its signing keys — with a verified-token cache so a token
//! seen before costs a hash and a lookup (plus, for broker tokens, a revocation
//! lookup by grant).
//!
//! Checks, in order: structure and header; algorithm (from the key's allow-list, never
//! `none` or HMAC); `kid` (with one rate-limited refetch for an unknown one);
//! signature; `iss`; required claims; `exp`/`nbf`/`iat` against the broker's clock
//! with bounded leeway; then, per resource, `aud`. A broker token must also be typed
//! `at+jwt` (RFC 9068 §4), carry a `sid`, and its grant must not be revoked. In
//! passthrough mode a provider token the broker handed out belongs to its grant too
//! (learned from the store once, on a cache miss): it acts for the grant's client and
//! is refused once the grant is revoked.

use std::sync::Arc;
use std::time::Duration;

mod claims;
#[cfg(fuzzing)]
pub mod fuzzing;
pub(super) mod jws;
#[cfg(test)]
mod tests;
mod verified;

use moka::sync::Cache;

pub use verified::Verified;

use self::claims::decode_claims;
use self::jws::{JwtHeader, is_access_token_type, is_jws, read_header, unverified_issuer};
use self::verified::{UntilExpiry, current};
use super::api_keys::ApiKeys;
use super::grant_standing::ScopeCache;
use super::introspect::{Introspected, Introspector};
use super::principal::{CredentialKind, Principal};
use super::rejection::Rejection;
use super::signing::SigningKeys;
use crate::clock::Clock;
use crate::config::ResourceConfig;
use crate::domain::identity::ClaimNames;
use crate::domain::invalidation::Invalidation;
use crate::domain::resource::same_resource;
use crate::store::Store;
use crate::telemetry::cache_metrics::CacheCounters;
use crate::upstream::snapshot::SnapshotSource;

/// The verifier hot paths share. Cheap to clone.
#[derive(Clone)]
pub struct Verifier {
    discovery: Arc<dyn SnapshotSource>,
    issuer: String,
    leeway: u64,
    clock: Clock,
    cache: Cache<[u8; 32], Arc<Verified>>,
    api_keys: Arc<ApiKeys>,
    introspector: Option<Introspector>,
    broker: Option<BrokerTrust>,
    claims: Arc<ClaimNames>,
    counters: CacheCounters,
}

/// What verifies the broker's own tokens.
#[derive(Clone)]
pub struct BrokerTrust {
    /// `server.public_url`: the `iss` of broker tokens.
    pub issuer: String,
    pub keys: Arc<SigningKeys>,
    /// What each grant may still do: consulted on every use of a broker token, and of
    /// a provider token the broker handed out.
    pub grants: ScopeCache,
    /// In passthrough mode, the store's record of the provider tokens handed out: read
    /// once per token (on a verified-token cache miss) to learn its grant and client.
    pub passthrough: Option<Arc<dyn Store>>,
}

/// What verification needs besides the provider's snapshot.
pub struct VerifierParts {
    pub issuer: String,
    pub leeway: Duration,
    pub capacity: u64,
    pub clock: Clock,
    pub api_keys: ApiKeys,
    pub introspector: Option<Introspector>,
    /// The broker's own tokens are accepted when given.
    pub broker: Option<BrokerTrust>,
    /// `[upstream.claims]`: the identity a provider token states.
    pub claims: ClaimNames,
}

impl Verifier {
    /// `discovery` keeps the provider's metadata and keys current (the discovery
    /// actor's handle, in the broker).
    pub fn new(discovery: impl SnapshotSource, parts: VerifierParts) -> Self {
        let leeway = parts.leeway.as_secs();
        let cache = Cache::builder()
            .max_capacity(parts.capacity)
            .expire_after(UntilExpiry {
                clock: parts.clock.clone(),
                leeway,
            })
            .support_invalidation_closures()
            .build();
        Self {
            discovery: Arc::new(discovery),
            issuer: parts.issuer,
            leeway,
            clock: parts.clock,
            cache,
            api_keys: Arc::new(parts.api_keys),
            introspector: parts.introspector,
            broker: parts.broker,
            claims: Arc::new(parts.claims),
            counters: CacheCounters::default(),
        }
    }

    /// Counts the verified-token cache's hits and misses.
    pub fn counting(mut self, counters: CacheCounters) -> Self {
        self.counters = counters;
        self
    }

    /// Verifies `token` for `resource`: a JWT against the provider's keys; anything
    /// else as an API key, then by introspection.
    pub async fn verify(
        &self,
        token: &str,
        resource: &ResourceConfig,
    ) -> Result<Arc<Principal>, Rejection> {
        self.verify_digested(token, &token_digest(token), resource)
            .await
    }

    /// [`verify`](Self::verify) with the token's [`token_digest`] already computed, for
    /// callers that key their own caches by it too (the exchange).
    pub async fn verify_digested(
        &self,
        token: &str,
        digest: &[u8; 32],
        resource: &ResourceConfig,
    ) -> Result<Arc<Principal>, Rejection> {
        if !is_jws(token) {
            if let Some(verdict) = self.api_keys.verify(token, resource, self.clock.unix()) {
                return verdict.map(Arc::new);
            }
            return self.verify_opaque(token, resource).await;
        }
        let verified = self.verified_jwt(token, digest).await?;
        if !verified.meant_for(resource) {
            return Err(Rejection::WrongAudience);
        }
        Ok(Arc::clone(&verified.principal))
    }

    /// A broker-issued access token, whatever resource it is for (introspection and
    /// revocation): the same checks as [`verify`](Self::verify) but the audience.
    pub async fn verify_broker(&self, token: &str) -> Result<Arc<Verified>, Rejection> {
        if !is_jws(token) {
            return Err(Rejection::Malformed);
        }
        let verified = self.verified_jwt(token, &token_digest(token)).await?;
        if verified.principal.kind != CredentialKind::BrokerJwt {
            return Err(Rejection::WrongIssuer);
        }
        Ok(verified)
    }

    /// A JWT from the cache or verified now; time and revocation are checked on
    /// every use, cached or not.
    async fn verified_jwt(&self, token: &str, key: &[u8; 32]) -> Result<Arc<Verified>, Rejection> {
        let cached = self.cache.get(key);
        self.counters.lookup(cached.is_some());
        let verified = match cached {
            Some(hit) => hit,
            None => {
                let verified = self
                    .handed_out(self.verify_signed(token).await?, key)
                    .await?;
                let verified = Arc::new(verified);
                self.cache.insert(*key, verified.clone());
                verified
            }
        };
        let now = self.clock.unix();
        if now >= verified.expires_at.saturating_add(self.leeway) {
            return Err(Rejection::Expired);
        }
        if verified
            .not_before
            .is_some_and(|nbf| now.saturating_add(self.leeway) < nbf)
        {
            return Err(Rejection::NotYetValid);
        }
        if verified.key_until.is_some_and(|until| now >= until) {
            return Err(Rejection::UnknownKid);
        }
        let Some(broker) = &self.broker else {
            return Ok(verified);
        };
        let now = current(Arc::clone(&verified), &broker.grants).await?;
        // The grant's identity joined to the token is kept in the cache, so the next
        // use allocates nothing; narrowed scopes are not (the grant may widen again).
        if !Arc::ptr_eq(&now, &verified) && now.principal.scopes == verified.principal.scopes {
            self.cache.insert(*key, Arc::clone(&now));
        }
        Ok(now)
    }

    /// A provider token the broker handed out (passthrough mode) belongs to the grant
    /// it came from: it acts for that grant's client — so per-client rules apply —
    /// and stops verifying when the grant is revoked. A provider token the broker did
    /// not hand out keeps its own `client_id`/`azp`.
    async fn handed_out(
        &self,
        verified: Verified,
        digest: &[u8; 32],
    ) -> Result<Verified, Rejection> {
        let Some(store) = self.broker.as_ref().and_then(|b| b.passthrough.as_ref()) else {
            return Ok(verified);
        };
        if verified.principal.kind != CredentialKind::UpstreamJwt {
            return Ok(verified);
        }
        let Some(record) = store
            .find_passthrough(digest, self.clock.unix())
            .await
            .map_err(|_| Rejection::Unavailable)?
        else {
            return Ok(verified);
        };
        Ok(Verified {
            principal: Arc::new(Principal {
                client_id: Some(record.client_id),
                grant_id: Some(record.grant_id),
                ..Principal::clone(&verified.principal)
            }),
            ..verified
        })
    }

    async fn verify_opaque(
        &self,
        token: &str,
        resource: &ResourceConfig,
    ) -> Result<Arc<Principal>, Rejection> {
        let introspector = self.introspector.as_ref().ok_or(Rejection::Malformed)?;
        match introspector.introspect(token).await?.as_ref() {
            Introspected::Inactive => Err(Rejection::Inactive),
            Introspected::Active {
                principal,
                audiences,
                expires_at,
            } => {
                if expires_at
                    .is_some_and(|exp| self.clock.unix() >= exp.saturating_add(self.leeway))
                {
                    return Err(Rejection::Expired);
                }
                // Without an audience the provider has not said the token is meant for
                // this resource (OAuth 2.1 §5.2): refuse rather than assume.
                let meant = audiences
                    .iter()
                    .any(|aud| resource.audiences.iter().any(|ok| same_resource(ok, aud)));
                if !meant {
                    return Err(Rejection::WrongAudience);
                }
                Ok(Arc::new(principal.clone()))
            }
        }
    }

    /// Forgets every cached verification (revocation, key compromise).
    pub fn clear_cache(&self) {
        self.cache.invalidate_all();
    }

    /// Forgets the verifications (and introspection answers) `what` covers.
    pub fn invalidate(&self, what: &Invalidation) {
        if let Some(introspector) = &self.introspector {
            introspector.invalidate(what);
        }
        if let Invalidation::All(_) = what {
            return self.clear_cache();
        }
        let what = what.clone();
        let registered = self
            .cache
            .invalidate_entries_if(move |_, verified| what.covers(verified.principal.owner()));
        if registered.is_err() {
            self.clear_cache();
        }
    }

    async fn verify_signed(&self, token: &str) -> Result<Verified, Rejection> {
        let header = read_header(token)?;
        if let Some(broker) = &self.broker
            && unverified_issuer(token).as_deref() == Some(broker.issuer.as_str())
        {
            return self.verify_broker_signed(broker, token, &header);
        }
        let JwtHeader { alg, kid, .. } = header;
        let snapshot = self
            .discovery
            .current()
            .await
            .map_err(|_| Rejection::Unavailable)?;
        let snapshot = match (snapshot.keys.find(kid.as_deref()), &kid) {
            (Some(_), _) => snapshot,
            (None, Some(kid)) => self
                .discovery
                .refetched_for(kid)
                .await
                .map_err(|_| Rejection::Unavailable)?,
            (None, None) => return Err(Rejection::UnknownKid),
        };
        let key = snapshot
            .keys
            .find(kid.as_deref())
            .ok_or(Rejection::UnknownKid)?;
        if !key.algorithms.contains(&alg) {
            return Err(Rejection::AlgNotAllowed);
        }
        let claims = decode_claims(token, alg, &key.key)?;
        claims::check(
            claims,
            &self.issuer,
            CredentialKind::UpstreamJwt,
            self.clock.unix(),
            self.leeway,
            // A provider token states its own identity.
            Some(&self.claims),
        )
    }

    /// A token naming the broker as issuer: only the broker's keys can vouch for it.
    fn verify_broker_signed(
        &self,
        broker: &BrokerTrust,
        token: &str,
        header: &JwtHeader,
    ) -> Result<Verified, Rejection> {
        // The set current now: a reload swaps in a new one without waiting on readers.
        let keys = broker.keys.snapshot();
        let (key, key_until) = header
            .kid
            .as_deref()
            .and_then(|kid| keys.find(kid, self.clock.unix()))
            .ok_or(Rejection::UnknownKid)?;
        // The key's own algorithm, never the header's choice.
        if key.alg.jws() != header.alg {
            return Err(Rejection::AlgNotAllowed);
        }
        // The broker signs nothing else with these keys, but a token of another type
        // must never pass as an access token (RFC 9068 §4).
        if !header.typ.as_deref().is_some_and(is_access_token_type) {
            return Err(Rejection::WrongType);
        }
        let claims = decode_claims(token, header.alg, key.public())?;
        if claims.sid.is_none() {
            return Err(Rejection::MissingClaims);
        }
        let mut verified = claims::check(
            claims,
            &broker.issuer,
            CredentialKind::BrokerJwt,
            self.clock.unix(),
            self.leeway,
            // A broker token's identity is its grant's, as it now stands.
            None,
        )?;
        verified.key_until = key_until;
        Ok(verified)
    }
}

/// What the verified-token cache (and the exchange cache after it) knows a token by:
/// its SHA-256, so a cache never holds a usable token and two tokens never share an
/// entry.
pub fn token_digest(token: &str) -> [u8; 32] {
    crate::domain::digest::sha256(token.as_bytes())
}
