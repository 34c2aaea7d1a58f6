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

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, Validation, decode};
use moka::sync::Cache;
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::api_keys::ApiKeys;
use super::introspect::{Introspected, Introspector};
use super::principal::{CredentialKind, Principal};
use super::rejection::Rejection;
use super::signing::SigningKeys;
use crate::actors::discovery::DiscoveryHandle;
use crate::actors::scopes::ScopeCache;
use crate::clock::{Clock, UnixSeconds};
use crate::config::ResourceConfig;
use crate::domain::invalidation::Invalidation;
use crate::domain::passthrough::scopes_of;
use crate::domain::resource::same_resource;
use crate::store::Store;

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

#[derive(Deserialize)]
struct Claims {
    iss: Option<String>,
    sub: Option<String>,
    aud: Option<Value>,
    exp: Option<u64>,
    nbf: Option<u64>,
    iat: Option<u64>,
    scope: Option<String>,
    scp: Option<Value>,
    client_id: Option<String>,
    azp: Option<String>,
    sid: Option<String>,
}

/// The verifier hot paths share. Cheap to clone.
#[derive(Clone)]
pub struct Verifier {
    discovery: DiscoveryHandle,
    issuer: String,
    leeway: u64,
    clock: Clock,
    cache: Cache<[u8; 32], Arc<Verified>>,
    api_keys: Arc<ApiKeys>,
    introspector: Option<Introspector>,
    broker: Option<BrokerTrust>,
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

/// A token as its grant now stands (broker tokens, and provider tokens the broker
/// handed out; others pass as they are): refused when the grant is revoked or
/// unknown; a broker token's scopes narrowed to what the grant may still do (a
/// provider token carries what the provider gave, and the client was told so).
async fn current(verified: Arc<Verified>, grants: &ScopeCache) -> Result<Arc<Verified>, Rejection> {
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
    if verified.principal.kind != CredentialKind::BrokerJwt
        || verified.principal.scopes.is_subset(allowed)
    {
        return Ok(verified);
    }
    let mut narrowed = Verified::clone(&verified);
    narrowed.principal = Arc::new(Principal {
        scopes: verified.principal.scopes.intersection(allowed),
        ..Principal::clone(&verified.principal)
    });
    Ok(Arc::new(narrowed))
}

/// Entries live until the token expires (plus leeway), never longer.
struct UntilExpiry {
    clock: Clock,
    leeway: u64,
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
            (value.expires_at + self.leeway).saturating_sub(now),
        ))
    }
}

/// What verification needs besides the discovery handle.
pub struct VerifierParts {
    pub issuer: String,
    pub leeway: Duration,
    pub capacity: u64,
    pub clock: Clock,
    pub api_keys: ApiKeys,
    pub introspector: Option<Introspector>,
    /// The broker's own tokens are accepted when given.
    pub broker: Option<BrokerTrust>,
}

impl Verifier {
    pub fn new(discovery: DiscoveryHandle, parts: VerifierParts) -> Self {
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
            discovery,
            issuer: parts.issuer,
            leeway,
            clock: parts.clock,
            cache,
            api_keys: Arc::new(parts.api_keys),
            introspector: parts.introspector,
            broker: parts.broker,
        }
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
        let verified = match self.cache.get(key) {
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
        if now >= verified.expires_at + self.leeway {
            return Err(Rejection::Expired);
        }
        if verified
            .not_before
            .is_some_and(|nbf| now + self.leeway < nbf)
        {
            return Err(Rejection::NotYetValid);
        }
        if verified.key_until.is_some_and(|until| now >= until) {
            return Err(Rejection::UnknownKid);
        }
        match &self.broker {
            Some(broker) => current(verified, &broker.grants).await,
            None => Ok(verified),
        }
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
                if expires_at.is_some_and(|exp| self.clock.unix() >= exp + self.leeway) {
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
                .key_for(kid)
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
        self.check_claims(claims, &self.issuer, CredentialKind::UpstreamJwt)
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
        if key.alg.algorithm() != header.alg {
            return Err(Rejection::AlgNotAllowed);
        }
        // The broker signs nothing else with these keys, but a token of another type
        // must never pass as an access token (RFC 9068 §4).
        if !header.typ.as_deref().is_some_and(is_access_token_type) {
            return Err(Rejection::WrongType);
        }
        let claims = decode_claims(token, header.alg, key.decoding())?;
        if claims.sid.is_none() {
            return Err(Rejection::MissingClaims);
        }
        let mut verified = self.check_claims(claims, &broker.issuer, CredentialKind::BrokerJwt)?;
        verified.key_until = key_until;
        Ok(verified)
    }

    fn check_claims(
        &self,
        claims: Claims,
        issuer: &str,
        kind: CredentialKind,
    ) -> Result<Verified, Rejection> {
        let (Some(iss), Some(sub), Some(aud), Some(exp)) =
            (claims.iss, claims.sub, claims.aud, claims.exp)
        else {
            return Err(Rejection::MissingClaims);
        };
        if iss != issuer {
            return Err(Rejection::WrongIssuer);
        }
        let now = self.clock.unix();
        if now >= exp + self.leeway {
            return Err(Rejection::Expired);
        }
        if claims.nbf.is_some_and(|nbf| now + self.leeway < nbf)
            || claims.iat.is_some_and(|iat| now + self.leeway < iat)
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
            }),
            audiences,
            expires_at: exp,
            not_before: claims.nbf,
            key_until: None,
        })
    }
}

