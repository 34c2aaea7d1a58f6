use super::*;

fn ok(body: Value) -> ClientMetadata {
    validate(
        &body,
        &RedirectPolicy {
            allow_private_use_schemes: true,
            ..Default::default()
        },
        &SupportedScopes(None),
    )
    .unwrap()
}

#[test]
fn defaults_follow_rfc7591() {
    let m = ok(json!({"redirect_uris": ["https://a.example/cb"]}));
    assert_eq!(m.grant_types, ["authorization_code"]);
    assert_eq!(m.response_types, ["code"]);
    assert_eq!(
        m.token_endpoint_auth_method,
        TokenEndpointAuthMethod::ClientSecretBasic
    );
}

#[test]
fn allow_list_patterns_match_ports_and_paths() {
    let policy = RedirectPolicy {
        allow_private_use_schemes: true,
        allowed_patterns: vec![
            "https://claude.ai/api/mcp/auth_callback".into(),
            "http://127.0.0.1:*/*".into(),
        ],
    };
    let check = |u: &str| {
        validate(
            &json!({"redirect_uris": [u]}),
            &policy,
            &SupportedScopes(None),
        )
    };
    assert!(check("https://claude.ai/api/mcp/auth_callback").is_ok());
    assert!(check("http://127.0.0.1:5555/callback").is_ok());
    assert!(matches!(check("https://claude.ai/other"), Err(Redirect(_))));
    assert!(matches!(
        check("http://localhost:5555/callback"),
        Err(Redirect(_))
    ));
}

/// Found by `fuzz/fuzz_targets/redirect_patterns.rs`: a `:*` outside the authority was
/// taken for "any port" and cut out of the pattern, widening it.
#[test]
fn only_a_star_port_means_any_port() {
    let policy = |pattern: &str| RedirectPolicy {
        allow_private_use_schemes: true,
        allowed_patterns: vec![pattern.into()],
    };
    let check = |pattern: &str, u: &str| {
        validate(
            &json!({"redirect_uris": [u]}),
            &policy(pattern),
            &SupportedScopes(None),
        )
        .is_ok()
    };
    assert!(!check(
        "https://a.example/cb:*",
        "https://a.example:8443/cb"
    ));
    assert!(!check("app:/:*/*", "app:/elsewhere"));
    assert!(check("https://a.example:*/cb", "https://a.example:8443/cb"));
}

#[test]
fn fingerprints_ignore_order_but_not_content() {
    let a = ok(
        json!({"redirect_uris": ["https://a.example/cb"], "grant_types": ["authorization_code", "refresh_token"], "client_name": "A"}),
    );
    let b = ok(
        json!({"client_name": "A", "grant_types": ["refresh_token", "authorization_code"], "redirect_uris": ["https://a.example/cb"]}),
    );
    let c = ok(
        json!({"redirect_uris": ["https://a.example/cb2"], "grant_types": ["authorization_code", "refresh_token"], "client_name": "A"}),
    );
    assert_eq!(a.fingerprint(), b.fingerprint());
    assert_ne!(a.fingerprint(), c.fingerprint());
}

#[test]
fn names_and_uris_with_bidi_or_zero_width_characters_are_refused() {
    let policy = RedirectPolicy::default();
    for body in [
        json!({"redirect_uris": ["https://a.example/cb"], "client_name": "Evil\u{202E}ppA dooG"}),
        json!({"redirect_uris": ["https://a.example/cb"], "client_name#en": "A\u{200B}pp"}),
        json!({"redirect_uris": ["https://a.example/cb"], "client_uri": "https://a.example/\u{2066}"}),
        json!({"redirect_uris": ["https://a.example/cb\u{202E}"]}),
    ] {
        let refused = validate(&body, &policy, &SupportedScopes(None));
        assert!(
            matches!(&refused, Err(Meta(d)) if d.contains("invisible control character")),
            "{body}: {refused:?}"
        );
    }
    assert!(
        ok(json!({"redirect_uris": ["https://a.example/cb"], "client_name": "Écrivain 日本"}))
            .client_name
            .is_some()
    );
}

#[test]
fn scopes_are_checked_against_what_is_supported() {
    let supported = SupportedScopes(Some(Scopes::parse("notes:read").unwrap()));
    let policy = RedirectPolicy::default();
    let body = json!({"redirect_uris": ["https://a.example/cb"], "scope": "notes:write"});
    assert!(matches!(validate(&body, &policy, &supported), Err(Meta(_))));
}

