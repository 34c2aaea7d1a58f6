//! `check-config` and `rotate-keys` on the fixtures in `fixtures/config`.

use crate::support::{binary, fixture};

fn check(path: &std::path::Path, env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let mut command = binary();
    command.arg("check-config").arg("--config").arg(path);
    command.env_remove("TOKEN_BROKER_UPSTREAM_SECRET");
    for (k, v) in env {
        command.env(k, v);
    }
    let out = command.output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn valid_fixtures_are_accepted() {
    let secret = [("TOKEN_BROKER_UPSTREAM_SECRET", "s3cret")];
    for name in ["minimal.toml", "full.toml"] {
        // full.toml reads its secret from a file that only exists in production;
        // point it somewhere real the way an operator would, with an override.
        let dir = tempfile::tempdir().unwrap();
        let secret_file = dir.path().join("secret");
        std::fs::write(&secret_file, "from-file\n").unwrap();
        let spec = format!("file:{}", secret_file.display());
        let env = [
            secret[0],
            ("TOKEN_BROKER__UPSTREAM__CLIENT_SECRET", spec.as_str()),
            (
                "TOKEN_BROKER_COOKIE_KEY",
                "a-cookie-signing-key-of-at-least-32-bytes",
            ),
            ("NOTES_MCP_SECRET", "a-notes-mcp-secret-0123456789"),
            (
                "TOKEN_BROKER_ADMIN_TOKEN",
                "an-admin-token-of-at-least-32-bytes-long",
            ),
            (
                "TOKEN_BROKER_STORE_KEY",
                "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=",
            ),
            (
                "TOKEN_BROKER_STORE_KEY_2026_05",
                "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=",
            ),
        ];
        let (code, stdout, stderr) = check(&fixture(&format!("config/{name}")), &env);
        assert_eq!(code, Some(0), "{name}: {stderr}");
        assert_eq!(stdout.lines().next(), Some("ok"), "{name}");
    }
}

#[test]
fn each_broken_fixture_is_rejected_naming_its_keys() {
    let dir = fixture("config/broken");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let expected: Vec<&str> = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{} has no '# expect:' line", path.display()))
            .split(", ")
            .collect();
        let (code, stdout, stderr) = check(&path, &[]);
        assert_eq!(
            code,
            Some(78),
            "{}: exit code; stderr:\n{stderr}",
            path.display()
        );
        assert!(stdout.is_empty(), "{}: printed {stdout}", path.display());
        for key in expected {
            assert!(
                stderr.contains(&format!("  {key}: ")) || stderr.contains(key),
                "{}: problem for `{key}` not reported:\n{stderr}",
                path.display()
            );
        }
        seen += 1;
    }
    assert!(seen >= 10, "only {seen} broken fixtures");
}

#[test]
fn many_problems_are_reported_in_one_run() {
    let (_, _, stderr) = check(&fixture("config/broken/many-problems.toml"), &[]);
    assert!(stderr.contains("6 problem(s)"), "{stderr}");
    assert_eq!(
        stderr.lines().filter(|l| l.starts_with("  ")).count(),
        6,
        "{stderr}"
    );
}

#[test]
fn an_environment_override_repairs_a_broken_file() {
    let path = fixture("config/broken/http-public-url.toml");
    let env = [(
        "TOKEN_BROKER__SERVER__PUBLIC_URL",
        "https://mcp-auth.example.com",
    )];
    let (code, stdout, stderr) = check(&path, &env);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout.lines().next(), Some("ok"));
}

#[test]
fn a_missing_file_is_a_clear_error() {
    let (code, _, stderr) = check(std::path::Path::new("/nonexistent/broker.toml"), &[]);
    assert_eq!(code, Some(78));
    assert!(
        stderr.contains("cannot read configuration file /nonexistent/broker.toml"),
        "{stderr}"
    );
}

#[actix_web::test]
async fn rotate_keys_adds_a_published_key_to_the_key_file() {
    let (dir, path) = crate::support::broker_config_file("http://127.0.0.1:9/realms/test", "s");
    let keys = dir.path().join("keys.json");
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str(&format!(
        "\n[tokens]\nkey_file = \"{}\"\n\n[store]\nbackend = \"memory\"\n",
        keys.display()
    ));
    std::fs::write(&path, text).unwrap();
    let config = path.display().to_string();
    let output =
        crate::support::run_binary(vec!["rotate-keys".into(), "--config".into(), config]).await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let kid = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&keys).unwrap()).unwrap();
    let kids: Vec<&str> = file["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids.len(), 2, "the first key and the new one");
    assert_eq!(kids[1], kid);
    // The memory store without a key file has nothing to rotate: a configuration error.
    let (_dir, plain) = crate::support::broker_config_file("http://127.0.0.1:9/realms/test", "s");
    let mut text = std::fs::read_to_string(&plain).unwrap();
    text.push_str("\n[store]\nbackend = \"memory\"\n");
    std::fs::write(&plain, text).unwrap();
    let output = crate::support::run_binary(vec![
        "rotate-keys".into(),
        "--config".into(),
        plain.display().to_string(),
    ])
    .await;
    assert_eq!(output.status.code(), Some(78));
}

#[actix_web::test]
async fn check_config_says_where_state_lives_and_creates_nothing() {
    let (dir, path) = crate::support::broker_config_file("http://127.0.0.1:9/realms/test", "s");
    let (code, stdout, stderr) = check(&path, &[]);
    assert_eq!(code, Some(0), "{stderr}");
    let db = dir.path().join("token-broker.db");
    assert!(
        stdout.contains(&format!("store: sqlite {}", db.display())),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "store key: {}.store-key (created on first start)",
            db.display()
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("signing keys: in the store, sealed"),
        "{stdout}"
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "only the file itself"
    );
}

#[actix_web::test]
async fn rotate_keys_with_the_default_store_adds_the_key_to_the_database() {
    let (dir, path) = crate::support::broker_config_file("http://127.0.0.1:9/realms/test", "s");
    let output = crate::support::run_binary(vec![
        "rotate-keys".into(),
        "--config".into(),
        path.display().to_string(),
    ])
    .await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let kid = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    let config =
        token_broker::config::load_file(&path, &token_broker::config::Environment::default())
            .unwrap();
    let store = token_broker::store::open(&config.store).unwrap();
    let kids: Vec<String> = store
        .signing_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.kid)
        .collect();
    assert_eq!(
        kids.len(),
        2,
        "the first key, created on the way, and the new one"
    );
    assert_eq!(kids[1], kid);
    assert!(dir.path().join("token-broker.db").exists());
}
