use super::*;

fn v4(text: &str) -> AddressClass {
    classify(IpAddr::V4(text.parse().unwrap()))
}

fn v6(text: &str) -> AddressClass {
    classify(IpAddr::V6(text.parse().unwrap()))
}

#[test]
fn ipv4_ranges_are_classified() {
    for ip in [
        "8.8.8.8",
        "1.1.1.1",
        "172.32.0.1",
        "100.128.0.1",
        "192.169.0.1",
    ] {
        assert_eq!(v4(ip), Public, "{ip}");
    }
    for ip in ["127.0.0.1", "127.255.255.254"] {
        assert_eq!(v4(ip), Loopback, "{ip}");
    }
    for ip in ["10.0.0.1", "172.16.0.1", "172.31.255.255", "192.168.1.1"] {
        assert_eq!(v4(ip), Private, "{ip}");
    }
    let special = [
        ("0.0.0.0", "unspecified"),
        ("0.1.2.3", "unspecified"),
        ("100.64.0.1", "shared (CGNAT)"),
        ("100.127.255.255", "shared (CGNAT)"),
        ("169.254.169.254", "link-local"),
        ("192.0.0.8", "IETF protocol"),
        ("192.0.2.1", "documentation"),
        ("198.51.100.7", "documentation"),
        ("203.0.113.9", "documentation"),
        ("192.88.99.1", "6to4 relay"),
        ("198.19.0.1", "benchmarking"),
        ("224.0.0.1", "multicast"),
        ("239.255.255.250", "multicast"),
        ("255.255.255.255", "broadcast"),
        ("240.0.0.1", "reserved"),
    ];
    for (ip, kind) in special {
        assert_eq!(v4(ip), Special(kind), "{ip}");
    }
}

#[test]
fn ipv6_ranges_are_classified() {
    for ip in ["2606:4700::1111", "2a00:1450:4001::200e", "2001:4860::8888"] {
        assert_eq!(v6(ip), Public, "{ip}");
    }
    assert_eq!(v6("::1"), Loopback);
    assert_eq!(v6("fd12:3456::1"), Private);
    assert_eq!(v6("fc00::1"), Private);
    let special = [
        ("::", "unspecified"),
        ("fe80::1", "link-local"),
        ("fec0::1", "site-local"),
        ("ff02::1", "multicast"),
        ("2001:db8::1", "documentation"),
        ("3fff::1", "documentation"),
        ("2001::1", "IETF protocol"),
        ("2002:c0a8:101::1", "6to4"),
        ("100::1", "discard-only"),
        ("64:ff9b:1::1", "local-use NAT64"),
        ("fd00:ec2::254", "instance metadata"),
        ("::10.0.0.1", "reserved"),
        ("4000::1", "reserved"),
    ];
    for (ip, kind) in special {
        assert_eq!(v6(ip), Special(kind), "{ip}");
    }
}

#[test]
fn embedded_ipv4_is_judged_by_its_ipv4_class() {
    assert_eq!(v6("::ffff:127.0.0.1"), Loopback);
    assert_eq!(v6("::ffff:10.1.2.3"), Private);
    assert_eq!(v6("::ffff:169.254.169.254"), Special("link-local"));
    assert_eq!(v6("::ffff:8.8.8.8"), Public);
    assert_eq!(v6("64:ff9b::a9fe:a9fe"), Special("link-local"));
    assert_eq!(v6("64:ff9b::808:808"), Public);
}

#[test]
fn allow_flags_open_only_their_class() {
    let strict = AddressRules {
        allow_loopback: false,
        allow_private: false,
    };
    let open = AddressRules {
        allow_loopback: true,
        allow_private: true,
    };
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    assert!(strict.check(ip("8.8.8.8")).is_ok());
    assert_eq!(strict.check(ip("127.0.0.1")), Err("loopback"));
    assert_eq!(strict.check(ip("192.168.0.1")), Err("private-network"));
    assert!(open.check(ip("127.0.0.1")).is_ok());
    assert!(open.check(ip("::ffff:127.0.0.1")).is_ok());
    assert!(open.check(ip("fd00::1")).is_ok());
    for never in [
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "fd00:ec2::254",
        "ff02::1",
    ] {
        assert!(open.check(ip(never)).is_err(), "{never}");
    }
}

#[test]
fn raw_url_tricks_are_not_client_ids() {
    for bad in [
        "https:///example.com/x",
        "https://example.com\\@evil.com/x",
        "https://example.com/a/%2e%2E/b",
        "https://example.com/./b",
        "https://0x7f.1/x",
        "https://[0::1]/x",
        " https://example.com/x",
        "https://example.com/x#",
        "https://example.com?x=1",
        "ftp://example.com/x",
    ] {
        assert!(!is_cimd_client_id(bad), "{bad}");
    }
    for good in [
        "https://example.com:8443/x",
        "https://example.com/x?v=1",
        "https://[2606:4700::1111]/x",
        "https://Example.com/x",
    ] {
        assert!(is_cimd_client_id(good), "{good}");
    }
}

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(*name, value.parse().unwrap());
    }
    map
}

