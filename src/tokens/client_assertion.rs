//! The signature of a client assertion (`private_key_jwt`, RFC 7523 §2.2): checked
//! against the keys of the client it names — its `jwks`, or the key set at its
//! `jwks_uri`, cached for a TTL and fetched again for an unknown `kid` at most once per
//! refetch interval (so a flood of assertions with made-up `kid`s costs the client's
//! host one request per interval). The algorithm must be in the allow-list and the
//! key's own (never `none`, never an HMAC against a public key). What the claims must
//! say is `domain::client_assertion`.

use std::sync::Arc;
use std::time::Duration;

use moka::future::Cache;
use serde_json::Value;

use super::verify::jws::read_header;
use crate::clock::{Clock, UnixSeconds};
use crate::domain::client_assertion::Claims;
use crate::upstream::cimd::CimdFetcher;
use crate::upstream::http::UpstreamHttp;
use crate::upstream::jwks::{self, KeySet, VerifyKey};
use crate::upstream::jws::{ClaimsError, JwsError, verified_claims};

/// Key sets remembered, by URI.
const CACHE_ENTRIES: u64 = 10_000;

/// Where a client's public keys are.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientKeys {
    /// `jwks`: inline.
    Jwks(Value),
    /// `jwks_uri`, with whether the operator configured it (fetched like the
    /// provider's keys) or a registration did (fetched under the SSRF rules).
    Uri { uri: String, configured: bool },
}

/// Why an assertion's header or signature is not accepted. All but
/// [`AssertionError::KeysUnavailable`] are `invalid_client`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssertionError {
    Malformed,
    AlgorithmNotAllowed,
    UnknownKey,
    BadSignature,
    /// A registered client's `jwks_uri` gave no usable key set (its host is refused,
    /// unreachable, or serves something else): `invalid_client`.
    KeysRefused,
    /// A configured client's keys cannot be fetched now: 503, retry.
    KeysUnavailable,
}

impl AssertionError {
    /// The `error_description`.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Malformed => "the client assertion is not a signed JWT",
            Self::AlgorithmNotAllowed => "the client assertion's algorithm is not allowed",
            Self::UnknownKey => {
                "the client assertion is signed with a key the client does not publish"
            }
            Self::BadSignature => "the client assertion's signature does not verify",
            Self::KeysRefused => "the client's jwks_uri gave no usable key set",
            Self::KeysUnavailable => "the client's keys cannot be fetched",
        }
    }
}

/// The key for `kid`; without one, the client's only key.
fn pick(keys: &KeySet, kid: Option<&str>) -> Option<VerifyKey> {
    match kid {
        Some(_) => keys.find(kid),
        None => keys.find(None).or_else(|| keys.only()),
    }
    .cloned()
}

#[derive(Clone)]
struct Fetched {
    keys: Arc<KeySet>,
    at: UnixSeconds,
}

/// Verifies client assertions. Cheap to share (`Arc`).
pub struct ClientAssertions {
    /// For registered clients' `jwks_uri`.
    guarded: CimdFetcher,
    /// For configured clients' `jwks_uri`.
    http: UpstreamHttp,
    clock: Clock,
    ttl: u64,
    refetch_interval: u64,
    cache: Cache<String, Fetched>,
}

impl ClientAssertions {
    /// `ttl`: how long a fetched key set is used; `refetch_interval`: the least time
    /// between two fetches for unknown `kid`s.
    pub fn new(
        guarded: CimdFetcher,
        http: UpstreamHttp,
        clock: Clock,
        ttl: Duration,
        refetch_interval: Duration,
    ) -> Self {
        Self {
            guarded,
            http,
            clock,
            ttl: ttl.as_secs(),
            refetch_interval: refetch_interval.as_secs(),
            cache: Cache::builder().max_capacity(CACHE_ENTRIES).build(),
        }
    }

    /// Checks the header and signature of `assertion` against `keys`; returns its
    /// claims, not yet judged.
    pub async fn verify(
        &self,
        keys: &ClientKeys,
        assertion: &str,
    ) -> Result<Claims, AssertionError> {
        // Any asymmetric algorithm the client's key may sign with (`read_header` knows
        // no other).
        let header = read_header(assertion).map_err(|e| match e {
            super::rejection::Rejection::AlgNotAllowed => AssertionError::AlgorithmNotAllowed,
            _ => AssertionError::Malformed,
        })?;
        let key = self
            .find(keys, header.kid.as_deref())
            .await?
            .ok_or(AssertionError::UnknownKey)?;
        if !key.algorithms.contains(&header.alg) {
            return Err(AssertionError::AlgorithmNotAllowed);
        }
        verified_claims(assertion, header.alg, &key.key).map_err(|e| match e {
            ClaimsError::Jws(JwsError::BadSignature) => AssertionError::BadSignature,
            _ => AssertionError::Malformed,
        })
    }

    async fn find(
        &self,
        keys: &ClientKeys,
        kid: Option<&str>,
    ) -> Result<Option<VerifyKey>, AssertionError> {
        let (uri, configured) = match keys {
            ClientKeys::Jwks(document) => {
                let set = KeySet::parse(document).map_err(|_| AssertionError::UnknownKey)?;
                return Ok(pick(&set, kid));
            }
            ClientKeys::Uri { uri, configured } => (uri, *configured),
        };
        let now = self.clock.unix();
        if let Some(fetched) = self.cache.get(uri).await {
            let fresh = now < fetched.at.saturating_add(self.ttl);
            if fresh {
                if let Some(key) = pick(&fetched.keys, kid) {
                    return Ok(Some(key));
                }
                // Fetched a moment ago: an unknown `kid` does not make the client's
                // host be asked again.
                if now < fetched.at.saturating_add(self.refetch_interval) {
                    return Ok(None);
                }
            }
            // Removed only if it is still the copy judged: a concurrent caller may have
            // just put a newer one.
            self.cache
                .entry_by_ref(uri.as_str())
                .and_compute_with(|entry| {
                    let same = entry.is_some_and(|e| e.value().at == fetched.at);
                    std::future::ready(if same {
                        moka::ops::compute::Op::Remove
                    } else {
                        moka::ops::compute::Op::Nop
                    })
                })
                .await;
        }
        let fetched = self
            .cache
            .try_get_with_by_ref(uri.as_str(), self.fetch(uri, configured))
            .await
            .map_err(|error: Arc<AssertionError>| *error)?;
        Ok(pick(&fetched.keys, kid))
    }

    async fn fetch(&self, uri: &str, configured: bool) -> Result<Fetched, AssertionError> {
        let keys = if configured {
            jwks::fetch(&self.http, uri).await.map_err(|error| {
                tracing::warn!(uri, %error, "cannot fetch a configured client's keys");
                AssertionError::KeysUnavailable
            })?
        } else {
            let document = self.guarded.fetch_jwks(uri).await.map_err(|error| {
                tracing::info!(uri, %error, "cannot fetch a registered client's keys");
                AssertionError::KeysRefused
            })?;
            KeySet::parse(&document).map_err(|reason| {
                tracing::info!(uri, reason, "a registered client's key set is invalid");
                AssertionError::KeysRefused
            })?
        };
        Ok(Fetched {
            keys: Arc::new(keys),
            at: self.clock.unix(),
        })
    }
}
