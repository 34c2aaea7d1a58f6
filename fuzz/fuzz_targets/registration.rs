//! An RFC 7591 registration body as `POST /register` reads it: an accepted
//! registration round-trips (what the response echoes registers again as the same
//! client with the same fingerprint) and keeps every rule: authorization_code (and
//! refresh_token) with `code` and 1–20 redirect URIs that are absolute, without
//! fragment or wildcard, https for a web client, never a scheme that runs or reads
//! something; or client_credentials for a confidential client, without redirect URIs
//! or response types; keys only with private_key_jwt, and then public ones.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use token_broker::domain::client_metadata::{
    ApplicationType, RedirectPolicy, SupportedScopes, TokenEndpointAuthMethod, check_public_jwks,
    validate,
};
use token_broker::domain::scope::Scopes;
use url::Url;

fuzz_target!(|body: &[u8]| {
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return;
    };
    let policy = RedirectPolicy {
        allow_private_use_schemes: true,
        allowed_patterns: Vec::new(),
    };
    let supported = match body.first() {
        // Which of the two configurations is fuzzed follows from the body, so both are.
        Some(b) if b % 2 == 0 => SupportedScopes(None),
        _ => SupportedScopes(Scopes::parse("openid notes:read notes:write").ok()),
    };
    let Ok(meta) = validate(&value, &policy, &supported) else {
        return;
    };
    let code = meta.grant_types.iter().any(|g| g == "authorization_code");
    if code {
        assert!((1..=20).contains(&meta.redirect_uris.len()));
        assert_eq!(meta.response_types, ["code"]);
    } else {
        assert!(meta.grant_types.iter().any(|g| g == "client_credentials"));
        assert!(meta.redirect_uris.is_empty() && meta.response_types.is_empty());
    }
    if meta.grant_types.iter().any(|g| g == "client_credentials") {
        assert_ne!(meta.token_endpoint_auth_method, TokenEndpointAuthMethod::None);
    }
    if meta.token_endpoint_auth_method == TokenEndpointAuthMethod::PrivateKeyJwt {
        assert!(meta.jwks.is_some() != meta.jwks_uri.is_some());
        if let Some(jwks) = &meta.jwks {
            assert_eq!(check_public_jwks(jwks), Ok(()));
        }
    } else {
        assert!(meta.jwks.is_none() && meta.jwks_uri.is_none());
    }
    for uri in &meta.redirect_uris {
        assert!(!uri.contains('*'), "{uri}");
        let url = Url::parse(uri).unwrap_or_else(|_| panic!("not absolute: {uri}"));
        assert!(url.fragment().is_none(), "{uri}");
        let loopback_http = url.scheme() == "http"
            && matches!(url.host(), Some(url::Host::Ipv4(ip)) if ip.is_loopback())
                | matches!(url.host(), Some(url::Host::Ipv6(ip)) if ip.is_loopback())
                | (url.host_str() == Some("localhost"));
        let scheme = url.scheme();
        assert!(
            loopback_http
                || ![
                    "javascript",
                    "data",
                    "file",
                    "vbscript",
                    "about",
                    "blob",
                    "http"
                ]
                .contains(&scheme),
            "{uri}"
        );
        if meta.application_type == ApplicationType::Web {
            assert_eq!(scheme, "https", "a web client's {uri}");
        }
    }
    assert!(meta.grant_types.iter().all(|g| {
        g == "authorization_code" || g == "refresh_token" || g == "client_credentials"
    }));
    if let (Some(scope), SupportedScopes(Some(allowed))) = (&meta.scope, &supported) {
        assert!(scope.is_subset(allowed));
    }
    // The response's echo registers as the same client.
    let echoed = Value::Object(meta.to_response_json());
    let again = validate(&echoed, &policy, &supported)
        .unwrap_or_else(|e| panic!("the echo of an accepted registration is refused: {e}"));
    assert_eq!(again, meta);
    assert_eq!(again.fingerprint(), meta.fingerprint());
});
