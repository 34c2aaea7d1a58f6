//! What a packaged binary says about itself: `--version` and `token_broker_build_info`
//! name the commit and profile; `completions` and `man` cover every subcommand.

use crate::support::{TestBroker, binary, http};

/// The commit `build.rs` should have found: this checkout's HEAD, or `unknown`.
fn expected_commit() -> String {
    std::process::Command::new("git")
        .arg("-C")
        .arg(env!("CARGO_MANIFEST_DIR"))
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".to_owned())
}

fn expected_profile() -> &'static str {
    if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    }
}

fn run(args: &[&str]) -> String {
    let out = binary().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The subcommands `--help` lists (`help` included), read from its `Commands:` block.
fn subcommands() -> Vec<String> {
    let help = run(&["--help"]);
    let names: Vec<String> = help
        .lines()
        .skip_while(|line| *line != "Commands:")
        .skip(1)
        .take_while(|line| !line.trim().is_empty())
        .filter_map(|line| line.split_whitespace().next().map(str::to_owned))
        .collect();
    for expected in ["serve", "check-config", "completions", "man", "help"] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} in {names:?}"
        );
    }
    names
}

#[test]
fn version_names_the_commit_and_the_build_profile() {
    let line = run(&["--version"]);
    assert_eq!(
        line.trim(),
        format!(
            "token-broker {} (commit {}, {} build)",
            env!("CARGO_PKG_VERSION"),
            expected_commit(),
            expected_profile()
        )
    );
}

#[actix_web::test]
async fn metrics_carry_the_build_info() {
    let broker = TestBroker::start().await;
    let text = http()
        .get(broker.at("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let expected = format!(
        r#"token_broker_build_info{{commit="{}",profile="{}",version="{}"}} 1"#,
        expected_commit(),
        expected_profile(),
        env!("CARGO_PKG_VERSION")
    );
    assert!(text.lines().any(|l| l == expected), "{expected} in\n{text}");
    broker.stop().await;
}

#[test]
fn completions_for_each_shell_name_every_subcommand() {
    let names = subcommands();
    for shell in ["bash", "zsh", "fish"] {
        let script = run(&["completions", shell]);
        assert!(script.contains("token-broker"), "{shell}");
        for name in &names {
            assert!(
                script.contains(name.as_str()),
                "{shell} completion lacks {name}"
            );
        }
    }
    let out = binary()
        .args(["completions", "powershell"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn the_man_page_names_every_subcommand() {
    let page = run(&["man"]);
    assert!(page.starts_with(".ie \\n(.g .ds Aq"), "{page}");
    assert!(page.contains(".TH token-broker 1"), "{page}");
    let subcommands = page
        .split(".SH SUBCOMMANDS")
        .nth(1)
        .unwrap_or_else(|| panic!("no SUBCOMMANDS section:\n{page}"));
    for name in subcommands_without_help() {
        // roff escapes `-` as `\-`.
        let escaped = name.replace('-', "\\-");
        assert!(
            subcommands.contains(&format!("token\\-broker\\-{escaped}(1)")),
            "{name} missing from:\n{subcommands}"
        );
    }
}

#[test]
fn man_with_a_directory_writes_one_page_per_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    run(&["man", "--dir", dir.path().to_str().unwrap()]);
    let page = std::fs::read_to_string(dir.path().join("token-broker.1")).unwrap();
    assert!(page.contains(".TH token-broker 1"));
    for name in subcommands_without_help() {
        let path = dir.path().join(format!("token-broker-{name}.1"));
        let page =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(
            page.contains(&format!(".TH token-broker-{name} 1")),
            "{page}"
        );
    }
}

fn subcommands_without_help() -> Vec<String> {
    subcommands().into_iter().filter(|n| n != "help").collect()
}
