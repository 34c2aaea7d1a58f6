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
