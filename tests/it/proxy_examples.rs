//! Every documented proxy example sets or clears every `X-Auth-*` header the broker
//! answers forward-auth with, so none a client writes reaches the MCP server. nginx
//! runs the README snippets and docker/nginx.conf for real (nginx.rs, nginx_bypass.rs);
//! Traefik has no package here, so its example is read as text, and its forward-auth
//! headers are exercised against the broker in verify_original.rs.

use std::path::Path;

fn repository_file(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap()
}

/// The `X-Auth-*` names the forward-auth handler sends, read from its source, so a new
/// header cannot be added without the examples learning about it.
fn headers_the_broker_sends() -> Vec<String> {
    let source = repository_file("src/http/verify.rs");
    let mut names: Vec<String> = source
        .split("HeaderName::from_static(\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .filter(|name| name.starts_with("x-auth-"))
        .map(str::to_owned)
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "x-auth-access-token",
            "x-auth-client-id",
            "x-auth-scopes",
            "x-auth-subject"
        ],
        "the broker's X-Auth-* headers changed: update every proxy example and this list"
    );
    names
}

/// The ```nginx blocks of README.md.
fn readme_nginx_blocks() -> Vec<String> {
    repository_file("README.md")
        .split("```nginx\n")
        .skip(1)
        .filter_map(|rest| rest.split("```").next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_nginx_example_sets_or_clears_every_identity_header() {
    let mut examples = readme_nginx_blocks();
    assert!(examples.len() >= 2, "README.md lost its nginx snippets");
    examples.push(repository_file("docker/nginx.conf"));
    for example in &examples {
        // Only the blocks that pass requests on after asking the broker.
        if !example.contains("auth_request /_token_broker_verify;") {
            continue;
        }
        let lower = example.to_lowercase();
        for name in headers_the_broker_sends() {
            assert!(
                lower.contains(&format!("proxy_set_header {name} ")),
                "an nginx example lets a client's {name} through:\n{example}"
            );
        }
    }
}

#[test]
fn the_traefik_example_replaces_every_identity_header_and_names_its_uri_header() {
    let example = repository_file("docker/traefik.yaml");
    let listed: Vec<String> = example
        .split("authResponseHeaders:")
        .nth(1)
        .expect("docker/traefik.yaml lost authResponseHeaders")
        .lines()
        .skip(1)
        .map_while(|line| line.trim().strip_prefix("- "))
        .map(str::to_lowercase)
        .collect();
    for name in headers_the_broker_sends() {
        assert!(
            listed.contains(&name),
            "traefik.yaml lets a client's {name} through"
        );
    }
    // Traefik sends X-Forwarded-Uri; the broker reads it only when told to.
    for line in [
        "uri_header = \"X-Forwarded-Uri\"",
        "method_header = \"X-Forwarded-Method\"",
    ] {
        assert!(
            example.contains(line),
            "traefik.yaml no longer tells the broker `{line}`"
        );
    }
}

#[test]
fn each_traefik_middleware_replaces_every_identity_header_and_the_exchange_one_the_token() {
    let example = repository_file("docker/traefik.yaml");
    let lists: Vec<Vec<String>> = example
        .split("authResponseHeaders:")
        .skip(1)
        .map(|rest| {
            rest.lines()
                .skip(1)
                .map_while(|line| line.trim().strip_prefix("- "))
                .map(str::to_lowercase)
                .collect()
        })
        .collect();
    assert_eq!(
        lists.len(),
        2,
        "traefik.yaml: the plain and the exchange middleware"
    );
    for list in &lists {
        for name in headers_the_broker_sends() {
            assert!(
                list.contains(&name),
                "traefik.yaml lets a client's {name} through"
            );
        }
    }
    assert!(lists[1].contains(&"authorization".to_owned()));
}

#[test]
fn the_envoy_example_asks_with_the_path_and_strips_every_identity_header_first() {
    let example = repository_file("docker/envoy.yaml");
    let lower = example.to_lowercase();
    assert!(example.contains("path_prefix: /auth/verify"));
    assert!(example.contains("failure_mode_allow: false"));
    let mutation = lower.find("header_mutation").unwrap();
    let ext_authz = lower.find("- name: envoy.filters.http.ext_authz").unwrap();
    assert!(
        mutation < ext_authz,
        "the X-Auth-* headers must go before the check"
    );
    for name in headers_the_broker_sends() {
        assert!(
            lower.contains(&format!("- remove: {name}")),
            "envoy.yaml lets a client's {name} through"
        );
    }
    for name in [
        "authorization",
        "mcp-method",
        "mcp-name",
        "mcp-protocol-version",
    ] {
        assert!(
            lower.contains(&format!("- exact: {name}")),
            "envoy.yaml does not send {name}"
        );
    }
    serde_yaml_ok(&example);
}

/// The Envoy example is at least well-formed YAML (Envoy has no package here).
fn serde_yaml_ok(text: &str) {
    let status = std::process::Command::new("python3")
        .args(["-c", "import sys, yaml; yaml.safe_load(sys.stdin)"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(text.as_bytes())?;
            child.wait()
        })
        .unwrap();
    assert!(status.success(), "docker/envoy.yaml is not YAML");
}
