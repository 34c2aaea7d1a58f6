//! The operator's redirect-URI patterns (`[registration] redirect_uri_allow_list`):
//! `*` as the port means any port, a trailing `/*` any path below, anything else the
//! exact URI. A registered URI passes a list exactly when it passes without one and
//! matches a pattern as that rule reads.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::json;
use token_broker::domain::client_metadata::{RedirectPolicy, SupportedScopes, validate};
use token_broker_fuzz::{parts, text};
use url::Url;

/// The pattern rule, read from its documentation.
fn matches(pattern: &str, uri: &Url) -> bool {
    let (base, any_path) = match pattern.strip_suffix("/*") {
        Some(base) => (base, true),
        None => (pattern, false),
    };
    // `*` as the port: `scheme://host:*` followed by the path, if any.
    let (base, any_port) = match base.split_once("://") {
        Some((scheme, rest)) => {
            let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            match rest[..authority_end].strip_suffix(":*") {
                Some(host) => (format!("{scheme}://{host}{}", &rest[authority_end..]), true),
                None => (base.to_owned(), false),
            }
        }
        None => (base.to_owned(), false),
    };
    let Ok(pattern) = Url::parse(&base) else {
        return false;
    };
    let path = if any_path {
        let prefix = pattern.path().trim_end_matches('/');
        prefix.is_empty() || uri.path() == prefix || uri.path().starts_with(&format!("{prefix}/"))
    } else {
        uri.path() == pattern.path() && uri.query() == pattern.query()
    };
    uri.scheme() == pattern.scheme()
        && uri.host_str() == pattern.host_str()
        && (any_port || uri.port_or_known_default() == pattern.port_or_known_default())
        && path
}

fuzz_target!(|data: &[u8]| {
    let pieces: Vec<&str> = parts(data).into_iter().filter_map(text).collect();
    let Some((uri, patterns)) = pieces.split_last() else {
        return;
    };
    let body = json!({ "redirect_uris": [uri] });
    let open = RedirectPolicy {
        allow_private_use_schemes: true,
        allowed_patterns: Vec::new(),
    };
    let listed = RedirectPolicy {
        allowed_patterns: patterns.iter().map(|p| (*p).to_owned()).collect(),
        ..open.clone()
    };
    let without = validate(&body, &open, &SupportedScopes(None)).is_ok();
    let with = validate(&body, &listed, &SupportedScopes(None)).is_ok();
    let expected = without
        && (patterns.is_empty()
            || Url::parse(uri).is_ok_and(|url| patterns.iter().any(|p| matches(p, &url))));
    assert_eq!(with, expected, "{uri:?} against {patterns:?}");
});
