//! A client ID metadata document as the fetch judges it (draft-ietf-oauth-client-id-
//! metadata-document §4, §4.1): an accepted document is a public client named by the
//! URL it came from, with no secret and no private or symmetric key, at least one
//! redirect URI (each one registration would accept), and authorization_code among
//! the grants it is given, which are only authorization_code and refresh_token.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};
use token_broker::domain::client_metadata::{self, RedirectPolicy, SupportedScopes};
use token_broker::upstream::cimd::fuzzing::document;

const FETCHED_FROM: &str = "https://client.example.com/oauth/metadata.json";

fuzz_target!(|body: &[u8]| {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    // The URL it was fetched from: the one the document names when it names one, so
    // the fuzzer reaches past that first check; else a fixed one.
    let client_id = parsed
        .as_ref()
        .and_then(|d| d.get("client_id"))
        .and_then(Value::as_str)
        .unwrap_or(FETCHED_FROM)
        .to_owned();
    let policy = RedirectPolicy {
        allow_private_use_schemes: true,
        allowed_patterns: Vec::new(),
    };
    let Ok(accepted) = document(&client_id, body, &policy) else {
        return;
    };
    let doc = parsed.expect("an accepted document is JSON");
    assert_eq!(doc["client_id"], json!(client_id));
    assert!(doc.get("client_secret").is_none() && doc.get("client_secret_expires_at").is_none());
    match doc
        .get("token_endpoint_auth_method")
        .and_then(Value::as_str)
    {
        None | Some("none") => assert!(
            doc.get("token_endpoint_auth_method")
                .is_none_or(Value::is_string)
        ),
        Some("private_key_jwt") => assert!(
            doc["token_endpoint_auth_methods_supported"]
                .as_array()
                .is_some_and(|m| m.contains(&json!("none")))
        ),
        Some(other) => panic!("accepted token_endpoint_auth_method {other}"),
    }
    for key in doc
        .pointer("/jwks/keys")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        for secret in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] {
            assert!(key.get(secret).is_none(), "private key member {secret}");
        }
    }
    assert_eq!(json!(accepted.redirect_uris), doc["redirect_uris"]);
    assert!(!accepted.redirect_uris.is_empty());
    let mut registration = json!({ "redirect_uris": accepted.redirect_uris });
    if let Some(kind) = doc.get("application_type") {
        registration["application_type"] = kind.clone();
    }
    assert!(
        client_metadata::validate(&registration, &policy, &SupportedScopes(None)).is_ok(),
        "redirect URIs registration refuses"
    );
    assert!(
        accepted
            .grant_types
            .iter()
            .any(|g| g == "authorization_code")
    );
    assert!(
        accepted
            .grant_types
            .iter()
            .all(|g| g == "authorization_code" || g == "refresh_token")
    );
    assert_eq!(
        accepted.client_name.as_deref(),
        doc.get("client_name").and_then(Value::as_str)
    );
});
