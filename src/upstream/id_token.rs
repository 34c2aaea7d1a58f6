//! ID token validation for the upstream login (OpenID Connect Core §3.1.3.7), done
//! by openidconnect's verifier against the provider's published keys: signature
//! (asymmetric algorithms the provider advertises only — the broker verifies as a
//! public client, so `none` and an HMAC token signed with some secret can never pass),
//! issuer, audience, nonce, and expiry against the broker's clock with the configured
//! leeway. openidconnect leaves `azp` and a future `iat` to the caller; both are checked
//! here, as is `at_hash` when the access token is given. A `kid` the snapshot does not
//! know causes one rate-limited JWKS refetch through the discovery actor, as
//! access-token verification does.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, TimeDelta, Utc};
use openidconnect::core::{
    CoreIdToken, CoreIdTokenClaims, CoreIdTokenVerifier, CoreJsonWebKeySet, CoreJwsSigningAlgorithm,
};
use openidconnect::{
    AccessToken, AccessTokenHash, ClaimsVerificationError, ClientId, IssuerUrl, Nonce,
    SignatureVerificationError,
};
use serde_json::Value;

use crate::actors::discovery::{DiscoveryHandle, Snapshot};
use crate::clock::{Clock, UnixSeconds};
use crate::config::Issuer;
use crate::redact::Redacted;

/// What the broker keeps from a valid ID token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdClaims {
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: Option<bool>,
    pub name: Option<String>,
    pub preferred_username: Option<String>,
    /// When the user last authenticated at the provider, if it says.
    pub auth_time: Option<UnixSeconds>,
    pub issued_at: UnixSeconds,
    pub expires_at: UnixSeconds,
}

/// Why an ID token was refused. The texts are for operators' logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdTokenError {
    #[error("the ID token is not a well-formed JWT: {0}")]
    Malformed(String),
    /// The snapshot or its JWKS could not be had or read.
    #[error("the provider's keys are unavailable: {0}")]
    Keys(String),
    /// No published key fits the token's `kid` and algorithm, even after a refetch.
    #[error("no key of the provider matches the ID token (kid {})", .kid.as_deref().unwrap_or("absent"))]
    UnknownKey { kid: Option<String> },
    /// `none`, an HMAC algorithm, or one the provider does not advertise.
    #[error("the ID token's algorithm is not allowed: {0}")]
    Algorithm(String),
    #[error("the ID token's signature is invalid: {0}")]
    Signature(String),
    #[error("the ID token's issuer is wrong: {0}")]
    Issuer(String),
    /// `aud` does not name the broker's client, names others, or `azp` is wrong.
    #[error("the ID token is for another audience: {0}")]
    Audience(String),
    #[error("the ID token's nonce is wrong: {0}")]
    Nonce(String),
    #[error("the ID token has expired: {0}")]
    Expired(String),
    #[error("the ID token was issued in the future: {0}")]
    IssuedInFuture(String),
    /// `at_hash` does not match the access token of the same response.
    #[error("the ID token does not belong to the access token: {0}")]
    AccessTokenHash(String),
    #[error("the ID token failed validation: {0}")]
    Invalid(String),
}

impl IdTokenError {
    /// A short, fixed name for the refusal (metric labels, log fields).
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "malformed",
            Self::Keys(_) => "keys_unavailable",
            Self::UnknownKey { .. } => "unknown_key",
            Self::Algorithm(_) => "algorithm",
            Self::Signature(_) => "signature",
            Self::Issuer(_) => "issuer",
            Self::Audience(_) => "audience",
            Self::Nonce(_) => "nonce",
            Self::Expired(_) => "expired",
            Self::IssuedInFuture(_) => "issued_in_future",
            Self::AccessTokenHash(_) => "at_hash",
            Self::Invalid(_) => "invalid",
        }
    }
}

/// What a valid ID token must say. `Debug` hides the nonce and the access token.
#[derive(Clone, Copy)]
pub struct Expected<'a> {
    pub issuer: &'a Issuer,
    /// The broker's client id at the provider.
    pub client_id: &'a str,
    /// The nonce the broker sent with the authorization request.
    pub nonce: &'a str,
    /// The access token of the same token response, checked against `at_hash` when
    /// the ID token carries one.
    pub access_token: Option<&'a str>,
    /// Clock skew tolerated on `exp` and `iat` (capped at [`MAX_LEEWAY`]).
    pub leeway: Duration,
}