#[test]
fn application_type_is_honoured_and_inferred_when_omitted() {
    let policy = RedirectPolicy {
        allow_private_use_schemes: true,
        ..Default::default()
    };
    let check = |body: Value| validate(&body, &policy, &SupportedScopes(None));
    for uri in [
        "http://127.0.0.1:5555/cb",
        "http://localhost/cb",
        "cursor://a.b/cb",
    ] {
        let refused = check(json!({"redirect_uris": [uri], "application_type": "web"}));
        assert!(matches!(refused, Err(Redirect(_))), "{uri}: {refused:?}");
    }
    let web = check(json!({"redirect_uris": ["https://a.example/cb"], "application_type": "web"}));
    assert_eq!(web.unwrap().application_type, ApplicationType::Web);
    // VS Code: native with a claimed https URI beside loopback ones (RFC 8252 §7.2).
    let native = ok(json!({"application_type": "native",
        "redirect_uris": ["https://vscode.dev/redirect", "http://127.0.0.1:33418/"]}));
    assert_eq!(native.application_type, ApplicationType::Native);
    // Omitted (most MCP clients): inferred, echoed, never refused for it.
    let cursor = ok(
        json!({"redirect_uris": ["cursor://anysphere.cursor-mcp/oauth/callback",
        "https://www.cursor.com/agents/mcp/oauth/callback", "http://localhost:8787/callback"]}),
    );
    assert_eq!(cursor.application_type, ApplicationType::Native);
    assert_eq!(cursor.to_response_json()["application_type"], "native");
    let claude = ok(json!({"redirect_uris": ["https://claude.ai/api/mcp/auth_callback"]}));
    assert_eq!(claude.application_type, ApplicationType::Web);
}

const EC_KEY: &str = r#"{"kty": "EC", "crv": "P-256", "kid": "k1",
    "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
    "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}"#;

fn refused(body: Value) -> MetadataError {
    validate(&body, &RedirectPolicy::default(), &SupportedScopes(None)).unwrap_err()
}

#[test]
fn a_machine_registers_client_credentials_with_its_keys_and_no_redirects() {
    let key: Value = serde_json::from_str(EC_KEY).unwrap();
    let m = ok(json!({"grant_types": ["client_credentials"],
        "token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": [key]}}));
    assert_eq!(
        m.token_endpoint_auth_method,
        TokenEndpointAuthMethod::PrivateKeyJwt
    );
    assert!(m.redirect_uris.is_empty() && m.response_types.is_empty());
    assert!(!m.token_endpoint_auth_method.uses_secret());
    let echoed = m.to_response_json();
    assert_eq!(echoed["jwks"]["keys"][0]["kid"], "k1");
    // The echo registers again as the same client (the registration fuzz property).
    let again = ok(Value::Object(echoed));
    assert_eq!((&again, again.fingerprint()), (&m, m.fingerprint()));
    let by_uri = ok(json!({"grant_types": ["client_credentials"],
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks_uri": "https://bot.example/jwks.json"}));
    assert_eq!(
        by_uri.jwks_uri.as_deref(),
        Some("https://bot.example/jwks.json")
    );
    let with_secret = ok(json!({"grant_types": ["client_credentials"]}));
    assert!(with_secret.token_endpoint_auth_method.uses_secret());
}

#[test]
fn machine_registrations_that_break_a_rule_are_refused() {
    let key: Value = serde_json::from_str(EC_KEY).unwrap();
    let cases = [
        // A public client cannot use client_credentials.
        json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "none"}),
        // private_key_jwt needs exactly one of jwks and jwks_uri.
        json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "private_key_jwt"}),
        json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "private_key_jwt",
            "jwks": {"keys": [key.clone()]}, "jwks_uri": "https://bot.example/jwks"}),
        // Keys without private_key_jwt.
        json!({"grant_types": ["client_credentials"], "jwks": {"keys": [key.clone()]}}),
        // A private key.
        json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "private_key_jwt",
            "jwks": {"keys": [{"kty": "RSA", "n": "sXch", "e": "AQAB", "d": "secret"}]}}),
        // An HMAC key.
        json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "private_key_jwt",
            "jwks": {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}}),
        // jwks_uri over plain http to another host.
        json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "private_key_jwt",
            "jwks_uri": "http://bot.example/jwks"}),
        // Redirect URIs without the code grant, and refresh_token alone.
        json!({"grant_types": ["client_credentials"], "redirect_uris": ["https://a.example/cb"]}),
        json!({"grant_types": ["refresh_token"]}),
    ];
    for body in cases {
        assert!(
            matches!(
                refused(body.clone()),
                MetadataError::InvalidClientMetadata(_) | MetadataError::InvalidRedirectUri(_)
            ),
            "{body}"
        );
    }
}
