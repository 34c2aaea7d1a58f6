//! The signature of an Identity Assertion JWT Authorization Grant (ID-JAG), checked
//! against the keys of the issuer configured for it (`[[enterprise.issuers]]`): the
//! header typed `oauth-id-jag+jwt`, an `iss` that is configured, an algorithm from
//! both the issuer's allow-list and the key's (never `none`, never an HMAC against a
//! public key), the key by `kid` with one rate-limited refetch for an unknown one.
//! What the claims must say is `domain::id_jag`.

mod keys;

use std::sync::Arc;
use std::time::Duration;

use self::keys::KeySource;
use super::rejection::Rejection;
use super::verify::jws::{read_header, unverified_issuer};
use crate::clock::Clock;
use crate::config::{EnterpriseConfig, Issuer, TrustedIssuer};
use crate::domain::id_jag::{Claims, is_id_jag_type};
use crate::upstream::http::UpstreamHttp;
use crate::upstream::jws::{ClaimsError, JwsError, verified_claims};
use crate::upstream::snapshot::SnapshotSource;

/// Why an assertion's signature or header is not accepted. All but
/// [`AssertionError::KeysUnavailable`] are `invalid_grant`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssertionError {
    Malformed,
    WrongType,
    UntrustedIssuer,
    AlgorithmNotAllowed,
    UnknownKey,
    BadSignature,
    /// The issuer's keys cannot be had now: 503, retry.
    KeysUnavailable,
}

impl AssertionError {
    /// The `error_description`.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Malformed => "the assertion is not a signed JWT",
            Self::WrongType => "the assertion is not typed oauth-id-jag+jwt",
            Self::UntrustedIssuer => "the assertion's issuer is not trusted for ID-JAGs",
            Self::AlgorithmNotAllowed => "the assertion's signature algorithm is not allowed",
            Self::UnknownKey => "the assertion is signed with a key its issuer does not publish",
            Self::BadSignature => "the assertion's signature does not verify",
            Self::KeysUnavailable => "the issuer's keys cannot be fetched",
        }
    }
}

/// An assertion whose signature held, with the issuer entry that vouches for it.
pub struct Signed<'a> {
    pub issuer: &'a TrustedIssuer,
    pub claims: Claims,
}

/// The configured issuers with their keys. Cheap to share (`Arc`).
pub struct AssertionVerifier {
    issuers: Vec<(TrustedIssuer, KeySource)>,
}

/// What the key sources need.
pub struct KeyTiming {
    /// How long fetched keys are used before they are fetched again
    /// (`upstream.discovery_ttl`).
    pub ttl: Duration,
    /// The least time between two fetches for unknown `kid`s
    /// (`upstream.jwks_refetch_interval`).
    pub refetch_interval: Duration,
}

impl AssertionVerifier {
    /// The issuers of `config`; the upstream provider's entry (no `jwks_uri`) reads
    /// the discovery snapshot the rest of the broker uses.
    pub fn new(
        config: &EnterpriseConfig,
        upstream_issuer: &Issuer,
        upstream: Arc<dyn SnapshotSource>,
        http: UpstreamHttp,
        clock: Clock,
        timing: KeyTiming,
    ) -> Self {
        let issuers = config
            .issuers
            .iter()
            .map(|issuer| {
                let source = match &issuer.jwks_uri {
                    None if issuer.issuer.as_str() == upstream_issuer.as_str() => {
                        KeySource::Upstream(upstream.clone())
                    }
                    jwks_uri => KeySource::remote(
                        issuer.issuer.clone(),
                        jwks_uri.as_ref().map(ToString::to_string),
                        http.clone(),
                        clock.clone(),
                        &timing,
                    ),
                };
                (issuer.clone(), source)
            })
            .collect();
        Self { issuers }
    }

    /// Whether any issuer is configured (the grant is offered at all).
    pub fn is_enabled(&self) -> bool {
        !self.issuers.is_empty()
    }

    /// Checks the header and the signature of `assertion`.
    pub async fn verify(&self, assertion: &str) -> Result<Signed<'_>, AssertionError> {
        let header = read_header(assertion).map_err(|e| match e {
            Rejection::AlgNotAllowed => AssertionError::AlgorithmNotAllowed,
            _ => AssertionError::Malformed,
        })?;
        if !is_id_jag_type(header.typ.as_deref()) {
            return Err(AssertionError::WrongType);
        }
        let iss = unverified_issuer(assertion).ok_or(AssertionError::Malformed)?;
        let (issuer, source) = self
            .issuers
            .iter()
            .find(|(i, _)| i.issuer.as_str() == iss)
            .ok_or(AssertionError::UntrustedIssuer)?;
        if !issuer.algorithms.contains(&header.alg) {
            return Err(AssertionError::AlgorithmNotAllowed);
        }
        let key = source
            .find(header.kid.as_deref())
            .await?
            .ok_or(AssertionError::UnknownKey)?;
        if !key.algorithms.contains(&header.alg) {
            return Err(AssertionError::AlgorithmNotAllowed);
        }
        let claims = verified_claims(assertion, header.alg, &key.key).map_err(|e| match e {
            ClaimsError::Jws(JwsError::BadSignature) => AssertionError::BadSignature,
            _ => AssertionError::Malformed,
        })?;
        Ok(Signed { issuer, claims })
    }
}