/// Checks the signature with `key` and reads the claims; the time claims are checked
/// afterwards, against the broker's clock and with our own reasons.
/// Whether `token` has a JWS's three dot-separated parts (else it is an API key or an
/// opaque token). memchr: a token is a kilobyte, and this runs on every request.
fn is_jws(token: &str) -> bool {
    memchr::memchr_iter(b'.', token.as_bytes()).take(3).count() == 2
}

/// What the verified-token cache (and the exchange cache after it) knows a token by:
/// its SHA-256, so a cache never holds a usable token and two tokens never share an
/// entry.
pub fn token_digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn decode_claims(
    token: &str,
    alg: Algorithm,
    key: &jsonwebtoken::DecodingKey,
) -> Result<Claims, Rejection> {
    let mut validation = Validation::new(alg);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    decode::<Claims>(token, key, &validation)
        .map(|data| data.claims)
        .map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidSignature => Rejection::BadSignature,
            jsonwebtoken::errors::ErrorKind::Json(_) => Rejection::MissingClaims,
            _ => Rejection::Malformed,
        })
}

/// `at+jwt` or its full media type, in any case (RFC 9068 §2.1).
fn is_access_token_type(typ: &str) -> bool {
    typ.eq_ignore_ascii_case("at+jwt") || typ.eq_ignore_ascii_case("application/at+jwt")
}

/// The `iss` of a compact JWS's payload, read without trusting it: it only decides
/// which keys may verify the token.
fn unverified_issuer(token: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    #[derive(Deserialize)]
    struct Iss {
        iss: Option<String>,
    }
    serde_json::from_slice::<Iss>(&bytes).ok()?.iss
}

/// The parts of a JWS header verification looks at.
#[derive(Debug, PartialEq, Eq)]
struct JwtHeader {
    alg: Algorithm,
    kid: Option<String>,
    typ: Option<String>,
}

/// Reads `alg`, `kid` and `typ` from a compact JWS without trusting anything else in it.
fn read_header(token: &str) -> Result<JwtHeader, Rejection> {
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Rejection::Malformed);
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| Rejection::Malformed)?;
    let header: Value = serde_json::from_slice(&bytes).map_err(|_| Rejection::Malformed)?;
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .ok_or(Rejection::Malformed)?;
    let alg: Algorithm = alg.parse().map_err(|_| Rejection::AlgNotAllowed)?;
    if matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) {
        return Err(Rejection::AlgNotAllowed);
    }
    let text = |name: &str| header.get(name).and_then(Value::as_str).map(String::from);
    Ok(JwtHeader {
        alg,
        kid: text("kid"),
        typ: text("typ"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        URL_SAFE_NO_PAD.encode(s)
    }

    #[test]
    fn headers_are_read_strictly() {
        let token = |h: &str| format!("{}.{}.sig", b64(h), b64("{}"));
        assert_eq!(
            read_header(&token(r#"{"alg":"RS256","kid":"k","typ":"at+jwt"}"#)),
            Ok(JwtHeader {
                alg: Algorithm::RS256,
                kid: Some("k".into()),
                typ: Some("at+jwt".into()),
            })
        );
        assert_eq!(
            read_header(&token(r#"{"alg":"none"}"#)),
            Err(Rejection::AlgNotAllowed)
        );
        assert_eq!(
            read_header(&token(r#"{"alg":"HS256"}"#)),
            Err(Rejection::AlgNotAllowed)
        );
        assert_eq!(
            read_header(&token(r#"{"kid":"k"}"#)),
            Err(Rejection::Malformed)
        );
        assert_eq!(read_header("a.b"), Err(Rejection::Malformed));
        assert_eq!(read_header("!!.b.c"), Err(Rejection::Malformed));
        assert_eq!(read_header("a.b.c.d"), Err(Rejection::Malformed));
    }

    #[test]
    fn access_token_types_are_recognised() {
        assert!(is_access_token_type("at+jwt"));
        assert!(is_access_token_type("AT+JWT"));
        assert!(is_access_token_type("application/at+jwt"));
        assert!(!is_access_token_type("JWT"));
        assert!(!is_access_token_type("at+jwt2"));
    }
}
