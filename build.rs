//! Build facts the binary reports (`token-broker --version`, `token_broker_build_info`):
//! the git commit and the build profile. Never fails: a build from a source tarball, a
//! `cargo package` copy or a machine without git says `unknown`, and packagers that know
//! the commit pass it in `TOKEN_BROKER_GIT_COMMIT`.

use std::path::Path;
use std::process::Command;

const COMMIT_VAR: &str = "TOKEN_BROKER_GIT_COMMIT";

fn main() {
    println!("cargo:rerun-if-env-changed={COMMIT_VAR}");
    // Only the commit and the profile are read here: without this line cargo would run
    // the script again on every change to any file of the package.
    println!("cargo:rerun-if-changed=build.rs");
    let commit = match std::env::var(COMMIT_VAR) {
        Ok(given) if is_commit(given.trim()) => given.trim().to_owned(),
        _ => from_git().unwrap_or_else(|| "unknown".to_owned()),
    };
    // `debug` or `release` (custom profiles report the one they inherit from).
    let profile = std::env::var("PROFILE").unwrap_or_else(|_| "unknown".to_owned());
    println!("cargo:rustc-env=TOKEN_BROKER_GIT_COMMIT={commit}");
    println!("cargo:rustc-env=TOKEN_BROKER_BUILD_PROFILE={profile}");
}

/// A hexadecimal object name, abbreviated (at least 7 digits) or whole.
fn is_commit(text: &str) -> bool {
    (7..=64).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The checked-out commit, abbreviated to 12 digits, and the files whose change means
/// a new commit (HEAD, the branch it names, packed refs) so the script runs again then.
fn from_git() -> Option<String> {
    let dir = std::env::var("CARGO_MANIFEST_DIR").ok()?;
    let git = |args: &[&str]| -> Option<String> {
        let out = Command::new("git")
            .arg("-C")
            .arg(&dir)
            .args(args)
            .output()
            .ok()?;
        if !out.status.success() {
            return None;
        }
        Some(String::from_utf8(out.stdout).ok()?.trim().to_owned())
    };
    // A source tree unpacked inside some other repository is not that repository's
    // commit.
    let top = git(&["rev-parse", "--show-toplevel"])?;
    if std::fs::canonicalize(&top).ok()? != std::fs::canonicalize(&dir).ok()? {
        return None;
    }
    // `--git-path` resolves worktrees and a shared common directory alike.
    let mut watched = vec![git(&["rev-parse", "--git-path", "HEAD"])?];
    watched.push(git(&["rev-parse", "--git-path", "packed-refs"])?);
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watched.push(git(&["rev-parse", "--git-path", &branch])?);
    }
    for path in watched {
        let path = Path::new(&dir).join(path);
        // A path that does not exist would make cargo run the script on every build.
        if path.exists() {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
    let commit = git(&["rev-parse", "--short=12", "HEAD"])?;
    is_commit(&commit).then_some(commit)
}