impl std::fmt::Debug for Expected<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Expected")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("nonce", &Redacted)
            .field("access_token", &Redacted::option(&self.access_token))
            .field("leeway", &self.leeway)
            .finish()
    }
}

/// The most skew tolerated whatever the configuration says.
pub const MAX_LEEWAY: Duration = Duration::from_secs(300);

/// Every asymmetric JWS algorithm openidconnect verifies. A provider's advertised
/// list is cut down to these; HMAC and `none` are never among them.
const ASYMMETRIC: [CoreJwsSigningAlgorithm; 10] = [
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512,
    CoreJwsSigningAlgorithm::RsaSsaPssSha256,
    CoreJwsSigningAlgorithm::RsaSsaPssSha384,
    CoreJwsSigningAlgorithm::RsaSsaPssSha512,
    CoreJwsSigningAlgorithm::EcdsaP256Sha256,
    CoreJwsSigningAlgorithm::EcdsaP384Sha384,
    CoreJwsSigningAlgorithm::EcdsaP521Sha512,
    CoreJwsSigningAlgorithm::EdDsa,
];

/// Validates `id_token` for the broker's upstream client `client_id` (no `at_hash`
/// check; see [`validate_with`]).
pub async fn validate(
    discovery: &DiscoveryHandle,
    issuer: &Issuer,
    client_id: &str,
    nonce: &str,
    id_token: &str,
    clock: &Clock,
    leeway: Duration,
) -> Result<IdClaims, IdTokenError> {
    let expected = Expected {
        issuer,
        client_id,
        nonce,
        access_token: None,
        leeway,
    };
    validate_with(discovery, &expected, id_token, clock).await
}

/// Validates `id_token` against the provider's current keys and algorithms; a `kid`
/// they lack causes one rate-limited refetch and a second try.
pub async fn validate_with(
    discovery: &DiscoveryHandle,
    expected: &Expected<'_>,
    id_token: &str,
    clock: &Clock,
) -> Result<IdClaims, IdTokenError> {
    let snapshot = discovery
        .current()
        .await
        .map_err(|e| IdTokenError::Keys(e.to_string()))?;
    match check_with_snapshot(&snapshot, expected, id_token, clock) {
        Err(IdTokenError::UnknownKey { kid: Some(kid) })
            if !publishes_kid(&snapshot.keys.document, &kid) =>
        {
            let fresh = discovery
                .key_for(&kid)
                .await
                .map_err(|e| IdTokenError::Keys(e.to_string()))?;
            check_with_snapshot(&fresh, expected, id_token, clock)
        }
        other => other,
    }
}

fn check_with_snapshot(
    snapshot: &Snapshot,
    expected: &Expected<'_>,
    id_token: &str,
    clock: &Clock,
) -> Result<IdClaims, IdTokenError> {
    let keys: CoreJsonWebKeySet = serde_json::from_value(snapshot.keys.document.clone())
        .map_err(|e| IdTokenError::Keys(format!("the JWKS cannot be read: {e}")))?;
    check(
        keys,
        &snapshot.info.id_token_signing_alg_values_supported,
        expected,
        id_token,
        clock,
    )
}

