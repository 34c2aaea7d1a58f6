//! ID token validation for the upstream login (OpenID Connect Core §3.1.3.7), done
//! by openidconnect's verifier against the provider's published keys: signature
//! (asymmetric algorithms only — the broker verifies as a public client, so an HMAC
//! token signed with some secret can never pass), issuer, audience (and `azp` when
//! there are several), nonce, and expiry against the broker's clock with the
//! configured leeway. A `kid` the snapshot does not know causes one rate-limited
//! JWKS refetch through the discovery actor, as access-token verification does.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use openidconnect::core::{
    CoreIdToken, CoreIdTokenVerifier, CoreJsonWebKeySet, CoreJwsSigningAlgorithm,
};
use openidconnect::{ClientId, IssuerUrl, Nonce};

use crate::actors::discovery::DiscoveryHandle;
use crate::clock::Clock;
use crate::config::Issuer;

/// What the broker keeps from a valid ID token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdClaims {
    pub subject: String,
    pub email: Option<String>,
    pub name: Option<String>,
}

/// Why an ID token was refused.
#[derive(Debug, Clone, thiserror::Error)]
pub enum IdTokenError {
    #[error("the ID token is not a well-formed JWT: {0}")]
    Malformed(String),
    #[error("the provider's keys are unavailable: {0}")]
    Keys(String),
    #[error("the ID token failed validation: {0}")]
    Invalid(String),
}

const ALLOWED: [CoreJwsSigningAlgorithm; 10] = [
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

/// Validates `id_token` for the broker's upstream client `client_id`.
pub async fn validate(
    discovery: &DiscoveryHandle,
    issuer: &Issuer,
    client_id: &str,
    nonce: &str,
    id_token: &str,
    clock: &Clock,
    leeway: Duration,
) -> Result<IdClaims, IdTokenError> {
    let token: CoreIdToken = id_token
        .parse()
        .map_err(|e: serde_json::Error| IdTokenError::Malformed(e.to_string()))?;
    let kid = header_kid(id_token)?;
    let mut snapshot = discovery
        .current()
        .await
        .map_err(|e| IdTokenError::Keys(e.to_string()))?;
    if let Some(kid) = kid.as_deref()
        && snapshot.keys.find(Some(kid)).is_none()
    {
        snapshot = discovery
            .key_for(kid)
            .await
            .map_err(|e| IdTokenError::Keys(e.to_string()))?;
    }
    let keys: CoreJsonWebKeySet = serde_json::from_value(snapshot.keys.document.clone())
        .map_err(|e| IdTokenError::Keys(format!("the JWKS cannot be read: {e}")))?;
    let issuer_url = IssuerUrl::new(issuer.as_str().to_owned())
        .map_err(|e| IdTokenError::Keys(format!("the issuer is not a URL: {e}")))?;
    // Leeway: the token is judged as if it were `leeway` earlier, so an `exp` that
    // just passed on a slightly fast provider still counts.
    let now: DateTime<Utc> = DateTime::from(clock.now());
    let judged_at = now - chrono::Duration::seconds(i64::try_from(leeway.as_secs()).unwrap_or(0));
    let latest_iat = now + chrono::Duration::seconds(i64::try_from(leeway.as_secs()).unwrap_or(0));
    let verifier = CoreIdTokenVerifier::new_public_client(
        ClientId::new(client_id.to_owned()),
        issuer_url,
        keys,
    )
    .set_allowed_algs(ALLOWED)
    .set_time_fn(move || judged_at)
    .set_issue_time_verifier_fn(move |iat| {
        if iat > latest_iat {
            Err(format!("issued in the future ({iat})"))
        } else {
            Ok(())
        }
    });
    let expected = Nonce::new(nonce.to_owned());
    let claims = token
        .claims(&verifier, &expected)
        .map_err(|e| IdTokenError::Invalid(e.to_string()))?;
    Ok(IdClaims {
        subject: claims.subject().as_str().to_owned(),
        email: claims.email().map(|e| e.as_str().to_owned()),
        name: claims
            .name()
            .and_then(|n| n.get(None))
            .map(|n| n.as_str().to_owned()),
    })
}

/// The `kid` of the token's header, if any.
fn header_kid(token: &str) -> Result<Option<String>, IdTokenError> {
    let header = token
        .split('.')
        .next()
        .ok_or_else(|| IdTokenError::Malformed("no header".to_owned()))?;
    let bytes = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|e| IdTokenError::Malformed(e.to_string()))?;
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| IdTokenError::Malformed(e.to_string()))?;
    Ok(value.get("kid").and_then(|k| k.as_str()).map(str::to_owned))
}