#[test]
fn freshness_follows_cache_control_within_bounds() {
    let policy = CimdPolicy::default();
    let now = std::time::SystemTime::now();
    let secs = |pairs: &[(&'static str, &str)]| freshness(&headers(pairs), &policy, now).as_secs();
    assert_eq!(secs(&[]), 3600);
    assert_eq!(secs(&[("cache-control", "public, max-age=600")]), 600);
    assert_eq!(
        secs(&[("cache-control", "max-age=600"), ("age", "100")]),
        500
    );
    assert_eq!(secs(&[("cache-control", "max-age=5")]), 60);
    assert_eq!(secs(&[("cache-control", "max-age=9999999")]), 86400);
    assert_eq!(secs(&[("cache-control", "no-store")]), 60);
    assert_eq!(secs(&[("cache-control", "max-age=600, No-Cache")]), 60);
    assert_eq!(secs(&[("cache-control", "max-age=soon")]), 60);
    assert_eq!(secs(&[("cache-control", "max-age=+600")]), 60);
    // Too large to represent is very large (RFC 9111 §1.2.2), not malformed.
    let huge = "max-age=99999999999999999999999";
    assert_eq!(secs(&[("cache-control", huge)]), 86400);
    assert_eq!(
        secs(&[
            ("cache-control", "max-age=600"),
            ("age", "99999999999999999999")
        ]),
        60
    );
}

#[test]
fn expires_counts_when_max_age_is_absent() {
    let policy = CimdPolicy::default();
    let now = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
    let secs = |pairs: &[(&'static str, &str)]| freshness(&headers(pairs), &policy, now).as_secs();
    let date = ("date", "Sun, 06 Nov 1994 08:49:37 GMT");
    assert_eq!(
        secs(&[date, ("expires", "Sun, 06 Nov 1994 08:59:37 GMT")]),
        600
    );
    assert_eq!(
        secs(&[
            date,
            ("expires", "Sun, 06 Nov 1994 08:59:37 GMT"),
            ("age", "100")
        ]),
        500
    );
    // Without Date, the broker's clock.
    assert_eq!(secs(&[("expires", "Sun, 06 Nov 1994 09:09:37 GMT")]), 1200);
    // Past, invalid (`0`) or far: within the bounds.
    assert_eq!(
        secs(&[date, ("expires", "Sat, 05 Nov 1994 08:49:37 GMT")]),
        60
    );
    assert_eq!(secs(&[date, ("expires", "0")]), 60);
    assert_eq!(
        secs(&[date, ("expires", "Sun, 06 Nov 2044 08:49:37 GMT")]),
        86400
    );
    // max-age wins over Expires.
    let both = [
        date,
        ("expires", "Sun, 06 Nov 1994 08:59:37 GMT"),
        ("cache-control", "max-age=300"),
    ];
    assert_eq!(secs(&both), 300);
}

#[test]
fn json_content_types() {
    let json = |value: &str| is_json(&headers(&[("content-type", value)]));
    assert!(json("application/json"));
    assert!(json("Application/JSON; charset=utf-8"));
    assert!(json("application/client-metadata+json"));
    assert!(!json("text/plain"));
    assert!(!json("application/+json"));
    assert!(!is_json(&HeaderMap::new()));
}

const ID: &str = "https://client.example/meta";

fn check(document: Value) -> Result<Fields, CimdError> {
    validate(
        ID,
        document.to_string().as_bytes(),
        &CimdPolicy::default().redirects,
    )
}

#[test]
fn documents_are_validated() {
    let ok = check(serde_json::json!({
        "client_id": ID, "redirect_uris": ["https://client.example/cb", "cursor://x/cb"],
        "client_name": "Client", "token_endpoint_auth_method": "none",
        "jwks": {"keys": [{"kty": "EC", "crv": "P-256", "x": "a", "y": "b"}]}
    }))
    .unwrap();
    assert_eq!(ok.redirect_uris.len(), 2);
    assert_eq!(ok.client_name.as_deref(), Some("Client"));
    let refused = [
        serde_json::json!([ID]),
        serde_json::json!({"redirect_uris": ["https://c/cb"]}),
        serde_json::json!({"client_id": ID, "redirect_uris": []}),
        serde_json::json!({"client_id": ID, "redirect_uris": [7]}),
        serde_json::json!({"client_id": ID, "redirect_uris": ["https://c/cb#x"]}),
        serde_json::json!({"client_id": ID, "redirect_uris": ["/relative"]}),
        serde_json::json!({"client_id": ID, "redirect_uris": ["javascript:alert(1)"]}),
        serde_json::json!({"client_id": ID, "redirect_uris": ["data:text/html,x"]}),
        serde_json::json!({"client_id": ID, "redirect_uris": ["http://client.example/cb"]}),
        serde_json::json!({"client_id": ID, "redirect_uris": ["https://c/cb", "file:///etc/x"]}),
        serde_json::json!({"client_id": ID, "redirect_uris": ["cursor://x/cb"],
            "application_type": "web"}),
        serde_json::json!({"client_id": ID, "redirect_uris": ["https://c/cb"], "client_name": 1}),
        serde_json::json!({"client_id": ID, "redirect_uris": ["https://c/cb"],
            "client_name": "Evil\u{202E}ppA dooG"}),
        serde_json::json!({"client_id": ID, "redirect_uris": ["https://c/cb"],
            "client_uri": "https://c/\u{200B}"}),
        serde_json::json!({"client_id": ID, "redirect_uris": ["https://c/cb"],
            "token_endpoint_auth_method": "client_secret_basic"}),
        serde_json::json!({"client_id": ID, "redirect_uris": ["https://c/cb"],
            "token_endpoint_auth_method": "private_key_jwt"}),
        serde_json::json!({"client_id": ID, "redirect_uris": ["https://c/cb"],
            "client_secret_expires_at": 0}),
        serde_json::json!({"client_id": ID, "redirect_uris": ["https://c/cb"],
            "jwks": {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}}),
    ];
    for document in refused {
        assert!(
            matches!(check(document.clone()), Err(CimdError::Invalid(_))),
            "{document}"
        );
    }
}

#[test]
fn chatgpt_style_and_extra_grant_documents_are_used_for_what_they_allow() {
    let chatgpt = check(serde_json::json!({
        "client_id": ID, "redirect_uris": ["https://chatgpt.com/connector/oauth/x"],
        "token_endpoint_auth_method": "private_key_jwt",
        "token_endpoint_auth_methods_supported": ["private_key_jwt", "none"],
        "jwks_uri": "https://chatgpt.com/jwks.json",
        "grant_types": ["authorization_code", "refresh_token",
            "urn:ietf:params:oauth:grant-type:jwt-bearer"],
    }))
    .unwrap();
    assert_eq!(chatgpt.grant_types, ["authorization_code", "refresh_token"]);
    let defaulted = check(serde_json::json!({"client_id": ID, "redirect_uris": ["https://c/cb"]}));
    assert_eq!(defaulted.unwrap().grant_types, ["authorization_code"]);
    for (document, reason) in [
        (
            serde_json::json!({"client_id": ID, "redirect_uris": ["https://c/cb"],
                "grant_types": ["client_credentials", "refresh_token"]}),
            "grant_types does not include authorization_code",
        ),
        (
            serde_json::json!({"client_id": ID, "redirect_uris": ["https://c/cb"],
                "token_endpoint_auth_method": "private_key_jwt",
                "token_endpoint_auth_methods_supported": ["private_key_jwt"]}),
            "does not offer `none`",
        ),
        (
            serde_json::json!({"client_id": ID, "redirect_uris": ["http://127.0.0.1/cb"],
                "application_type": "web"}),
            "application_type is `web`",
        ),
        (
            serde_json::json!({"client_id": ID, "redirect_uris": ["https://c/cb"],
                "response_types": ["token"]}),
            "response_types does not include `code`",
        ),
    ] {
        match check(document.clone()) {
            Err(CimdError::Invalid(text)) => assert!(text.contains(reason), "{text}"),
            other => panic!("{document}: {other:?}"),
        }
    }
    // Omitted: inferred from the URIs, never refused for lacking it.
    assert!(
        check(serde_json::json!({"client_id": ID,
        "redirect_uris": ["http://127.0.0.1/cb", "https://c/cb"]}))
        .is_ok()
    );
}

#[test]
fn redirect_uris_follow_the_registration_rules() {
    let document = |uris: Value| {
        serde_json::json!({"client_id": ID, "redirect_uris": uris})
            .to_string()
            .into_bytes()
    };
    let loopback = document(serde_json::json!([
        "http://127.0.0.1/cb",
        "http://localhost:1/cb"
    ]));
    assert!(validate(ID, &loopback, &CimdPolicy::default().redirects).is_ok());
    let strict = RedirectPolicy {
        allow_private_use_schemes: false,
        allowed_patterns: vec!["https://client.example/*".to_owned()],
    };
    assert!(
        validate(
            ID,
            &document(serde_json::json!(["https://client.example/cb"])),
            &strict
        )
        .is_ok()
    );
    for refused in [
        serde_json::json!(["cursor://x/cb"]),
        serde_json::json!(["https://elsewhere.example/cb"]),
    ] {
        assert!(
            matches!(
                validate(ID, &document(refused.clone()), &strict),
                Err(CimdError::Invalid(_))
            ),
            "{refused}"
        );
    }
}

#[test]
fn inconsistent_policies_are_rejected() {
    let policy = CimdPolicy {
        min_ttl: Duration::from_secs(7200),
        ..CimdPolicy::default()
    };
    assert!(CimdFetcher::new(policy, Clock::system()).is_err());
    assert!(CimdFetcher::new(CimdPolicy::default(), Clock::system()).is_ok());
}
