//! Reading the document's HTTP response: errors, content type, bounded body, and
//! how long it may be cached.

use super::*;
use reqwest::header::{DATE, EXPIRES, HeaderValue};
use std::time::SystemTime;

/// Maps a transport failure to a description fit for users; the cause is logged.
pub(super) fn request_error(client_id: &str, error: &reqwest::Error) -> CimdError {
    let mut cause = String::new();
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(inner) = source {
        if let Some(refused) = inner.downcast_ref::<AddressRefused>() {
            tracing::info!(
                client_id,
                kind = refused.0,
                "client metadata document host refused"
            );
            // The address class is not repeated: it would tell callers which internal
            // names exist.
            return CimdError::Refused("the host does not resolve to a public address".to_owned());
        }
        cause.push_str(": ");
        cause.push_str(&inner.to_string());
        source = inner.source();
    }
    tracing::info!(client_id, cause, "client metadata document fetch failed");
    CimdError::Fetch(
        if error.is_timeout() {
            "the request timed out"
        } else if error.is_connect() {
            "the host could not be reached"
        } else {
            "the request failed"
        }
        .to_owned(),
    )
}

/// `application/json` or an `application/…+json` type (draft §4).
pub(super) fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || essence
            .strip_prefix("application/")
            .is_some_and(|sub| sub.len() > 5 && sub.ends_with("+json"))
}

/// Reads the body, stopping as soon as it exceeds `max` bytes (draft §8.7).
pub(super) async fn read_limited(
    client_id: &str,
    mut response: reqwest::Response,
    max: usize,
) -> Result<Vec<u8>, CimdError> {
    let too_large = || CimdError::Invalid(format!("the document is larger than {max} bytes"));
    if response
        .content_length()
        .is_some_and(|length| length > u64::try_from(max).unwrap_or(u64::MAX))
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| request_error(client_id, &e))?
    {
        if body.len() + chunk.len() > max {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// How long a response may be reused (RFC 9111 §4.2), within the policy's bounds:
/// `max-age`, else `Expires` minus `Date`, less `Age`; `no-store`/`no-cache` and
/// malformed values mean stale (so `min_ttl`); none of them means `default_ttl`.
/// `now` (the broker clock) stands in for a missing or invalid `Date`.
pub(super) fn freshness(headers: &HeaderMap, policy: &CimdPolicy, now: SystemTime) -> Duration {
    let mut max_age: Option<Option<u64>> = None;
    let mut uncacheable = false;
    for value in headers.get_all(CACHE_CONTROL) {
        let Ok(text) = value.to_str() else {
            uncacheable = true;
            continue;
        };
        for directive in text.split(',') {
            let (name, argument) = directive
                .split_once('=')
                .map_or((directive, None), |(name, arg)| (name, Some(arg)));
            match name.trim().to_ascii_lowercase().as_str() {
                "no-store" | "no-cache" => uncacheable = true,
                "max-age" => {
                    max_age =
                        Some(argument.and_then(|a| delta_seconds(a.trim().trim_matches('"'))));
                }
                _ => {}
            }
        }
    }
    let lifetime = match (uncacheable, max_age) {
        (false, Some(Some(seconds))) => Duration::from_secs(seconds),
        // Malformed freshness information means stale (RFC 9111 §4.2.1).
        (true, _) | (false, Some(None)) => Duration::ZERO,
        (false, None) => match expires_lifetime(headers, now) {
            Some(lifetime) => lifetime,
            None => return policy.default_ttl,
        },
    };
    let age = headers
        .get(AGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| delta_seconds(v.trim()))
        .unwrap_or(0);
    lifetime
        .saturating_sub(Duration::from_secs(age))
        .max(policy.min_ttl)
        .min(policy.max_ttl)
}

/// RFC 9111 §1.2.2 delta-seconds: digits only; a value too large to represent is
/// taken as the largest representable, not as malformed.
fn delta_seconds(text: &str) -> Option<u64> {
    (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
        .then(|| text.parse().unwrap_or(u64::MAX))
}

/// `Expires` minus `Date` (RFC 9111 §4.2.1), or `None` without `Expires`. An invalid
/// `Expires` such as `0` means already expired (§5.3).
fn expires_lifetime(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let date = |value: &HeaderValue| {
        value
            .to_str()
            .ok()
            .and_then(|text| httpdate::parse_http_date(text.trim()).ok())
    };
    let Some(expires) = date(headers.get(EXPIRES)?) else {
        return Some(Duration::ZERO);
    };
    let sent = headers.get(DATE).and_then(date).unwrap_or(now);
    Some(expires.duration_since(sent).unwrap_or(Duration::ZERO))
}
