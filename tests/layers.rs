//! The layering rule, checked on the source: a module may import its own layer and
//! the layers below it, never one above. Lower layers are the ones more of the broker
//! rests on, so an arrow pointing up is a circle waiting to happen (the issue that
//! introduced this check found `store/` importing the actors' traits and the gateway
//! importing `http/` while `http/` mounted the gateway).
//!
//! What counts as an import: any `crate::<top>` path outside comments, including
//! inside `use crate::{a::…, b::…}` groups. Test code is exempt (files named
//! `tests.rs`, files under a `tests/` folder, an inline `#[cfg(test)] mod … { }`
//! and everything after it, a single `#[cfg(test)]` item): tests may drive a lower layer through a higher one. Test code that
//! reaches the development IdP is still kept honest by the build without the
//! `dev-idp` feature.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The layers, lowest first. A module may import modules of the same or a lower rank,
/// except for the pairs in [`SIBLINGS_APART`].
const LAYERS: &[(&str, u8)] = &[
    ("clock", 0),
    ("redact", 0),
    ("domain", 1),
    ("config", 2),
    ("telemetry", 3),
    ("store", 4),
    ("upstream", 5),
    ("tokens", 6),
    ("actors", 7),
    ("flows", 8),
    ("http", 9),
    ("gateway", 9),
    ("server", 10),
    ("demo", 11),
    ("dev_idp", 11),
    // The binary's command line (src/cli/, beside main.rs): above everything.
    ("cli", 12),
];

/// Same-rank modules that must not import each other: the two front doors share
/// only what lies below them, and the composition root mounts both.
const SIBLINGS_APART: &[(&str, &str)] = &[
    ("http", "gateway"),
    ("gateway", "http"),
    ("dev_idp", "demo"),
];

/// What the development IdP may use of the broker: it is a separate product compiled
/// in only with the `dev-idp` feature, and it must not lean on the broker's HTTP
/// layer, its state or its actors.
const DEV_IDP_MAY_USE: &[&str] = &["clock", "redact", "domain", "config", "tokens"];

fn rank(top: &str) -> Option<u8> {
    LAYERS
        .iter()
        .find(|(name, _)| *name == top)
        .map(|(_, r)| *r)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n == "tests") {
                continue;
            }
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs")
            && path.file_name().is_some_and(|n| n != "tests.rs")
        {
            out.push(path);
        }
    }
}

/// The top-level modules a source text imports, test code and comments left out.
fn imports(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut in_group = false;
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let code = line.trim_start();
        // `#[cfg(test)] mod tests { … }` ends the production code; a test-only
        // declaration (`#[cfg(test)] mod suite;`, a test-only `use`) is skipped alone.
        if code.starts_with("#[cfg(test)]") {
            match lines.next().map(str::trim) {
                Some(item) if item.starts_with("mod ") && item.ends_with('{') => break,
                _ => continue,
            }
        }
        if code.starts_with("//") {
            continue;
        }
        let code = code.split("//").next().unwrap_or("");
        // Inside `use crate::{ … }`: the group's paths start at the line's beginning.
        // Inside a `use crate::{ … }` that spans lines: each path starts a part.
        if in_group {
            for part in code.split(',') {
                let head = part.trim().split("::").next().unwrap_or("").trim();
                if rank(head).is_some() {
                    found.insert(head.to_owned());
                }
            }
            if code.contains("};") {
                in_group = false;
            }
            continue;
        }
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            let after = &rest[at + "crate::".len()..];
            if let Some(group) = after.strip_prefix('{') {
                let inner = group.split('}').next().unwrap_or(group);
                for part in inner.split(',') {
                    let head = part.trim().split("::").next().unwrap_or("").trim();
                    if rank(head).is_some() {
                        found.insert(head.to_owned());
                    }
                }
                if !group.contains("};") {
                    in_group = true;
                }
            } else {
                let head: String = after
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                found.insert(head);
            }
            rest = after;
        }
    }
    found
}

fn module_of(src: &Path, file: &Path) -> Option<String> {
    let relative = file.strip_prefix(src).ok()?;
    let first = relative.components().next()?.as_os_str().to_str()?;
    Some(first.trim_end_matches(".rs").to_owned())
}

#[test]
fn no_module_imports_a_layer_above_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    assert!(files.len() > 50, "the source tree was not found at {src:?}");

    let mut violations = Vec::new();
    for file in &files {
        let Some(module) = module_of(&src, file) else {
            continue;
        };
        if module == "main" || module == "lib" {
            continue;
        }
        let Some(own) = rank(&module) else {
            violations.push(format!(
                "{}: module `{module}` has no layer in tests/layers.rs",
                file.display()
            ));
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap_or_default();
        for target in imports(&text) {
            if target == module {
                continue;
            }
            let Some(theirs) = rank(&target) else {
                continue;
            };
            let shown = file.strip_prefix(&src).unwrap_or(file).display();
            if target == "dev_idp" && module != "demo" {
                violations.push(format!(
                    "src/{shown}: imports the development IdP (only main and demo may)"
                ));
            } else if module == "dev_idp" && !DEV_IDP_MAY_USE.contains(&target.as_str()) {
                violations.push(format!(
                    "src/{shown}: the development IdP imports `{target}` (it may use only {DEV_IDP_MAY_USE:?})"
                ));
            } else if theirs > own {
                violations.push(format!(
                    "src/{shown}: `{module}` (layer {own}) imports `{target}` (layer {theirs}, above it)"
                ));
            } else if SIBLINGS_APART.contains(&(module.as_str(), target.as_str())) {
                violations.push(format!(
                    "src/{shown}: `{module}` imports its sibling `{target}`"
                ));
            }
        }
    }
    assert!(
        violations.is_empty(),
        "{} import(s) against the layering:\n{}",
        violations.len(),
        violations.join("\n")
    );
}

#[test]
fn the_import_reader_sees_groups_and_skips_comments_and_tests() {
    let text = "#[cfg(test)]\nmod suite;\nuse crate::{\n    actors::x,\n    http::y,\n};\n// crate::server::z\n#[cfg(test)]\nuse crate::flows::f;\nuse crate::store::Store;\nfn f() { crate::tokens::a(); }\n#[cfg(test)]\nmod tests { use crate::gateway::g; }\n";
    let found: Vec<String> = imports(text).into_iter().collect();
    assert_eq!(found, ["actors", "http", "store", "tokens"]);
    let inline = imports("use crate::{clock::Clock, domain::scope::Scopes};");
    assert_eq!(inline.into_iter().collect::<Vec<_>>(), ["clock", "domain"]);
}
