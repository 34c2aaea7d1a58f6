//! The TOML configuration with `TOKEN_BROKER__…` environment overrides: loading
//! reports at least one problem or yields a configuration whose resources' challenges
//! are well-formed headers that read back as configured; an override naming an
//! unknown key is refused (a typo never passes silently); an override setting a key to
//! the value the file gives it changes nothing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use token_broker::config::{Environment, load_str};
use token_broker::domain::scope::Scopes;
use token_broker::flows::access::{Challenge, metadata_url};
use token_broker_fuzz::{challenge, parts, text};

fuzz_target!(|data: &[u8]| {
    let pieces = parts(data);
    let Some(file) = pieces.first().copied().and_then(text) else {
        return;
    };
    let vars: Vec<(String, String)> = pieces[1..]
        .iter()
        .filter_map(|p| text(p))
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let loaded = load_str(file, &Environment::from_pairs(vars.clone()));
    match &loaded {
        Err(error) => assert!(!error.problems().is_empty(), "refused without a problem"),
        Ok(config) => {
            for resource in &config.resources {
                for scope in &resource.scopes_supported {
                    assert_eq!(
                        Scopes::parse(scope).map(|s| s.len()),
                        Ok(1),
                        "scope {scope:?}"
                    );
                }
                let written = Challenge::Bearer {
                    resource_metadata: metadata_url(resource),
                    scope: resource.scopes_supported.join(" "),
                    error: Some("invalid_token"),
                    description: Some(format!("missing scope: {}", resource.required_scopes)),
                };
                let header = written.to_string();
                assert!(challenge::is_field_value(&header), "{header:?}");
                let (_, params) = challenge::parse(&header).unwrap_or_else(|| panic!("{header:?}"));
                assert_eq!(
                    params[0],
                    ("resource_metadata".to_owned(), metadata_url(resource))
                );
            }
        }
    }
    let with = |name: &str, value: &str| {
        let mut vars = vars.clone();
        vars.retain(|(k, _)| k != name);
        vars.push((name.to_owned(), value.to_owned()));
        load_str(file, &Environment::from_pairs(vars))
    };
    assert!(
        with("TOKEN_BROKER__SERVER__NO_SUCH_KEY", "1").is_err(),
        "an unknown key passes"
    );
    // A top-level section's string key set again from the environment to its own value.
    let Ok(table) = toml::from_str::<toml::Table>(file) else {
        return;
    };
    for (section, keys) in &table {
        let Some(keys) = keys.as_table() else {
            continue;
        };
        for (key, value) in keys {
            let Some(value) = value.as_str() else {
                continue;
            };
            // A name that begins or ends with `_` cannot be spelled as a variable:
            // `[client_] max` and `[client] _max` are both `CLIENT___MAX`, which the
            // loader reads the second way (the long run's finding, 2026-12-05; the
            // unit test `config::tests::an_override_whose_parts_run_together_is_refused`).
            let plain = |s: &str| {
                !s.is_empty()
                    && !s.contains("__")
                    && !s.starts_with('_')
                    && !s.ends_with('_')
                    && s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
            };
            if !plain(section) || !plain(key) || value.trim_start().starts_with('[') {
                continue;
            }
            let name = format!(
                "TOKEN_BROKER__{}__{}",
                section.to_uppercase(),
                key.to_uppercase()
            );
            if vars.iter().any(|(k, _)| k.starts_with("TOKEN_BROKER__")) {
                continue;
            }
            let again = with(&name, value);
            assert_eq!(
                again.as_ref().map(drop).map_err(|e| e.problems()),
                loaded.as_ref().map(drop).map_err(|e| e.problems()),
                "{name}={value:?}"
            );
        }
    }
});