/// The validation itself, given the keys and the algorithms the provider advertises
/// (`id_token_signing_alg_values_supported`; empty means any asymmetric one).
pub fn check(
    keys: CoreJsonWebKeySet,
    advertised_algs: &[String],
    expected: &Expected<'_>,
    id_token: &str,
    clock: &Clock,
) -> Result<IdClaims, IdTokenError> {
    let token: CoreIdToken = id_token
        .parse()
        .map_err(|e: serde_json::Error| IdTokenError::Malformed(e.to_string()))?;
    let kid = token_kid(id_token);
    let issuer_url = IssuerUrl::new(expected.issuer.as_str().to_owned())
        .map_err(|e| IdTokenError::Invalid(format!("the issuer is not a URL: {e}")))?;
    let skew = skew(expected.leeway);
    let time_clock = clock.clone();
    let verifier = CoreIdTokenVerifier::new_public_client(
        ClientId::new(expected.client_id.to_owned()),
        issuer_url,
        keys,
    )
    .set_allowed_algs(allowed_algs(advertised_algs))
    // The token is judged as if it were `leeway` earlier, so an `exp` that just passed
    // by a slightly fast provider's clock still counts. Read on each call: tests move
    // the broker's clock.
    .set_time_fn(move || {
        let now = DateTime::<Utc>::from(time_clock.now());
        now.checked_sub_signed(skew).unwrap_or(now)
    });
    let nonce = Nonce::new(expected.nonce.to_owned());
    let claims = token
        .claims(&verifier, &nonce)
        .map_err(|e| refusal(e, kid))?;
    check_azp(claims, expected.client_id)?;
    let now = DateTime::<Utc>::from(clock.now());
    let latest = now.checked_add_signed(skew).unwrap_or(now);
    if claims.issue_time() > latest {
        return Err(IdTokenError::IssuedInFuture(format!(
            "iat {} is after {latest}",
            claims.issue_time()
        )));
    }
    if let (Some(access_token), Some(at_hash)) = (expected.access_token, claims.access_token_hash())
    {
        let alg = token
            .signing_alg()
            .map_err(|e| IdTokenError::Algorithm(e.to_string()))?;
        let key = token
            .signing_key(&verifier)
            .map_err(|e| IdTokenError::Signature(e.to_string()))?;
        let actual =
            AccessTokenHash::from_token(&AccessToken::new(access_token.to_owned()), alg, key)
                .map_err(|e| IdTokenError::AccessTokenHash(e.to_string()))?;
        if actual != *at_hash {
            return Err(IdTokenError::AccessTokenHash(
                "at_hash differs from the access token's hash".to_owned(),
            ));
        }
    }
    Ok(IdClaims {
        subject: claims.subject().as_str().to_owned(),
        email: claims.email().map(|e| e.as_str().to_owned()),
        email_verified: claims.email_verified(),
        name: claims
            .name()
            .and_then(|n| n.get(None))
            .map(|n| n.as_str().to_owned()),
        preferred_username: claims.preferred_username().map(|u| u.as_str().to_owned()),
        auth_time: claims.auth_time().map(unix),
        issued_at: unix(claims.issue_time()),
        expires_at: unix(claims.expiration()),
    })
}

/// OIDC Core §3.1.3.7 steps 4–5, which openidconnect leaves out: with several
/// audiences `azp` must be present, and when present it must be the broker.
fn check_azp(claims: &CoreIdTokenClaims, client_id: &str) -> Result<(), IdTokenError> {
    match claims.authorized_party() {
        Some(azp) if azp.as_str() != client_id => Err(IdTokenError::Audience(format!(
            "azp is `{}`, not `{client_id}`",
            azp.as_str()
        ))),
        None if claims.audiences().len() > 1 => Err(IdTokenError::Audience(
            "several audiences but no azp".to_owned(),
        )),
        _ => Ok(()),
    }
}

/// The provider's advertised algorithms that are asymmetric and known; all of those
/// when it advertises none (the RFC 8414 fallback has no such field).
pub fn allowed_algs(advertised: &[String]) -> Vec<CoreJwsSigningAlgorithm> {
    if advertised.is_empty() {
        return ASYMMETRIC.to_vec();
    }
    advertised
        .iter()
        .filter_map(|name| {
            serde_json::from_value::<CoreJwsSigningAlgorithm>(Value::String(name.clone())).ok()
        })
        .filter(|alg| ASYMMETRIC.contains(alg))
        .collect()
}

fn skew(leeway: Duration) -> TimeDelta {
    let secs = leeway.min(MAX_LEEWAY).as_secs();
    TimeDelta::try_seconds(i64::try_from(secs).unwrap_or(0)).unwrap_or_default()
}

fn unix(time: DateTime<Utc>) -> UnixSeconds {
    u64::try_from(time.timestamp()).unwrap_or(0)
}

