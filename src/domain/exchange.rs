//! The token-exchange policy (RFC 8693 §2.1, §2.2.2): a caller may exchange only for
//! the audiences it is allowed, and the downstream token carries at most what the
//! subject holds and the audience may receive.

use super::digest::Sha256;

use super::scope::Scopes;

/// Why the policy refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// RFC 8693 `invalid_target`.
    #[error("{0}")]
    Target(String),
    /// RFC 6749 `invalid_scope`.
    #[error("{0}")]
    Scope(String),
}

/// The scopes of the downstream token: the requested ones when each is held by the
/// subject and allowed for the audience; without a request, everything both allow.
pub fn scopes(
    subject: &Scopes,
    allowed: &Scopes,
    requested: Option<&Scopes>,
) -> Result<Scopes, PolicyError> {
    let grantable = subject.intersection(allowed);
    match requested {
        Some(requested) => {
            let excess = requested.missing_from(&grantable);
            if excess.is_empty() {
                Ok(requested.clone())
            } else {
                Err(PolicyError::Scope(format!(
                    "not held by the subject or not allowed for this audience: {excess}"
                )))
            }
        }
        None if grantable.is_empty() => Err(PolicyError::Scope(
            "the subject holds no scope this audience may receive".to_owned(),
        )),
        None => Ok(grantable),
    }
}

/// Whether `caller` may exchange for `audience`.
pub fn target(allowed: &[String], audience: &str) -> Result<(), PolicyError> {
    if allowed.iter().any(|a| a == audience) {
        Ok(())
    } else {
        Err(PolicyError::Target(format!(
            "this client may not exchange tokens for `{audience}`"
        )))
    }
}

/// The cache key of an exchange: the subject token's digest (SHA-256, computed once
/// per request by the verifier's `token_digest`), the audience, the sorted scopes,
/// the requested token type and the actor token's digest, each length-prefixed so no
/// two requests share a key (and one subject's or actor's entry can never answer
/// another's).
pub fn cache_key(
    subject_digest: &[u8; 32],
    audience: &str,
    scopes: &Scopes,
    token_type: &str,
    actor_digest: Option<&[u8; 32]>,
) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(subject_digest);
    for part in [audience.as_bytes(), token_type.as_bytes()] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    hasher.update((scopes.len() as u64).to_be_bytes());
    for scope in scopes.iter() {
        hasher.update((scope.len() as u64).to_be_bytes());
        hasher.update(scope.as_bytes());
    }
    match actor_digest {
        Some(actor) => {
            hasher.update([1]);
            hasher.update(actor);
        }
        None => hasher.update([0]),
    }
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> Scopes {
        Scopes::parse(text).unwrap()
    }

    #[test]
    fn scopes_are_the_intersection_or_the_request_within_it() {
        let subject = s("notes:read notes:write openid");
        let allowed = s("notes:read calendar:read");
        assert_eq!(scopes(&subject, &allowed, None), Ok(s("notes:read")));
        assert_eq!(
            scopes(&subject, &allowed, Some(&s("notes:read"))),
            Ok(s("notes:read"))
        );
        assert!(matches!(
            scopes(&subject, &allowed, Some(&s("notes:write"))),
            Err(PolicyError::Scope(_))
        ));
        assert!(matches!(
            scopes(&subject, &allowed, Some(&s("calendar:read"))),
            Err(PolicyError::Scope(_))
        ));
        assert!(matches!(
            scopes(&s("openid"), &allowed, None),
            Err(PolicyError::Scope(_))
        ));
    }

    #[test]
    fn targets_must_be_allowed_for_the_caller() {
        let allowed = vec!["https://api.example".to_owned()];
        assert!(target(&allowed, "https://api.example").is_ok());
        assert!(target(&allowed, "https://api.example/").is_err());
        assert!(target(&[], "https://api.example").is_err());
    }

    #[test]
    fn keys_separate_every_part() {
        let (tok, tok2, x, y) = ([1; 32], [2; 32], [3; 32], [4; 32]);
        let one = s("a b");
        let base = cache_key(&tok, "aud", &one, "at", None);
        assert_ne!(base, cache_key(&tok2, "aud", &one, "at", None));
        assert_ne!(base, cache_key(&tok, "aud2", &one, "at", None));
        assert_ne!(base, cache_key(&tok, "aud", &s("a"), "at", None));
        assert_ne!(base, cache_key(&tok, "aud", &one, "at", Some(&tok)));
        assert_ne!(
            cache_key(&tok, "aud", &one, "at", Some(&x)),
            cache_key(&tok, "aud", &one, "at", Some(&y))
        );
        assert_ne!(base, cache_key(&tok, "aud", &one, "jwt", None));
        assert_eq!(base, cache_key(&tok, "aud", &s("b a"), "at", None));
        assert_ne!(
            cache_key(&tok, "ab", &s("c"), "at", None),
            cache_key(&tok, "a", &s("bc"), "at", None)
        );
        assert_ne!(
            cache_key(&tok, "aud", &s("ab"), "at", None),
            cache_key(&tok, "aud", &s("a b"), "at", None)
        );
    }
}
