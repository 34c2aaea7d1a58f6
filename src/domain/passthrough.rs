//! `tokens.mode = "passthrough"`: what the broker tells a client about the provider's
//! access token it hands on, and how long it remembers having handed it on. The
//! token is read without verification: it came from the provider's token endpoint
//! over TLS, and nothing here grants anything — it only describes.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::Value;

use super::scope::Scopes;

/// What a provider's JWT access token says of itself; empty for an opaque token.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Carried {
    pub expires_at: Option<u64>,
    /// `scope` or `scp`, when the token names its scopes.
    pub scopes: Option<Scopes>,
}

/// Reads `exp` and the scopes from a compact JWS's payload.
pub fn carried(token: &str) -> Carried {
    #[derive(Deserialize)]
    struct Claims {
        exp: Option<u64>,
        scope: Option<String>,
        scp: Option<Value>,
    }
    let claims = token
        .split('.')
        .nth(1)
        .and_then(|payload| URL_SAFE_NO_PAD.decode(payload).ok())
        .and_then(|bytes| serde_json::from_slice::<Claims>(&bytes).ok());
    let Some(claims) = claims else {
        return Carried::default();
    };
    let named = claims.scope.is_some() || claims.scp.is_some();
    Carried {
        expires_at: claims.exp,
        scopes: named.then(|| scopes_of(claims.scope.as_deref(), claims.scp.as_ref())),
    }
}

/// The token response's `scope` (RFC 6749 §5.1: the scope of the access token issued):
/// what the token carries, else what the provider said it granted, else what was
/// granted at the broker — which the provider, by saying nothing, granted in full.
pub fn response_scope(carried: &Carried, provider_said: Option<&str>, granted: &Scopes) -> String {
    if let Some(scopes) = &carried.scopes {
        return scopes.to_string();
    }
    match provider_said.map(Scopes::parse) {
        Some(Ok(scopes)) => scopes.to_string(),
        _ => granted.to_string(),
    }
}

/// Until when the broker must remember a handed-out token: as long as the verifier
/// may still accept it (its `exp` plus the leeway); a token of unknown lifetime, for
/// `fallback` seconds.
pub fn remember_until(
    carried: &Carried,
    provider_expires_at: Option<u64>,
    now: u64,
    leeway: u64,
    fallback: u64,
) -> u64 {
    match carried.expires_at.max(provider_expires_at) {
        Some(exp) => exp.saturating_add(leeway),
        None => now.saturating_add(fallback),
    }
}

/// `scope` (space-separated, RFC 9068) or `scp` (a string as Entra writes it, or an
/// array as Okta does).
pub fn scopes_of(scope: Option<&str>, scp: Option<&Value>) -> Scopes {
    let text = match (scope, scp) {
        (Some(scope), _) => scope.to_owned(),
        (None, Some(Value::String(s))) => s.clone(),
        (None, Some(Value::Array(items))) => items
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    };
    Scopes::parse(&text).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn jwt(claims: &Value) -> String {
        format!(
            "{}.{}.sig",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256"}"#),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        )
    }

    #[test]
    fn the_scope_reported_is_the_tokens_own() {
        let granted = Scopes::of(["notes:read", "offline_access"]);
        let token = carried(&jwt(&json!({"exp": 100, "scope": "openid notes:read"})));
        assert_eq!(token.expires_at, Some(100));
        assert_eq!(
            response_scope(&token, Some("profile"), &granted),
            "notes:read openid"
        );
        let opaque = carried("opaque-token");
        assert_eq!(opaque, Carried::default());
        assert_eq!(
            response_scope(&opaque, Some("notes:read profile"), &granted),
            "notes:read profile"
        );
        assert_eq!(
            response_scope(&opaque, None, &granted),
            "notes:read offline_access"
        );
        let scp = carried(&jwt(&json!({"scp": ["a", "b"]})));
        assert_eq!(response_scope(&scp, None, &granted), "a b");
    }

    #[test]
    fn a_token_is_remembered_while_it_may_verify() {
        let token = carried(&jwt(&json!({"exp": 100})));
        assert_eq!(remember_until(&token, Some(90), 50, 30, 999), 130);
        assert_eq!(remember_until(&token, Some(120), 50, 30, 999), 150);
        assert_eq!(remember_until(&Carried::default(), None, 50, 30, 999), 1049);
    }

    #[test]
    fn scopes_come_from_scope_or_scp() {
        assert_eq!(scopes_of(Some("a b"), None).to_string(), "a b");
        assert_eq!(
            scopes_of(None, Some(&Value::String("c d".into()))).to_string(),
            "c d"
        );
        assert_eq!(scopes_of(None, Some(&json!(["e", "f"]))).to_string(), "e f");
        assert!(scopes_of(None, None).is_empty());
    }
}