/// The `kid` of the (already parsed, so well-formed) token's header, if any.
fn token_kid(id_token: &str) -> Option<String> {
    let header = id_token.split('.').next()?;
    let bytes = URL_SAFE_NO_PAD.decode(header).ok()?;
    let value: Value = serde_json::from_slice(&bytes).ok()?;
    value.get("kid")?.as_str().map(str::to_owned)
}

/// Whether the published JWKS has a key with this `kid` at all (if so, a refetch
/// would not help: the key exists but does not fit the token).
fn publishes_kid(document: &Value, kid: &str) -> bool {
    document
        .get("keys")
        .and_then(Value::as_array)
        .is_some_and(|keys| {
            keys.iter()
                .any(|k| k.get("kid").and_then(Value::as_str) == Some(kid))
        })
}

fn refusal(error: ClaimsVerificationError, kid: Option<String>) -> IdTokenError {
    match error {
        ClaimsVerificationError::Expired(m) => IdTokenError::Expired(m),
        ClaimsVerificationError::InvalidAudience(m) => IdTokenError::Audience(m),
        ClaimsVerificationError::InvalidIssuer(m) => IdTokenError::Issuer(m),
        ClaimsVerificationError::InvalidNonce(m) => IdTokenError::Nonce(m),
        ClaimsVerificationError::SignatureVerification(e) => match e {
            SignatureVerificationError::NoMatchingKey => IdTokenError::UnknownKey { kid },
            SignatureVerificationError::DisallowedAlg(m)
            | SignatureVerificationError::UnsupportedAlg(m) => IdTokenError::Algorithm(m),
            SignatureVerificationError::NoSignature => {
                IdTokenError::Algorithm("the token is unsigned".to_owned())
            }
            other => IdTokenError::Signature(other.to_string()),
        },
        other => IdTokenError::Invalid(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_advertised_asymmetric_algorithms_are_allowed() {
        let names = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            allowed_algs(&names(&["RS256", "HS256", "none", "ES256"])),
            vec![
                CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
                CoreJwsSigningAlgorithm::EcdsaP256Sha256
            ]
        );
        assert!(allowed_algs(&names(&["HS256", "HS512", "none", "XX999"])).is_empty());
        let all = allowed_algs(&[]);
        assert_eq!(all.len(), ASYMMETRIC.len());
        assert!(!all.contains(&CoreJwsSigningAlgorithm::HmacSha256));
        assert!(!all.contains(&CoreJwsSigningAlgorithm::None));
    }

    #[test]
    fn the_leeway_is_bounded() {
        assert_eq!(skew(Duration::from_secs(30)), TimeDelta::seconds(30));
        assert_eq!(skew(Duration::from_secs(86_400)), TimeDelta::seconds(300));
        assert_eq!(skew(Duration::MAX), TimeDelta::seconds(300));
    }

    #[test]
    fn a_refetch_is_only_worth_it_for_an_unpublished_kid() {
        let doc = serde_json::json!({"keys": [{"kty": "RSA", "kid": "k1"}, {"kty": "EC"}]});
        assert!(publishes_kid(&doc, "k1"));
        assert!(!publishes_kid(&doc, "k2"));
        assert!(!publishes_kid(&serde_json::json!({}), "k1"));
    }

    #[test]
    fn signature_failures_are_told_apart() {
        let kid = Some("k9".to_owned());
        let sig = ClaimsVerificationError::SignatureVerification;
        assert_eq!(
            refusal(sig(SignatureVerificationError::NoMatchingKey), kid.clone()),
            IdTokenError::UnknownKey { kid: kid.clone() }
        );
        assert_eq!(
            refusal(
                sig(SignatureVerificationError::DisallowedAlg("HS256".into())),
                None
            )
            .reason(),
            "algorithm"
        );
        assert_eq!(
            refusal(
                sig(SignatureVerificationError::CryptoError("bad".into())),
                None
            )
            .reason(),
            "signature"
        );
        assert_eq!(
            refusal(ClaimsVerificationError::InvalidNonce("x".into()), None).reason(),
            "nonce"
        );
    }
}
