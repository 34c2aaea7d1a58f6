//! ID token validation for the upstream login (OpenID Connect Core §3.1.3.7). The
//! signature is checked as the provider's access tokens are (signature.rs:
//! jsonwebtoken over aws-lc-rs, the keys of the discovery snapshot's JWKS, asymmetric
//! algorithms the provider advertises only — the broker verifies as a public client,
//! so `none` and an HMAC token signed with some secret can never pass). The claims of
//! a token whose signature holds are judged by openidconnect's verifier (issuer,
//! audience, nonce, expiry against the broker's clock with the configured leeway);
//! it leaves `azp` and a future `iat` to the caller, both checked here, as is
//! `at_hash` when the access token is given. A `kid` the snapshot does not know causes
//! one rate-limited JWKS refetch through the [`SnapshotSource`] the caller hands in
//! (the discovery actor's handle), as access-token verification does.

mod error;
mod signature;
#[cfg(test)]
mod tests;

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, TimeDelta, Utc};
use openidconnect::core::{CoreIdToken, CoreIdTokenClaims, CoreIdTokenVerifier, CoreJsonWebKeySet};
use openidconnect::{ClientId, IssuerUrl, Nonce};
use serde_json::{Map, Value};

pub use self::error::IdTokenError;
use self::error::refusal;
pub use self::signature::allowed_algs;

use crate::clock::{Clock, UnixSeconds};
use crate::config::Issuer;
use crate::redact::Redacted;
use crate::upstream::jwks::KeySet;
use crate::upstream::snapshot::{Snapshot, SnapshotSource};

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
    /// Every claim, for the configured identity claims (`domain::identity`).
    pub payload: Map<String, Value>,
}

/// What a valid ID token must say. `Debug` hides the nonce and the access token.
#[derive(Clone, Copy)]
pub struct Expected<'a> {
    pub issuer: &'a Issuer,
    /// The broker's client id at the provider.
    pub client_id: &'a str,
    /// The nonce the broker sent with the authorization request; `None` for the ID
    /// token of a provider refresh, which the original nonce is not kept for (OIDC
    /// Core §12.2; the subject is compared instead, by the caller).
    pub nonce: Option<&'a str>,
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
            .field("nonce", &Redacted::option(&self.nonce))
            .field("access_token", &Redacted::option(&self.access_token))
            .field("leeway", &self.leeway)
            .finish()
    }
}

/// The most skew tolerated whatever the configuration says.
pub const MAX_LEEWAY: Duration = Duration::from_secs(300);

/// Validates `id_token` for the broker's upstream client `client_id` (no `at_hash`
/// check; see [`validate_with`]).
pub async fn validate(
    discovery: &dyn SnapshotSource,
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
        nonce: Some(nonce),
        access_token: None,
        leeway,
    };
    validate_with(discovery, &expected, id_token, clock).await
}

/// Validates `id_token` against the provider's current keys and algorithms; a `kid`
/// they lack causes one rate-limited refetch and a second try.
pub async fn validate_with(
    discovery: &dyn SnapshotSource,
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
                .refetched_for(&kid)
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
    check(
        &snapshot.keys,
        &snapshot.info.id_token_signing_alg_values_supported,
        expected,
        id_token,
        clock,
    )
}

/// The validation itself, given the keys and the algorithms the provider advertises
/// (`id_token_signing_alg_values_supported`; empty means any asymmetric one): the
/// signature first, then the claims of a token whose signature holds.
pub fn check(
    keys: &KeySet,
    advertised_algs: &[String],
    expected: &Expected<'_>,
    id_token: &str,
    clock: &Clock,
) -> Result<IdClaims, IdTokenError> {
    let alg = signature::verify(keys, &allowed_algs(advertised_algs), id_token)?;
    let token: CoreIdToken = id_token
        .parse()
        .map_err(|e: serde_json::Error| IdTokenError::Malformed(e.to_string()))?;
    let issuer_url = IssuerUrl::new(expected.issuer.as_str().to_owned())
        .map_err(|e| IdTokenError::Invalid(format!("the issuer is not a URL: {e}")))?;
    let skew = skew(expected.leeway);
    let time_clock = clock.clone();
    // openidconnect judges the claims (iss, aud, exp, nonce; typ, cty and crit in the
    // header) but not the signature, which `signature::verify` checked just above with
    // jsonwebtoken: an empty key set, and its signature step turned off.
    let verifier = CoreIdTokenVerifier::new_public_client(
        ClientId::new(expected.client_id.to_owned()),
        issuer_url,
        CoreJsonWebKeySet::new(Vec::new()),
    )
    .insecure_disable_signature_check()
    // The token is judged as if it were `leeway` earlier, so an `exp` that just passed
    // by a slightly fast provider's clock still counts. Read on each call: tests move
    // the broker's clock.
    .set_time_fn(move || {
        let now = DateTime::<Utc>::from(time_clock.now());
        now.checked_sub_signed(skew).unwrap_or(now)
    });
    let claims = match expected.nonce {
        Some(nonce) => token.claims(&verifier, &Nonce::new(nonce.to_owned())),
        None => token.claims(&verifier, |_: Option<&Nonce>| Ok(())),
    }
    .map_err(refusal)?;
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
        && signature::access_token_hash(alg, access_token) != at_hash.as_str()
    {
        return Err(IdTokenError::AccessTokenHash(
            "at_hash differs from the access token's hash".to_owned(),
        ));
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
        payload: payload(id_token)?,
    })
}

/// The payload of a token whose signature and claims held, as JSON: where
/// `[upstream.claims]` finds the identity.
fn payload(id_token: &str) -> Result<Map<String, Value>, IdTokenError> {
    let part = id_token.split('.').nth(1).unwrap_or_default();
    URL_SAFE_NO_PAD
        .decode(part)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| IdTokenError::Malformed("the payload is not a JSON object".to_owned()))
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

fn skew(leeway: Duration) -> TimeDelta {
    let secs = leeway.min(MAX_LEEWAY).as_secs();
    TimeDelta::try_seconds(i64::try_from(secs).unwrap_or(0)).unwrap_or_default()
}

fn unix(time: DateTime<Utc>) -> UnixSeconds {
    u64::try_from(time.timestamp()).unwrap_or(0)
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
