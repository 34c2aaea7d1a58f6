use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::config::{ConfigError, Environment, StoreBackend, StoreConfig, load_str};

use super::super::tests::BASE;
use super::*;

#[path = "../../../store/redis/tests/pki.rs"]
#[allow(dead_code)]
mod pki;

/// `[store]` on `url` with `store` lines, the encryption key, then `rest`.
fn text(url: &str, store: &str, rest: &str) -> String {
    format!(
        "{BASE}\n[store]\nbackend = \"redis\"\nurl = \"{url}\"\n{store}\n\
         [store.encryption]\nkey_id = \"k1\"\nkeys = {{ k1 = \"{}\" }}\n{rest}",
        STANDARD.encode([1u8; 32])
    )
}

fn load(text: &str, env: &Environment) -> Result<StoreConfig, Vec<String>> {
    load_str(text, env)
        .map(|c| c.store)
        .map_err(|e: ConfigError| e.problems())
}

fn tls_of(store: &StoreConfig) -> Option<&RedisTls> {
    match &store.backend {
        StoreBackend::Redis { tls, .. } => tls.as_ref(),
        other => panic!("{other:?}"),
    }
}

/// The problem reported for `key`.
fn problem(found: &[String], key: &str) -> String {
    found
        .iter()
        .find(|p| p.starts_with(&format!("{key}:")))
        .unwrap_or_else(|| panic!("{key} not reported in {found:?}"))
        .clone()
}

fn env(pairs: &[(&str, &str)]) -> Environment {
    Environment::from_pairs(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
}

#[test]
fn a_rediss_url_reads_its_ca_and_client_certificate_from_secret_references() {
    let pki = pki::Pki::generate();
    let dir = tempfile::tempdir().unwrap();
    let files = pki.write(dir.path());
    let rest = format!(
        "[store.tls]\nca = \"file:{}\"\nclient_cert = \"env:CLIENT_CERT\"\nclient_key = \"file:{}\"\n",
        files.ca.display(),
        files.client_key.display()
    );
    let store = load(
        &text("rediss://redis.internal:6380/0", "", &rest),
        &env(&[("CLIENT_CERT", &pki.client_cert)]),
    )
    .unwrap();
    let tls = tls_of(&store).unwrap();
    assert_eq!(tls.ca.as_ref().unwrap().expose().trim(), pki.ca.trim());
    let client = tls.client.as_ref().unwrap();
    assert_eq!(client.cert.expose(), pki.client_cert);
    assert_eq!(client.key.expose().trim(), pki.client_key.trim());
    let debug = format!("{store:?}");
    assert!(!debug.contains("PRIVATE KEY"), "{debug}");

    // Without [store.tls]: TLS against the system's CAs, no client certificate.
    let store = load(
        &text("rediss://redis.internal", "", ""),
        &Environment::default(),
    )
    .unwrap();
    assert_eq!(
        tls_of(&store),
        Some(&RedisTls {
            ca: None,
            client: None
        })
    );
    // A plain url: no TLS at all.
    let store = load(
        &text("redis://redis.internal", "", ""),
        &Environment::default(),
    )
    .unwrap();
    assert_eq!(tls_of(&store), None);
}

#[test]
fn tls_settings_with_a_plain_url_or_another_backend_are_refused() {
    let rest = "[store.tls]\nca = \"env:CA\"\n";
    let found = load(
        &text("redis://redis.internal", "", rest),
        &env(&[("CA", "x")]),
    )
    .unwrap_err();
    assert!(
        problem(&found, "store.tls").contains("rediss://"),
        "{found:?}"
    );
    let found = load(
        &format!("{BASE}\n[store]\nbackend = \"memory\"\n{rest}"),
        &Environment::default(),
    )
    .unwrap_err();
    assert!(problem(&found, "store.tls").contains("redis"), "{found:?}");
}

#[test]
fn pem_that_does_not_parse_or_fit_is_reported_by_key() {
    let pki = pki::Pki::generate();
    let other = pki::Pki::generate();
    let cases = [
        (
            "ca = \"not a certificate\"",
            "store.tls.ca",
            "no PEM certificate",
        ),
        (
            "ca = \"file:/nonexistent/ca.pem\"",
            "store.tls.ca",
            "cannot read",
        ),
        (
            "client_cert = \"env:CERT\"",
            "store.tls.client_key",
            "missing",
        ),
        (
            "client_key = \"env:KEY\"",
            "store.tls.client_cert",
            "missing",
        ),
        (
            "client_cert = \"env:KEY\"\nclient_key = \"env:KEY\"",
            "store.tls.client_cert",
            "no PEM certificate",
        ),
        (
            "client_cert = \"env:CERT\"\nclient_key = \"env:CERT\"",
            "store.tls.client_key",
            "no PEM private key",
        ),
        (
            "client_cert = \"env:CERT\"\nclient_key = \"env:OTHER_KEY\"",
            "store.tls.client_key",
            "does not fit client_cert",
        ),
    ];
    let env = env(&[
        ("CERT", &pki.client_cert),
        ("KEY", &pki.client_key),
        ("OTHER_KEY", &other.client_key),
    ]);
    for (lines, key, why) in cases {
        let rest = format!("[store.tls]\n{lines}\n");
        let found = load(&text("rediss://redis.internal", "", &rest), &env).unwrap_err();
        let reported = problem(&found, key);
        assert!(reported.contains(why), "{lines}: {reported}");
        // No line of a key ever reaches a problem.
        for key_line in pki
            .client_key
            .lines()
            .chain(other.client_key.lines())
            .skip(1)
        {
            assert!(!reported.contains(key_line.trim()), "{lines}: {reported}");
        }
    }
}

#[test]
fn the_password_is_given_in_one_place() {
    let found = load(
        &text(
            "rediss://:in-url@redis.internal",
            "password = \"env:PW\"",
            "",
        ),
        &env(&[("PW", "apart")]),
    )
    .unwrap_err();
    let reported = problem(&found, "store.password");
    assert!(reported.contains("one place"), "{reported}");
    assert!(
        !reported.contains("in-url") && !reported.contains("apart"),
        "{reported}"
    );
    let store = load(
        &text("rediss://redis.internal", "password = \"env:PW\"", ""),
        &env(&[("PW", "apart")]),
    )
    .unwrap();
    let StoreBackend::Redis { password, .. } = &store.backend else {
        panic!("{:?}", store.backend);
    };
    assert_eq!(password.as_ref().unwrap().expose(), "apart");
    assert!(!format!("{store:?}").contains("apart"));
}
